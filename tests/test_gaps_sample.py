"""The gap analyses on the sample's processed tables: no flag at the ceiling, one over-dispersion rule (issue 14)."""
from __future__ import annotations

import warnings

import pytest

from gar_analysis import gaps
from gar_analysis.build import load_processed


@pytest.fixture(scope="module")
def national(sample_build):
    schools = load_processed("etablissements", sample_build.processed_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gaps.territorial_analysis(schools, "national", "FR")


def _section(items, start):
    hit = [i for i in items if i["titre"].startswith(start)]
    assert len(hit) == 1, [i["titre"] for i in items]
    return hit[0]["table"]


def test_used_the_gar_is_at_its_ceiling_and_nobody_is_above_100_percent(national):
    """Before: 25 of 30 académies « au-dessus » at 100 % beside an upper limit shown as 100,0."""
    t = _section(national["funnels"], "Part des établissements inscrits ayant utilisé le GAR")
    assert t.attrs["target"] > 0.99
    at_100 = t["rate"] == 1.0
    assert at_100.mean() >= 0.5
    for level in ("95", "998"):
        assert (t.loc[at_100, f"position_{level}"] == "conforme").all()
        flagged = t[t[f"position_{level}"] != "conforme"]
        assert ((flagged["rate"] > flagged[f"upper_{level}"]) | (flagged["rate"] < flagged[f"lower_{level}"])).all()
    assert t.attrs["ceiling"]
    assert "sont à 100 % : l'indicateur est au plafond" in gaps.funnel_message(t, national["unit_label"])


def test_access_per_pupil_funnel_and_oe_agree_or_say_why(national):
    """Before: the funnel flagged nothing (limits 0–14) while O/E flagged 12 académies at 99.8 %."""
    funnel = _section(national["funnels"], "Accès par élève")
    oe = _section(national["oe"], "Accès par élève")
    # one rule: between-unit over-dispersion detected and corrected the same way in both sections
    for t in (funnel, oe):
        od = t.attrs["overdispersion"]
        assert od["overdispersed"] and od["tau2_estimator"] == "winsorised"
        assert t.attrs["correction"] == "additive"
    for level in ("998", "95"):
        a, b = gaps.flagged_units(funnel, level), gaps.flagged_units(oe, level)
        note = gaps.comparison_note(funnel, oe, level=level)
        if a == b:
            assert note == ""
        else:
            assert note.startswith("Les deux analyses ne signalent pas les mêmes unités")
            for unit in set(a.items()) ^ set(b.items()):
                assert unit[0] in note
    # at the level the funnel section shows (99.8 %), the two sections agree on the sample
    assert gaps.flagged_units(funnel, "998") == gaps.flagged_units(oe, "998")
