"""The per-object record: time from first prompt to commit, prompts used, and the CSV."""

from __future__ import annotations

import csv

from napari_segany.annotation.record import AnnotationRecord


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_seconds_and_prompts_per_object_and_the_running_mean(tmp_path):
    clock = Clock()
    record = AnnotationRecord(clock)
    assert record.summary() == "No objects committed yet"
    record.prompt_added()
    clock.now += 6.0
    record.prompt_added(2)
    clock.now += 4.0
    record.commit([1], (), "click")  # 10 s, 3 prompts
    clock.now += 50.0  # idle time between objects does not count
    record.prompt_added()
    clock.now += 2.0
    record.discard()  # cleared: this object's time is dropped
    clock.now += 1.0
    record.prompt_added(2)
    clock.now += 8.0
    record.commit([2, 3], (4,), "box")  # two boxes share 8 s and 2 prompts
    assert [(o.seconds, o.prompts) for o in record.objects] == [(10.0, 3), (4.0, 1), (4.0, 1)]
    assert record.summary() == "3 objects · 6.0 s and 1.7 prompts per object"
    record.add_automatic([4, 5, 6, 7], (4,), 2.0)
    assert record.summary().endswith("· 4 from automatic segmentation")

    path = record.save(tmp_path / "record.csv")
    rows = list(csv.DictReader(path.open()))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5", "6", "7"]
    assert rows[1] == {"id": "2", "slice": "4", "seconds": "4.000", "prompts": "1",
                       "source": "box"}  # fmt: skip
    assert rows[-1]["source"] == "everything" and rows[-1]["prompts"] == "0"
