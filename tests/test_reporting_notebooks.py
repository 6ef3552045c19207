"""Every report notebook of ``notebooks.csv`` runs on the sample through the batch (slow)."""
from __future__ import annotations

import pytest

from gar_analysis import config
from gar_analysis.reporting.batch import editeur_territories, notebook_table, plan_batch, run_batch
from gar_analysis.reporting.export import external_references, scan_outputs

FIRST = {"national": "FR", "region_academique": "53", "academie": "14", "region": "53", "departement": "35"}


@pytest.mark.slow
def test_every_listed_notebook_runs_on_the_sample(sample_build, tmp_path):
    table = [r for r in notebook_table() if (config.REPORT_NOTEBOOKS_DIR / f"{r['notebook']}.ipynb").exists()]
    if not table:
        pytest.skip("aucun carnet de rapport écrit")
    jobs = []
    for audience in dict.fromkeys(r["audience"] for r in table):
        code = FIRST.get(audience) or next(iter(editeur_territories(sample_build.processed_dir)))
        jobs += plan_batch(audience, only=[code], processed_dir=sample_build.processed_dir, run_id="tous")
    result = run_batch(jobs, out_dir=tmp_path, run_id="tous", processed_dir=sample_build.processed_dir,
                       progress=False, timeout=600)
    failed = [(e["audience"], e["notebook"], e["erreur"][:400]) for e in result.failures]
    assert not failed
    for e in result.entries:
        page = (result.run_dir / e["html"]).read_text(encoding="utf-8")
        assert len(page.encode()) < 3 * 1024 * 1024 and external_references(page) == []
        assert "Données simulées" in page and "Provenance" in page
    assert scan_outputs(result.run_dir) == []
