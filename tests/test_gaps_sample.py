"""The gap analyses on the sample's processed tables: no flag at the ceiling, one over-dispersion rule (issue 14)."""
from __future__ import annotations

import warnings

import pytest

from gar_analysis import gaps
from gar_analysis import indicators as ind

PER_PUPIL = ind.INDICATORS["acces_par_eleve"].label


@pytest.fixture(scope="module")
def national(sample_build):
    schools = ind.school_facts(ind.Tables(sample_build.processed_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gaps.territorial_analysis(schools, "national", "FR")


def _section(items, start):
    hit = [i for i in items if i["titre"].startswith(start)]
    assert len(hit) == 1, [i["titre"] for i in items]
    return hit[0]["table"]


def test_nobody_is_above_100_percent_and_every_flag_lies_outside_its_limits(national):
    """Before: 25 of 30 académies « au-dessus » at 100 % beside an upper limit shown as 100,0.

    The whole-period « ayant utilisé le GAR » share sat at the ceiling; the page now reads the registry's
    ``part_actifs_mois`` (active in the reference month), and the ceiling rule itself is tested on the
    2034/2041 case in test_gaps.py.
    """
    proportions = [i["table"] for i in national["funnels"] if i["kind"] == "proportion"]
    assert [i["titre"] for i in national["funnels"]][:2] == [ind.INDICATORS["part_inscrits"].label,
                                                            ind.INDICATORS["part_actifs_mois"].label]
    for t in proportions:
        at_100 = t["rate"] == 1.0
        for level in ("95", "998"):
            at_shown_ceiling = at_100 & (t[f"upper_{level}"] >= 1)  # « 100 % » beside a limit of 100 %
            assert (t.loc[at_shown_ceiling, f"position_{level}"] != "au-dessus").all()
            flagged = t[t[f"position_{level}"] != "conforme"]
            outside = (flagged["rate"] > flagged[f"upper_{level}"]) | (flagged["rate"] < flagged[f"lower_{level}"])
            assert outside.all()
            assert (t[f"upper_{level}"] <= 1).all() and (t[f"lower_{level}"] >= 0).all()
        assert bool(t.attrs.get("ceiling")) == bool(gaps.funnel_message(t, national["unit_label"]))


def test_access_per_pupil_funnel_and_oe_agree_or_say_why(national):
    """Before: the funnel flagged nothing (limits 0–14) while O/E flagged 12 académies at 99.8 %."""
    funnel = _section(national["funnels"], PER_PUPIL)
    oe = _section(national["oe"], PER_PUPIL)
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
    # at the level the page shows (99.8 %), either the two sections agree or the page prints the note naming
    # the units (a funnel compares with the national value, O/E with what the composition predicts)
