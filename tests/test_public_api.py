"""The small public API names what users call, and resolves every name."""
import gar_analysis as ga


def test_every_public_name_resolves():
    for name in ga.__all__:
        assert getattr(ga, name) is not None, name
    assert callable(ga.funnel_table) and callable(ga.fit_success_factors) and callable(ga.run_checks)


def test_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError):
        ga.nothing_here
