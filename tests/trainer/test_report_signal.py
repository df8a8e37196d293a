"""The report's signal section: per env, the warm-started policy, the same after GRPO on that env, and random."""

from __future__ import annotations

from typing import Any

from env_server.tasks import sample_tasks
from env_server.types import TaskInfo
from trainer.grid.expand import expand
from trainer.grid.local import held_out_ids
from trainer.grid.spec import parse_spec
from trainer.report import tables
from trainer.report.stats import cell_stats

SPEC = {"name": "t", "envs": {"babyai": {}, "textcraft": {}},
        "policies": {"tiny": {"kind": "tiny"}, "oracle": {"kind": "oracle"}, "random": {"kind": "random"}},
        "training": {"warm_start": {"envs": ["babyai", "textcraft"], "episodes": 4}},
        "evaluation": {"tasks": 4, "k": 2, "difficulties": ["easy"]},
        "axes": {"cross_env": {"train": ["babyai", "textcraft"]}}}


def _records(successes: list[bool]) -> list[dict[str, Any]]:
    """Two samples per task, in task order."""
    return [{"task_id": f"t{i // 2}", "success": s, "status": "completed", "score": float(s), "turns": 2,
             "invalid": 0, "policy_tokens": 8, "actions": ["a", "b"], "valid": [True, True]}
            for i, s in enumerate(successes)]


def test_signal_rows_compare_the_warm_started_policy_with_random_and_count_the_envs_above_it():
    grid = expand(parse_spec(SPEC))
    rates = {("tiny", "babyai"): [True] * 8, ("random", "babyai"): [True, False] * 4,
             ("tiny", "textcraft"): [True, False] * 4, ("random", "textcraft"): [True, False] * 4}
    stats = {key: None for key in grid.cells}
    for (policy, env, _), key in grid.views.reference.items():
        if (policy, env) in rates:
            stats[key] = cell_stats(env, _records(rates[(policy, env)]))
    trained_on_babyai = grid.views.transfer["tiny"]["babyai"]["babyai"]
    stats[trained_on_babyai] = cell_stats("babyai", _records([True, False, False, False] * 2))
    lines = tables.signal(grid, stats, "easy")
    babyai = next(line for line in lines if line.startswith("| babyai"))
    textcraft = next(line for line in lines if line.startswith("| textcraft"))
    assert "tiny+bc" in babyai and "100.0 [100.0, 100.0]" in babyai and "25.0" in babyai
    assert "+50.0 (above random)" in babyai
    assert "+0.0" in textcraft and "above random" not in textcraft
    assert "– |" in textcraft  # not trained on textcraft yet: a dash, not a number
    assert lines[-1].startswith("`tiny` before RL is above random on easy in 1 of 2 environments (babyai)")


def test_with_signal_tasks_the_section_reads_cells_of_its_own_on_that_many_tasks():
    spec = {**SPEC, "evaluation": {**SPEC["evaluation"], "signal_tasks": 6}}
    grid = expand(parse_spec(spec))
    assert set(grid.views.signal) == {(p, e) for p in ("tiny", "random") for e in ("babyai", "textcraft")}
    for (policy, env), key in grid.views.signal.items():
        cell = grid.cells[key]
        assert (cell.tasks, cell.difficulty, cell.policy) == (6, "easy", policy)
        assert key != grid.views.reference[(policy, env, "easy")]
        assert cell.node == grid.cells[grid.views.reference[(policy, env, "easy")]].node  # the same checkpoint
    stats = {key: None for key in grid.cells}  # reference rows not run: only the signal cells have numbers
    for (policy, env), key in grid.views.signal.items():
        stats[key] = cell_stats(env, _records([True] * 12 if policy == "tiny" else [False] * 12))
    lines = tables.signal(grid, stats, "easy")
    babyai = next(line for line in lines if line.startswith("| babyai"))
    assert "| 6x2 |" in babyai and "+100.0 (above random)" in babyai
    assert lines[-1].startswith("`tiny` before RL is above random on easy in 2 of 2 environments")


def test_no_signal_section_without_a_random_row():
    spec = {**SPEC, "policies": {"tiny": {"kind": "tiny"}}}
    grid = expand(parse_spec(spec))
    assert tables.signal(grid, {key: None for key in grid.cells}, "easy") == []


def test_a_warm_start_holds_out_the_signal_cells_tasks_too():
    grid = expand(parse_spec({**SPEC, "evaluation": {**SPEC["evaluation"], "signal_tasks": 12}}))
    tasks = [TaskInfo(f"task-{i}", "test", "easy") for i in range(40)]
    held_out = held_out_ids(grid.spec.evaluation, tasks)
    for cell in grid.cells.values():  # every task any cell plays, as trainer/datasets.py draws them
        assert {t.task_id for t in sample_tasks(tasks, cell.tasks, cell.seed)} <= held_out
    assert len(held_out) < len(tasks)
