"""The results store writes a cell all or nothing."""

from __future__ import annotations

import pytest

from trainer.grid.store import ResultsStore


def _traj(task: str, sample: int) -> dict:
    return {"task_id": task, "sample": sample, "success": True}


def test_a_cell_is_recorded_whole_or_not_at_all(tmp_path):
    with ResultsStore.in_run(tmp_path) as store:
        store.record_cell("a", {"env": "babyai"}, [_traj("t1", 0), _traj("t1", 1)], 1.0, "run1")
        with pytest.raises(Exception):  # the same cell twice: refused, and the first copy stays as it was
            store.record_cell("a", {"env": "babyai"}, [_traj("t9", 0)], 1.0, "run2")
        assert store.trajectories("a") == [_traj("t1", 0), _traj("t1", 1)]
        assert store.cell("a").run_id == "run1"
        store.set_meta("spec", {"name": "x"})
    with ResultsStore.open_existing(tmp_path) as store:  # reopened: still there
        assert store.done() == {"a"} and store.count_trajectories() == 2 and store.meta("spec") == {"name": "x"}
    with pytest.raises(FileNotFoundError, match="no results store"):
        ResultsStore.open_existing(tmp_path / "elsewhere")
