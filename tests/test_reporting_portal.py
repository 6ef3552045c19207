"""The run's portal (index.html), its log (journal.html), the publishers' links and the DSFR vendoring (no kernel)."""
from __future__ import annotations

import base64
import csv
import hashlib
import http.server
import io
import re
import tarfile
import threading

import pytest

from gar_analysis.reporting import dsfr
from gar_analysis.reporting.export import external_references, page_shell
from gar_analysis.reporting.index import (PUBLISHER_LINKS_NAME, PUBLISHER_SENTENCE, load_index, portal_model,
                                          update_index)

OK = {"statut": "ok", "duree_s": 2.0, "erreur": "", "points_forts": [], "a_corriger": []}
ENTRIES = [
    {**OK, "audience": "national", "territoire": "FR", "nom": "France entière", "notebook": "tableau_de_bord",
     "html": "national/FR.html", "titre": "Tableau de bord du GAR"},
    {**OK, "audience": "national", "territoire": "FR", "nom": "France entière", "notebook": "ecarts_territoriaux",
     "html": "national/ecarts_territoriaux-FR.html", "titre": "Écarts territoriaux"},
    {**OK, "audience": "region_academique", "territoire": "53", "nom": "région académique Bretagne",
     "notebook": "tableau_de_bord", "html": "region_academique/53.html", "titre": "Tableau de bord du GAR"},
    {**OK, "audience": "academie", "territoire": "14", "nom": "académie de Rennes", "notebook": "tableau_de_bord",
     "html": "academie/14.html", "titre": "Tableau de bord du GAR", "points_forts": ["Usage en hausse"]},
    {**OK, "audience": "academie", "territoire": "14", "nom": "académie de Rennes", "notebook": "facteurs_de_succes",
     "html": "", "statut": "echec", "erreur": "ValueError: x", "titre": "Facteurs de succès",
     "points_forts": ["Usage en hausse"]},
    {**OK, "audience": "region", "territoire": "11", "nom": "région Île-de-France", "notebook": "tableau_de_bord",
     "html": "region/11.html", "titre": "Tableau de bord du GAR"},
    {**OK, "audience": "departement", "territoire": "35", "nom": "Ille-et-Vilaine (35)", "notebook": "tableau_de_bord",
     "html": "departement/35.html", "titre": "Tableau de bord du GAR"},
    {**OK, "audience": "departement", "territoire": "59", "nom": "Nord (59)", "notebook": "tableau_de_bord",
     "html": "departement/59.html", "titre": "Tableau de bord du GAR"},
    {**OK, "audience": "editeur", "territoire": "ED042", "nom": "=Numérilivre", "notebook": "editeur",
     "html": "editeur/ED042.html", "titre": "Tableau de bord de votre catalogue"},
]


@pytest.fixture
def run(tmp_path):
    run_dir = tmp_path / "lot-1"
    update_index(run_dir, ENTRIES, simulated=True)
    return run_dir


def _main(page: str) -> str:
    return page[page.index("<main"):page.index("</main>")]


def test_portal_lists_territories_by_region_academique_without_publishers_or_run_log(run):
    page = (run / "index.html").read_text(encoding="utf-8")
    main = _main(page)
    assert page.count("<h1") == 1 and "Données simulées" in main
    for label in ("France entière", "Région académique Bretagne", "Académie de Rennes",
                  "Département d&#39;Ille-et-Vilaine (35)", "Département du Nord (59)", "Région Île-de-France",
                  "Région académique Île-de-France", "Région académique Hauts-de-France"):
        assert label in main, label
    # Ille-et-Vilaine sits inside the académie de Rennes, inside the région académique Bretagne
    bretagne = main[main.index('id="g-53"'):]
    bretagne = bretagne[:bretagne.index("</section>")]
    assert bretagne.index("Académie de Rennes") < bretagne.index("Ille-et-Vilaine") and "Nord" not in bretagne
    # one entry per territory, with all its pages, the dashboard first
    national = main[main.index('id="t-national-FR"'):]
    national = national[:national.index("</li>\n</ul>")]
    assert national.index('href="national/FR.html"') < national.index('href="national/ecarts_territoriaux-FR.html"')
    assert main.count('id="t-academie-14"') == 1 and main.count("Usage en hausse") == 1
    # no publisher page, no status or duration; the sentence about publishers is there
    assert "editeur/" not in page and "Numérilivre" not in page
    assert PUBLISHER_SENTENCE.replace("'", "&#39;") in main
    assert "✓" not in main and "2,0 s" not in main and "ValueError" not in main
    assert 'href="journal.html"' in page and external_references(page) == []
    assert "<script>" in page and "normalize('NFD')" in page  # the offline search


def test_portal_search_keys_fold_accents_and_carry_codes(run):
    model = portal_model(load_index(run), run)
    entries = {t["id"]: t for t in model["national"]}
    for g in model["groups"]:
        entries |= {t["id"]: t for t in g["entries"]}
        for a in g["academies"]:
            entries |= {t["id"]: t for t in ([a["entry"]] if a["entry"] else []) + a["departements"]}
    assert "ille et vilaine" in entries["t-departement-35"]["search"].split(" 35")[0]
    assert " 35 " in f" {entries['t-departement-35']['search']} "
    assert "ile de france" in entries["t-region-11"]["search"]
    assert [g["label"] for g in model["groups"]] == sorted((g["label"] for g in model["groups"]),
                                                          key=lambda s: s.replace("Î", "I"))
    assert model["n_territories"] == 6  # FR, 53, 14, 11, 35, 59: no publisher
    assert entries["t-academie-14"]["missing"] == 1 and len(entries["t-academie-14"]["links"]) == 1


