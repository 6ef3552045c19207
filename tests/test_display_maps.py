"""Tests of the académie map (drawn from the shared open-data contours when present)."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gar_analysis.reporting import maps  # noqa: E402


def test_missing_contours_skip_gracefully(tmp_path):
    df = pd.DataFrame({"code": ["14"], "v": [0.5]})
    assert maps.academie_map(df, value_col="v", label="x", path=tmp_path / "absent.geojson") is None


def test_map_from_small_geojson(tmp_path):
    square = [[[-2.0, 47.0], [-1.0, 47.0], [-1.0, 48.0], [-2.0, 48.0], [-2.0, 47.0]]]
    geo = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code_academie": "14"}, "geometry": {"type": "Polygon", "coordinates": square}},
        {"type": "Feature", "properties": {"code_academie": "17"},
         "geometry": {"type": "MultiPolygon", "coordinates": [[[[0, 46], [1, 46], [1, 47], [0, 46]]]]}},
        {"type": "Feature", "properties": {"code_academie": "28"}, "geometry": {"type": "Polygon", "coordinates": square}},
    ]}
    path = tmp_path / "aca.geojson"
    path.write_text(json.dumps(geo))
    rings = maps.load_contours(str(path))
    assert set(rings) == {"14", "17", "28"}
    fig = maps.academie_map(pd.DataFrame({"code": ["14", "17"], "v": [0.5, "c"]}), value_col="v",
                            label="Part (%)", path=path)
    ax = fig.axes[0]
    assert len(ax.collections) == 2  # one coloured, one hatched (suppressed); overseas 28 left out
    assert ax.collections[1].get_hatch() == "///"


@pytest.mark.shared
def test_map_from_shared_contours():
    if not maps.contours_path().exists():
        pytest.skip("contours des académies absents de ../shared")
    rings = maps.load_contours()
    assert len(rings) == 30
    fig = maps.academie_map(pd.DataFrame({"code": ["14", "10"], "v": [0.8, 0.4]}), value_col="v", label="x")
    assert fig is not None
