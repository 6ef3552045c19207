"""The Système de design de l'État (DSFR), vendored from its npm package at install time.

``make install`` runs ``python -m gar_analysis.reporting.dsfr``: the pinned
tarball of ``@gouvfr/dsfr`` is downloaded from the npm registry (never a CDN),
its ``sha512`` integrity is checked, and only what the pages use is kept in
``gar_analysis/reporting/static/dsfr/`` (ignored by git):

* ``dsfr.css``: the core and the components the pages use (:data:`COMPONENTS`),
  concatenated, with their ``url()`` rewritten to ``fonts/`` and ``icons/``;
* ``fonts/``: the Marianne and Spectral ``woff2`` files;
* ``icons/``: the icons the bundled CSS refers to;
* ``LICENCE``: the package's licence (Etalab 2.0) and version.

Each run folder gets a copy in ``<run>/static/dsfr/`` (:func:`copy_to_run`), so
pages link to it with a relative path and work offline from ``file://``. When the
package could not be fetched, pages render with ``static/gar.css`` only.
"""
from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

#: Pinned package version and its npm ``dist.integrity``.
DSFR_VERSION = "1.15.3"
DSFR_INTEGRITY = "sha512-R9AALZc1LfZjtytWZMOaUIOHWTkllBZ/sZlsL8TpKZVgF3qUKXt/uNYh+L1D1Fh4p92ZqWxbtNcebsigBZe5pQ=="
TARBALL_URL = f"https://registry.npmjs.org/@gouvfr/dsfr/-/dsfr-{DSFR_VERSION}.tgz"
#: Components bundled after the core, in this order.
COMPONENTS = ("link", "button", "logo", "skiplink", "header", "footer", "breadcrumb", "table", "callout",
              "badge", "notice", "form", "input", "search", "tile", "card", "accordion")
VENDOR_DIR = Path(__file__).resolve().parent / "static" / "dsfr"
#: Name of the bundled stylesheet inside the vendored folder (and in ``<run>/static/dsfr/``).
CSS_NAME = "dsfr.css"
#: Folder of the copy in a run, relative to the run folder.
RUN_SUBDIR = "static/dsfr"

_URL = re.compile(r"url\((?:\.\./)+(fonts|icons)/([^)\"']+)\)")


def available(folder: Path | None = None) -> bool:
    """Whether the vendored DSFR (bundled stylesheet) is present."""
    return ((folder or VENDOR_DIR) / CSS_NAME).is_file()


def check_integrity(data: bytes, integrity: str = DSFR_INTEGRITY) -> None:
    """Raise ValueError unless ``data`` matches an npm ``sha512-…`` integrity string."""
    algo, _, expected = integrity.partition("-")
    if algo != "sha512":
        raise ValueError(f"Empreinte non prise en charge : {integrity!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise ValueError(f"Empreinte du paquet @gouvfr/dsfr incorrecte : attendu {expected}, obtenu {actual}.")


def extract(data: bytes, dest: Path = VENDOR_DIR) -> Path:
    """Build the vendored folder from the package tarball (already verified).

    Parameters
    ----------
    data : bytes
        The ``.tgz`` of ``@gouvfr/dsfr``.
    dest : Path
        Target folder (replaced).

    Returns
    -------
    Path
        ``dest``.
    """
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        def read(name: str) -> bytes:
            member = tar.getmember(f"package/dist/{name}")
            return tar.extractfile(member).read()

        parts = [read("core/core.min.css").decode("utf-8")]
        parts += [read(f"component/{c}/{c}.min.css").decode("utf-8") for c in COMPONENTS]
        css = "\n".join(parts)
        used = sorted(set(_URL.findall(css)))
        css = _URL.sub(lambda m: f"url({m.group(1)}/{m.group(2)})", css)
        # woff2 only: every browser that reads the DSFR reads woff2 (the woff fallbacks are dropped).
        css = re.sub(r",\s*url\(fonts/[^)]+\.woff\)\s*format\(\"?woff\"?\)", "", css)
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "fonts").mkdir(parents=True)
        (tmp / "icons").mkdir()
        for kind, name in used:
            if kind == "fonts" and not name.endswith(".woff2"):
                continue
            target = tmp / kind / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(read(f"{kind}/{name}"))
        (tmp / CSS_NAME).write_text(f"/* @gouvfr/dsfr {DSFR_VERSION} (licence Etalab 2.0), extrait par gar-analysis */\n"
                                    + css, encoding="utf-8")
        try:
            licence = tar.extractfile(tar.getmember("package/LICENSE.md")).read()
        except KeyError:
            licence = b"Licence Etalab 2.0"
        (tmp / "LICENCE").write_bytes(f"@gouvfr/dsfr {DSFR_VERSION}\n\n".encode() + licence)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def vendor(*, force: bool = False, url: str = TARBALL_URL, integrity: str = DSFR_INTEGRITY,
           dest: Path = VENDOR_DIR, timeout: float = 60) -> Path:
    """Download, verify and extract the pinned DSFR package (nothing to do when already there).

    Raises
    ------
    OSError
        Download failed.
    ValueError
        The tarball does not match the pinned integrity.
    """
    version_file = dest / "LICENCE"
    if not force and available(dest) and version_file.read_text(errors="replace").startswith(
            f"@gouvfr/dsfr {DSFR_VERSION}\n"):
        return dest
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (pinned https URL)
        data = resp.read()
    check_integrity(data, integrity)
    return extract(data, dest)


def copy_to_run(run_dir: str | Path, *, source: Path = VENDOR_DIR) -> bool:
    """Copy the vendored DSFR into ``<run>/static/dsfr/`` (once); False when it is not vendored."""
    if not available(source):
        return False
    target = Path(run_dir) / RUN_SUBDIR
    if (target / CSS_NAME).is_file() and (target / "LICENCE").read_bytes() == (source / "LICENCE").read_bytes():
        return True
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return True


def main(argv: list[str] | None = None) -> int:
    """Vendor the DSFR (``--force`` to fetch again, ``--url URL`` for a registry mirror).

    On failure, warn in French and return 0: pages fall back to ``gar.css``.
    """
    args = list(argv if argv is not None else sys.argv[1:])
    force = "--force" in args
    url = args[args.index("--url") + 1] if "--url" in args[:-1] else TARBALL_URL
    try:
        path = vendor(force=force, url=url)
    except (OSError, ValueError, KeyError, tarfile.TarError) as exc:  # KeyError: a file missing from the package
        print(f"AVERTISSEMENT : le système de design de l'État (@gouvfr/dsfr {DSFR_VERSION}) n'a pas pu être "
              f"installé ({exc}). Les pages seront produites avec la feuille de style de secours (gar.css).",
              file=sys.stderr)
        return 0
    print(f"DSFR {DSFR_VERSION} installé dans {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
