"""folder/metrics.py: metric points in metrics.jsonl and their summary."""

from __future__ import annotations

import json
import math

import pytest

from runlog.folder.metrics import Metrics, read_points, summarize


def recorded(tmp_path, points) -> tuple[dict, list[dict]]:
    m = Metrics(str(tmp_path / "metrics.jsonl"))
    for name, value, step in points:
        m.add(name, value, step, t=1.5)
    m.close()
    return m.summary, read_points(str(tmp_path))


def test_a_point_per_line_and_the_summary(tmp_path):
    summary, points = recorded(tmp_path, [("loss", 0.5, 1), ("loss", 0.25, 2), ("acc", 1, None)])
    assert points == [{"name": "loss", "value": 0.5, "step": 1, "time": 1.5},
                      {"name": "loss", "value": 0.25, "step": 2, "time": 1.5},
                      {"name": "acc", "value": 1, "step": None, "time": 1.5}]
    assert summary["loss"] == {"last": 0.25, "min": 0.25, "max": 0.5, "count": 2, "step": 2}
    assert summary["acc"] == {"last": 1, "min": 1, "max": 1, "count": 1, "step": None}
    assert summarize(points) == summary


def test_nan_and_inf_are_recorded_and_do_not_stick_as_min_or_max(tmp_path):
    summary, points = recorded(tmp_path, [("x", math.nan, 0), ("x", math.inf, 1),
                                          ("x", -math.inf, 2), ("x", 2.0, 3)])
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [ln.split('"value":')[1].split(",")[0] for ln in lines] == \
        ["NaN", "Infinity", "-Infinity", "2.0"]
    assert math.isnan(points[0]["value"]) and points[1]["value"] == math.inf
    s = summary["x"]
    assert (s["last"], s["min"], s["max"], s["count"]) == (2.0, -math.inf, math.inf, 4)
    assert summarize(points)["x"]["min"] == -math.inf


@pytest.mark.parametrize("step", [math.inf, -math.inf, math.nan, "ten", object(), [1]])
def test_a_step_that_is_no_integer_is_recorded_as_none(tmp_path, step):
    summary, points = recorded(tmp_path, [("x", 1.0, step)])
    assert points[0]["step"] is None and summary["x"]["step"] is None


def test_a_huge_integer_step_and_value_never_raise(tmp_path):
    big = 10 ** 399  # 400 digits
    summary, points = recorded(tmp_path, [("x", big, big), ("x", 1, 5)])
    assert points[0]["step"] == big and points[0]["value"] == big
    assert summary["x"]["max"] == big and summary["x"]["step"] == 5


def test_a_value_that_is_no_number_is_a_type_error(tmp_path):
    m = Metrics(str(tmp_path / "metrics.jsonl"))
    for bad in ("0.5", None, [1], b"1"):
        with pytest.raises(TypeError):
            m.add("x", bad)
    with pytest.raises(TypeError):
        m.add(3, 1.0)
    assert not (tmp_path / "metrics.jsonl").exists()  # nothing half-written, no empty file


def test_read_points_skips_a_torn_last_line_and_junk(tmp_path):
    recorded(tmp_path, [("loss", 0.5, 1), ("loss", 0.25, 2)])
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"name": "loss", "va')
    points = read_points(str(tmp_path))
    assert [p["value"] for p in points] == [0.5, 0.25]
    assert read_points(str(tmp_path / "nowhere")) == []


def test_summarize_skips_points_it_cannot_use():
    points = [{"name": "a", "value": 1}, {"name": "a"}, {"value": 2}, [1], 3,
              {"name": "a", "value": "x"}, {"name": ["a"], "value": 1},
              {"name": "a", "value": 2, "step": "junk", "time": "junk"}]
    assert summarize(points) == {"a": {"last": 2, "min": 1, "max": 2, "count": 2, "step": None}}


def test_points_are_json_lines_python_reads(tmp_path):
    recorded(tmp_path, [('we"ird\nname', 0.1, 1), ("ünï", 2, 2)])
    names = [json.loads(ln)["name"] for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert names == ['we"ird\nname', "ünï"]


@pytest.mark.parametrize("step", [2.5, "5"])
def test_a_fractional_or_text_step_is_recorded_as_none(tmp_path, step):
    _, points = recorded(tmp_path, [("x", 1.0, step)])
    assert points[0]["step"] is None
