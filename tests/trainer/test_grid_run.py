"""A reduced grid end to end through real env servers: the runner is SIGKILLed midway and restarted, the store holds
every cell exactly once, and the report's numbers are the store's."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.servers import ServerProcess
from trainer.cli import main as cli
from trainer.grid.expand import expand
from trainer.grid.spec import load_spec
from trainer.grid.store import ResultsStore

REPO = Path(__file__).resolve().parents[2]
SPEC = """
name: reduced
envs:
  babyai: {max_turns: 4}
  textcraft: {max_turns: 4}
policies:
  tiny: {kind: tiny, vocab_size: 512, corpus_episodes: 4}
  oracle: {kind: oracle}
  random: {kind: random}
budget: {turn_tokens: 24, trajectory_tokens: 1536}
training: {steps: 1, tasks_per_step: 2, group_size: 2}
evaluation: {tasks: 2, k: 2, difficulties: [easy], signal_tasks: 3}
axes:
  difficulty: {envs: [babyai], regimes: [easy, easy_then_hard], test: [easy]}
  cross_env: {train: [babyai, textcraft]}
  sequential: {orders: [[babyai, textcraft]]}
  interface: {envs: [babyai], test: [numbered], lexicon: true}
"""
KILL_AFTER_CELLS = 12  # the 10 scripted cells and a couple of the tiny policy's: training is under way
# About a CPU minute in all; the wall time stretches when the 2 cores are shared with other work.
pytestmark = pytest.mark.timeout(1200)


def _done_cells(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    except sqlite3.OperationalError:  # the runner has not created the tables yet
        return 0


def _snapshot(db_path: Path) -> dict:
    with sqlite3.connect(db_path, timeout=5) as db:
        cells = {k: (e, f, r) for k, e, f, r in db.execute("SELECT key, episodes, finished, run_id FROM cells")}
        nodes = {i: (f, r) for i, f, r in db.execute("SELECT id, finished, run_id FROM nodes")}
        counts = dict(db.execute("SELECT cell, COUNT(*) FROM trajectories GROUP BY cell").fetchall())
    return {"cells": cells, "nodes": nodes, "counts": counts}


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("grid")
    spec_path = work / "reduced.yaml"
    spec_path.write_text(SPEC)
    run_dir = work / "run"
    db_path = run_dir / "results.sqlite"
    with ServerProcess("babyai", "--enable-oracle", "--log-level", "warning") as babyai, \
            ServerProcess("textcraft", "--enable-oracle", "--log-level", "warning") as textcraft:
        command = [sys.executable, "-m", "trainer.cli", "grid", "run", str(spec_path), "--out", str(run_dir),
                   "--endpoint", f"babyai={babyai.target}", "--endpoint", f"textcraft={textcraft.target}",
                   "--no-progress", "--no-report"]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 600
            while _done_cells(db_path) < KILL_AFTER_CELLS:
                assert first.poll() is None, f"the runner ended before it was killed: {first.stdout.read()[-2000:]!r}"
                assert time.monotonic() < deadline, "the runner made too little progress to be killed midway"
                time.sleep(0.2)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            first.stdout.close()
        killed = _snapshot(db_path)
        second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    return {"run_dir": run_dir, "spec": load_spec(spec_path), "killed": killed, "final": _snapshot(db_path),
            "output": second.stderr}


def test_a_killed_run_resumes_without_redoing_or_losing_or_duplicating(resumed_run):
    grid = expand(resumed_run["spec"])
    killed, final = resumed_run["killed"], resumed_run["final"]
    total = len(grid.cells)
    assert KILL_AFTER_CELLS <= len(killed["cells"]) < total, "the kill did not land midway"
    # At the kill, every recorded cell is whole and no trajectory belongs to an unrecorded cell.
    assert killed["counts"] == {k: e for k, (e, _, _) in killed["cells"].items()}
    # After the restart: every cell once, with all its trajectories...
    assert set(final["cells"]) == set(grid.cells)
    for key, (episodes, _, _) in final["cells"].items():
        cell = grid.cells[key]
        assert episodes == final["counts"][key] == cell.tasks * cell.k
    # ... and what was done before the kill was not redone (same finish time, same run id).
    for key, row in killed["cells"].items():
        assert final["cells"][key] == row
    for node, row in killed["nodes"].items():
        assert final["nodes"][node] == row
    assert f"({len(killed['cells'])} reused)" in resumed_run["output"]
    with ResultsStore.open_existing(resumed_run["run_dir"]) as store:
        assert store.count_trajectories() == sum(c.tasks * c.k for c in grid.cells.values())
        pairs = [(cell, t["task_id"], t["sample"]) for cell, t in store.all_trajectories()]
    assert len(pairs) == len(set(pairs)), "a (cell, task, sample) was stored twice"


def _table(report: str, heading: str) -> list[list[str]]:
    section = report.split(f"## {heading}")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows[2:]]


def test_the_report_is_built_from_the_store_and_its_numbers_match_it(resumed_run):
    run_dir: Path = resumed_run["run_dir"]
    result = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    report = (run_dir / "report" / "report.md").read_text()
    grid = expand(resumed_run["spec"])
    # Numbers straight from the SQLite file, independently of the report code.
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        rows = db.execute("SELECT cell, data FROM trajectories").fetchall()
    by_cell: dict[str, list[dict]] = {}
    for cell, data in rows:
        by_cell.setdefault(cell, []).append(json.loads(data))

    def avg(key: str) -> str:
        records = by_cell[key]
        return f"{100 * sum(r['success'] for r in records) / len(records):.1f}"

    def pass_k(key: str) -> str:
        tasks: dict[str, list[bool]] = {}
        for r in by_cell[key]:
            tasks.setdefault(r["task_id"], []).append(r["success"])
        return f"{100 * sum(any(s) for s in tasks.values()) / len(tasks):.1f}"  # k samples each: solved at least once

    reference = _table(report, "Reference rows")
    assert len(reference) == len(grid.views.reference)
    for env, difficulty, policy, shape, avg_cell, pass_cell, score, turns, *_ in reference:
        key = grid.views.reference[(policy, env, difficulty)]
        assert shape == "2x2"
        assert avg_cell.split(" [")[0] == avg(key)
        assert pass_cell.split(" [")[0] == pass_k(key)
        mean_turns = sum(r["turns"] for r in by_cell[key]) / len(by_cell[key])
        assert turns == f"{mean_turns:.1f}"
        if policy == "oracle" and env == "babyai":  # (TextCraft's recipes need more than these 4 turns)
            assert avg_cell.startswith("100.0"), "the oracle solves every sampled easy task"
    signal_rows = _table(report, "Signal: trained policies against random (easy)")
    assert [row[0] for row in signal_rows] == ["babyai", "textcraft"]
    for env, label, shape, base, _, random_avg, _ in signal_rows:
        assert (label, shape) == ("tiny", "3x2")
        assert base.split(" [")[0] == avg(grid.views.signal[("tiny", env)])
        assert random_avg.split(" [")[0] == avg(grid.views.signal[("random", env)])
    transfer = _table(report, "A2 — transfer matrix (tiny)")
    matrix = grid.views.transfer["tiny"]
    assert [row[0] for row in transfer] == ["base (untrained)", "trained on babyai", "trained on textcraft"]
    for row, train in zip(transfer, ["base", "babyai", "textcraft"]):
        for value, test in zip(row[1:], ["babyai", "textcraft"]):
            assert value.split(" (")[0] == avg(matrix[train][test])
            if train != "base":
                delta = float(avg(matrix[train][test])) - float(avg(matrix["base"][test]))
                assert value.endswith(f"({delta:+.1f})")
    sequential = _table(report, "A3 — sequential training")
    rows = grid.views.sequential[("tiny", ("babyai", "textcraft"))]
    assert [r[0] for r in sequential] == ["base", "after babyai", "after textcraft", "mixture (joint)"]
    for row, keys in zip(sequential, rows):
        assert row[1:] == [avg(keys["babyai"]), avg(keys["textcraft"])]
    interface = _table(report, "A4 — interface shift")
    assert [r[0] for r in interface] == ["tiny (untrained)", "tiny (trained on original)", "oracle", "random"]
    failures = _table(report, "Failure modes")
    assert sum(int(r[1]) for r in failures) == sum(len(v) for v in by_cell.values())
    assert sum(int(r[2]) for r in failures) == sum(not t["success"] for v in by_cell.values() for t in v)
    for png in ("difficulty.png", "transfer-tiny.png", "forgetting.png", "mixture.png", "interface.png",
                "failures.png", "turns.png"):
        assert (run_dir / "report" / png).stat().st_size > 1000, png
        assert f"]({png})" in report
    numbers = json.loads((run_dir / "report" / "numbers.json").read_text())["cells"]
    assert {k: f"{100 * v['avg'][0]:.1f}" for k, v in numbers.items()} == {k: avg(k) for k in grid.cells}
    # Rebuilt from the store alone, the report says the same (but for its build time).
    (run_dir / "report" / "report.md").unlink()
    CliRunner().invoke(cli, ["report", str(run_dir)])
    strip = lambda text: re.sub(r"Built \S+ \S+", "", text)  # noqa: E731
    assert strip((run_dir / "report" / "report.md").read_text()) == strip(report)
