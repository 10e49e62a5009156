"""The metrics summary of a run in segments: a step repeated after a checkpoint reload keeps
the later value, within a segment every point counts."""

from __future__ import annotations

from runlog.folder import segments
from runlog.folder.times import iso


def pt(step, value, t):
    return {"name": "loss", "value": value, "step": step, "time": t}


SEGS = [{"started_at": iso(1000.0)}, {"started_at": iso(2000.0)}]


def test_a_rewound_segment_replaces_the_steps_from_its_first_one_on():
    points = [pt(0, 9, 1001), pt(1, 8, 1002), pt(2, 7, 1003), pt(3, 1, 1004),  # 3: lost work
              pt(2, 6.5, 2001), pt(3, 5.5, 2002)]
    m = segments.summarize(points, SEGS)["loss"]
    assert (m["last"], m["count"], m["min"], m["max"], m["step"]) == (5.5, 4, 5.5, 9, 3)


def test_a_segment_killed_before_it_caught_up_drops_the_lost_steps_all_the_same():
    # the second segment reloaded step 2 and was stopped at 2: step 3 of the first is gone
    points = [pt(0, 9, 1001), pt(1, 8, 1002), pt(2, 7, 1003), pt(3, 1, 1004), pt(2, 6.5, 2001)]
    m = segments.summarize(points, SEGS)["loss"]
    assert (m["last"], m["count"], m["min"]) == (6.5, 3, 6.5)


def test_within_one_segment_a_repeated_step_counts_twice():
    points = [pt(0, 3, 1001), pt(0, 2, 1002), pt(1, 1, 2001), pt(1, 0.5, 2002)]
    m = segments.summarize(points, SEGS)["loss"]
    assert (m["count"], m["last"], m["min"]) == (4, 0.5, 0.5)


def test_points_without_steps_all_count_and_one_segment_is_the_plain_summary():
    points = [pt(None, 3, 1001), pt(None, 2, 2001)]
    assert segments.summarize(points, SEGS)["loss"]["count"] == 2
    plain = [pt(0, 3, 1001), pt(0, 2, 1002)]
    assert segments.summarize(plain, SEGS[:1])["loss"]["count"] == 2


def test_segments_total_is_the_sum_of_their_wall_times():
    segs = [{"started_at": iso(1000.0), "ended_at": iso(1010.5)},
            {"started_at": iso(5000.0), "ended_at": iso(5020.0)}]
    assert segments.total(segs) == 30.5
