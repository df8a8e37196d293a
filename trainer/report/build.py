"""The report, built from the results store alone: RUN_DIR/report/report.md, its PNGs and numbers.json.

The spec stored with the results is expanded again (trainer/grid/expand.py is a pure function of it) to know which
cell answers which question; every number comes from the stored trajectories. `shiftgym report RUN_DIR` reruns this.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from trainer.grid.expand import Grid, expand
from trainer.grid.spec import parse_spec
from trainer.grid.store import ResultsStore
from trainer.report import plots, tables
from trainer.report.failures import __doc__ as FAILURE_RULES
from trainer.report.metrics import __doc__ as METRIC_DEFINITIONS
from trainer.report.stats import CellStats, cell_stats

REPORT_DIR = "report"


def load(run_dir: Path) -> tuple[Grid, dict[str, CellStats | None], ResultsStore]:
    store = ResultsStore.open_existing(run_dir)
    spec_data = store.meta("spec")
    if spec_data is None:
        store.close()
        raise FileNotFoundError(f"{run_dir}: the results store holds no spec (was the run started?)")
    grid = expand(parse_spec(spec_data))
    done = store.done()
    stats = {key: cell_stats(cell.env, store.trajectories(key)) if key in done else None
             for key, cell in grid.cells.items()}
    return grid, stats, store


def _intro(grid: Grid, stats: dict, store: ResultsStore) -> list[str]:
    spec = grid.spec
    done = sum(s is not None for s in stats.values())
    nodes = store.nodes()
    order = grid.training_order()
    trained = sum(n.id in nodes for n in order)
    cell_wall = sum(row.wall_s for row in store.cells().values() if row.key in grid.cells)
    node_wall = sum(row["wall_s"] for n, row in nodes.items() if n in grid.nodes)
    lines = [f"# ShiftGym grid report: {spec.name}", "",
             f"{done} of {len(grid.cells)} evaluation cells and {trained} of {len(order)} checkpoints are in the "
             f"results store ({store.count_trajectories()} trajectories). Time spent: training {node_wall:.0f} s, "
             f"evaluation {cell_wall:.0f} s. Built {time.strftime('%Y-%m-%d %H:%M:%S')} from "
             f"`{store.path.name}` alone (`shiftgym report RUN_DIR` rebuilds it).", "",
             f"Every cell: {spec.evaluation.tasks} held-out tasks per env and difficulty (the same sample for every "
             f"policy, drawn with seed {spec.evaluation.seed}), {spec.evaluation.k} samples each (avg@"
             f"{spec.evaluation.k}); turn limits "
             + ", ".join(f"{e} {spec.envs[e].max_turns or 'default'}" for e in spec.envs)
             + f"; {spec.budget.trajectory_tokens}-token trajectories. Training: GRPO, {spec.training.steps} steps per "
             f"stage and env, {spec.training.tasks_per_step} tasks x {spec.training.group_size} rollouts per step."
             + (f" The Signal section's cells: {spec.evaluation.signal_tasks} tasks per env."
                if grid.views.signal else "")]
    warm = spec.training.warm_start
    tiny = [n for n, p in spec.policies.items() if p.kind == "tiny"]
    if tiny:
        lines += ["", f"The `{'`, `'.join(tiny)}` policy is a tiny randomly initialised Qwen2 model trained on CPU, "
                  "choosing among the valid actions (templates such as `search[<query>]` filled with spans of the "
                  "text it has read; the random row draws from the same candidates: docs/policies.md). "
                  + (f"It is warm-started by behaviour cloning on {warm.episodes} oracle episodes per env of "
                     f"{', '.join(warm.envs)} (train split, disjoint from the held-out tasks) before any RL stage; "
                     "its \"untrained\"/\"base\" rows are that warm-started model. "
                     if warm else
                     "Without a warm start it cannot read its tasks, so apart from BabyAI its numbers stay near the "
                     "random row: this run shows the pipeline works end to end, not what RL achieves. ")
                  + "With a handful of tasks per cell the confidence intervals are wide: read differences inside "
                    "them as noise."]
    return lines


def _section(title: str, body: list[str], image: str | None = None, note: str = "") -> list[str]:
    lines = ["", f"## {title}", ""]
    if note:
        lines += [note, ""]
    lines += body
    if image:
        lines += ["", f"![{title}]({image})"]
    return lines


def build(run_dir: Path) -> tuple[str, dict]:
    grid, stats, store = load(run_dir)
    out = run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    try:
        lines = _intro(grid, stats, store)
        lines += _section("Reference rows", tables.reference(grid, stats),
                          note="Every baseline policy on every env and difficulty (original interface).")
        easy = grid.spec.evaluation.difficulties[0]
        body = tables.signal(grid, stats, easy)
        if body:
            lines += _section(f"Signal: trained policies against random ({easy})", body,
                              note="Whether the tables below can measure anything: a policy at the random row's "
                                   "level has nothing to transfer or forget.")
        if grid.views.difficulty:
            body = tables.difficulty(grid, stats)
            groups = [f"{e}:{r}" for (_, e, r) in grid.views.difficulty]
            tests = grid.spec.axes.difficulty.test  # type: ignore[union-attr]
            image = plots.grouped_bars(out / "difficulty.png", groups, {
                f"test {t}": [tables.value(stats, keys.get(t)) for keys in grid.views.difficulty.values()]
                for t in tests}, "avg@k %", "A1: trained on one difficulty, tested on each")
            lines += _section("A1 — across difficulty", body, image)
        for policy in grid.views.transfer:
            body, deltas = tables.transfer(grid, stats, policy)
            matrix = grid.views.transfer[policy]
            tests = list(matrix["base"])
            trains = [t for t in matrix if t != "base"]
            image = plots.heatmap(out / f"transfer-{policy}.png", trains, tests,
                                  [[deltas.get(tr, {}).get(t) for t in tests] for tr in trains],
                                  f"A2 transfer, {policy}: avg@k delta vs base", diverging=True)
            lines += _section(f"A2 — transfer matrix ({policy})", body, image,
                              note="avg@k % after training on the row's env, tested zero-shot on the column's; "
                                   "in brackets the delta against the untrained policy, in points.")
        if grid.views.sequential:
            body, curves = tables.sequential(grid, stats)
            image = plots.forgetting_curves(out / "forgetting.png", curves, "A3: success on each env after each stage")
            lines += _section("A3 — sequential training", body, image,
                              note="avg@k % on each env of the order after each stage; the mixture is trained "
                                   "jointly on the same tasks in as many steps.")
            body, points = tables.mixture_vs_sequential(grid, stats)
            image = None
            if points:
                groups = [f"{o}:{e}" for o, e, _, _ in points]
                image = plots.grouped_bars(out / "mixture.png", groups, {
                    "sequential": [p[2] for p in points], "mixture": [p[3] for p in points]},
                    "avg@k %", "A3: mixture vs sequential (after the last stage)")
            lines += _section("A3 — mixture vs sequential", body, image)
        if grid.views.interface:
            body, heat = tables.interface(grid, stats)
            first = next(iter(grid.views.interface.values()))
            presets = list(first["base"])
            rows = [f"{p} {e} ({w})" for (p, e, w) in heat]
            image = plots.heatmap(out / "interface.png", rows, presets, list(heat.values()),
                                  "A4: avg@k % by test interface")
            lines += _section("A4 — interface shift", body, image,
                              note=f"Trained on `{grid.views.interface_trained_on}`; in brackets the change "
                                   "against that interface, in points.")
        body, groups = tables.failure_modes(grid, stats)
        image = plots.failure_bars(out / "failures.png", groups) if groups else None
        lines += _section("Failure modes", body, image,
                          note="Counts of each unsuccessful trajectory's primary tag; the rules are at the end.")
        body, points = tables.turns_tokens(grid, stats)
        image = None
        if points:
            image = plots.grouped_bars(out / "turns.png", [f"{e}:{p}" for e, p, _, _ in points],
                                       {"mean turns": [p[2] for p in points]}, "turns",
                                       "Mean turns per trajectory", percent=False)
        lines += _section("Turns and tokens", body, image)
        lines += _section("Training stages", _stages(grid, store))
        lines += _section("Definitions", [METRIC_DEFINITIONS.strip(), "", FAILURE_RULES.strip()])
        numbers = {"cells": {key: {**grid.cells[key].describe(), **(s.as_dict() if s else {"done": False})}
                             for key, s in stats.items()}}
    finally:
        store.close()
    return "\n".join(lines) + "\n", numbers


def _stages(grid: Grid, store: ResultsStore) -> list[str]:
    recorded = store.nodes()
    rows = []
    for node in grid.training_order():
        row = recorded.get(node.id)
        history = (row or {}).get("info", {}).get("history") or []
        last = f"{100 * history[-1]['success']:.0f}%" if history else tables.DASH
        first = f"{100 * history[0]['success']:.0f}%" if history else tables.DASH
        rows.append([node.label, node.kind, node.steps or tables.DASH, first, last,
                     f"{row['wall_s']:.0f}" if row else "not yet"])
    return tables.table(["checkpoint", "kind", "GRPO steps", "rollout success, first step", "last step",
                         "wall s"], rows)


def write_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    text, numbers = build(run_dir)
    out = run_dir / REPORT_DIR
    (out / "numbers.json").write_text(json.dumps(numbers, indent=1, sort_keys=True))
    path = out / "report.md"
    path.write_text(text)
    return path
