"""Kernel side of the batch's warm kernels: a clean page in a kernel kept alive across pages.

A batch worker keeps one Jupyter kernel alive for many pages (imports of pandas,
matplotlib and ``gar_analysis`` are paid once). Before each page it runs
:func:`new_page` in the kernel, which forgets everything the previous page
left: the user namespace and execution counter (IPython's ``reset``), open
figures, matplotlib's settings, warning filters, environment variables and the
working folder. Read-only processed tables stay cached in the kernel
(:func:`gar_analysis.build.cache_tables`, keyed on path, mtime and size, so a
new build is seen). Modules holding per-page state register a callback with
:func:`on_new_page`.
"""
from __future__ import annotations

import gc
import os
import warnings

_BASELINE: dict = {}
_CALLBACKS: list = []


def on_new_page(callback) -> None:
    """Register ``callback()`` to run before every page of a warm kernel (reset of module-level state)."""
    if callback not in _CALLBACKS:
        _CALLBACKS.append(callback)


def _snapshot() -> None:
    import matplotlib
    import matplotlib.pyplot  # noqa: F401 - the inline backend sets its rcParams on import

    from ..build import cache_tables

    _BASELINE["rc"] = dict(matplotlib.rcParams)
    _BASELINE["warnings"] = list(warnings.filters)
    _BASELINE["env"] = dict(os.environ)
    _BASELINE["cwd"] = os.getcwd()
    cache_tables(True)


def new_page(env: dict | None = None, cwd: str | None = None) -> None:
    """Reset the kernel to the state it had before its first page, then set this page's environment.

    Parameters
    ----------
    env : dict, optional
        Environment variables of the page (on top of the kernel's initial ones).
    cwd : str, optional
        Working folder of the page (default: the kernel's initial one).
    """
    import matplotlib
    import matplotlib.pyplot as plt

    if not _BASELINE:
        _snapshot()
    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # restoring deprecated keys warns
        dict.update(matplotlib.rcParams, _BASELINE["rc"])  # values already validated
    warnings.filters[:] = _BASELINE["warnings"]
    warnings._filters_mutated()  # noqa: SLF001 - invalidates the per-module "already warned" registries
    os.environ.clear()
    os.environ.update(_BASELINE["env"])
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    os.chdir(cwd or _BASELINE["cwd"])
    for callback in list(_CALLBACKS):
        callback()
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - always present in a kernel
        return
    shell = get_ipython()
    if shell is not None:
        shell.reset(new_session=True)  # user namespace, Out cache, execution counter back to 1
    gc.collect()