def test_journal_keeps_the_run_log_and_the_publisher_links(run):
    page = (run / "journal.html").read_text(encoding="utf-8")
    main = _main(page)
    assert "✗ échec" in main and "ValueError: x" in main and "2,0 s" in main
    assert 'href="editeur/ED042.html"' in main and f'href="{PUBLISHER_LINKS_NAME}"' in main
    assert 'href="index.html"' in page  # breadcrumb back to the portal
    raw = (run / PUBLISHER_LINKS_NAME).read_bytes()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows == [["Code éditeur", "Éditeur", "Page (chemin dans le lot)", "Statut"],
                    ["ED042", "'=Numérilivre", "editeur/ED042.html", "produite"]]  # formula neutralised


def test_reference_pages_are_linked_once_present(run):
    assert "glossaire.html" not in (run / "index.html").read_text(encoding="utf-8")
    (run / "glossaire.html").write_text("<p>g</p>", encoding="utf-8")
    (run / "nouveautes.html").write_text("<p>n</p>", encoding="utf-8")
    update_index(run, [])
    main = _main((run / "index.html").read_text(encoding="utf-8"))
    assert 'href="glossaire.html"' in main and 'href="nouveautes.html"' in main
    assert "methodologie.html" not in main and "qualite.html" not in main
    assert len(load_index(run)["reports"]) == len(ENTRIES)  # refreshing keeps the entries


def test_page_shell_links_relative_to_the_run_folder():
    page = page_shell("Glossaire <GAR>", "<p>Corps</p>", depth=1, breadcrumb=[("Glossaire", "")], simulated=False,
                      dsfr_available=True)
    assert "<title>Glossaire &lt;GAR&gt;</title>" in page and "<h1>Glossaire &lt;GAR&gt;</h1>" in page
    assert '<link rel="stylesheet" href="../static/dsfr/dsfr.css">' in page
    assert 'href="../index.html"' in page and 'aria-current="page"' in page and "<p>Corps</p>" in page
    assert "Données simulées" not in page and "<script" not in page and 'class="gar-dsfr"' in page
    fallback = page_shell("Glossaire", "<p>Corps</p>", depth=0, dsfr_available=False, simulated=True)
    assert "<link" not in fallback and 'class="gar-secours"' in fallback and "Données simulées" in fallback
    assert 'class="fr-breadcrumb"' not in fallback  # the portal itself has no breadcrumb


# --- DSFR vendoring -----------------------------------------------------------------------------------------------

def _tarball() -> bytes:
    files = {"package/dist/core/core.min.css": b"@font-face{src:url(../fonts/Marianne-Regular.woff2) format(\"woff2\")"
                                               b",url(../fonts/Marianne-Regular.woff) format(\"woff\")}",
             "package/dist/fonts/Marianne-Regular.woff2": b"w2", "package/dist/fonts/Marianne-Regular.woff": b"w1",
             "package/dist/fonts/Spectral-Regular.woff2": b"unused",
             "package/dist/icons/system/search-line.svg": b"<svg/>", "package/dist/icons/system/other.svg": b"x",
             "package/LICENSE.md": b"Licence Ouverte"}
    for c in dsfr.COMPONENTS:
        files[f"package/dist/component/{c}/{c}.min.css"] = (
            b".fr-search-bar .fr-btn:before{mask-image:url(../../icons/system/search-line.svg)}" if c == "search"
            else f".fr-{c}{{}}".encode())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture
def registry():
    """A real HTTP server on 127.0.0.1 serving one tarball (stands for registry.npmjs.org)."""
    data = _tarball()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path.endswith(".tgz"):
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", data
    server.shutdown()


def test_vendor_checks_integrity_and_keeps_only_what_the_css_uses(registry, tmp_path):
    base, data = registry
    dest = tmp_path / "dsfr"
    with pytest.raises(ValueError, match="Empreinte"):
        dsfr.vendor(url=f"{base}/dsfr.tgz", integrity=_integrity(b"autre chose"), dest=dest)
    assert not dest.exists()
    dsfr.vendor(url=f"{base}/dsfr.tgz", integrity=_integrity(data), dest=dest)
    css = (dest / "dsfr.css").read_text(encoding="utf-8")
    assert "url(fonts/Marianne-Regular.woff2)" in css and ".woff)" not in css
    assert "url(icons/system/search-line.svg)" in css and ".fr-header{}" in css
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["LICENCE", "dsfr.css", "fonts/Marianne-Regular.woff2", "icons/system/search-line.svg"]
    with pytest.raises(OSError):
        dsfr.vendor(url=f"{base}/absent.txt", integrity=_integrity(data), dest=tmp_path / "autre")
    # a run gets its own copy, linked relatively
    run_dir = tmp_path / "lot"
    assert dsfr.copy_to_run(run_dir, source=dest)
    assert (run_dir / "static/dsfr/fonts/Marianne-Regular.woff2").read_bytes() == b"w2"
    assert not dsfr.copy_to_run(tmp_path / "lot2", source=tmp_path / "vide")


def test_install_warns_in_french_when_the_registry_is_unreachable(registry, capsys):
    base, _ = registry
    assert dsfr.main(["--force", "--url", f"{base}/introuvable"]) == 0
    err = capsys.readouterr().err
    assert "AVERTISSEMENT" in err and "gar.css" in err and dsfr.DSFR_VERSION in err


def test_pinned_integrity_is_an_npm_sha512():
    assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", dsfr.DSFR_INTEGRITY)
    assert dsfr.TARBALL_URL.startswith("https://registry.npmjs.org/@gouvfr/dsfr/-/dsfr-" + dsfr.DSFR_VERSION)
