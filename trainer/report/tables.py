"""The report's Markdown tables, one function per section, from the grid's views and per-cell statistics.

Success values are avg@k in percent; `[lo, hi]` is the bootstrap 95% interval; a dash is a cell not run yet;
"failed" a cell whose every episode ended `failed` (e.g. a choice-mode policy under an interface that hides the
valid actions: it has nothing to choose from).
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

from trainer.grid.expand import Grid
from trainer.report.failures import TAGS
from trainer.report.metrics import sequence_summary, transfer_deltas, unseen_mean_gain
from trainer.report.stats import CellStats

Stats = Mapping[str, CellStats | None]
DASH = "–"


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def success(stats: Stats, key: str | None, ci: bool = True) -> str:
    s = stats.get(key) if key else None
    if s is None:
        return DASH
    if s.failed_rate == 1.0:
        return "failed"
    return s.avg.fmt() if ci else f"{100 * s.avg.value:.1f}"


def value(stats: Stats, key: str | None) -> float | None:
    s = stats.get(key) if key else None
    return None if s is None else s.avg.value


def signed(delta: float | None) -> str:
    return DASH if delta is None else f"{100 * delta:+.1f}"


def reference(grid: Grid, stats: Stats) -> list[str]:
    rows = []
    for (policy, env, difficulty), key in sorted(grid.views.reference.items(), key=lambda i: (i[0][1], i[0][2])):
        s = stats.get(key)
        if s is None:
            rows.append([env, difficulty, grid.cells[key].label, DASH, DASH, DASH, DASH, DASH, DASH, DASH, DASH])
            continue
        rows.append([env, difficulty, grid.cells[key].label, f"{s.tasks}x{s.k}", s.avg.fmt(), s.pass_k.fmt(),
                     f"{s.score:.2f}", f"{s.turns:.1f}", f"{s.policy_tokens:.0f}" if s.policy_tokens else DASH,
                     f"{100 * s.invalid_rate:.0f}%", f"{100 * s.truncation_rate:.0f}%"])
    k = grid.spec.evaluation.k
    return table(["env", "difficulty", "policy", "tasks x k", f"avg@{k} % [95% CI]", f"pass@{k} % [95% CI]",
                  "mean score", "turns", "tokens", "invalid actions", "truncated"], rows)


def difficulty(grid: Grid, stats: Stats) -> list[str]:
    tests = grid.spec.axes.difficulty.test if grid.spec.axes.difficulty else []
    rows = [[env, policy, regime.replace("_", "-"), *(success(stats, keys.get(t)) for t in tests)]
            for (policy, env, regime), keys in grid.views.difficulty.items()]
    return table(["env", "policy", "trained on", *(f"test {t}" for t in tests)], rows)


def transfer(grid: Grid, stats: Stats, policy: str) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The transfer matrix (avg@k) and its deltas against the base row; returns the table and the deltas."""
    matrix = grid.views.transfer[policy]
    tests = list(matrix["base"])
    values = {train: {t: v for t, key in row.items() if (v := value(stats, key)) is not None}
              for train, row in matrix.items()}
    deltas = transfer_deltas({tr: row for tr, row in values.items() if tr != "base"}, values["base"])
    rows = [["base (untrained)", *(success(stats, matrix["base"][t], ci=False) for t in tests)]]
    for train, row in matrix.items():
        if train == "base":
            continue
        rows.append([f"trained on {train}", *(f"{success(stats, row[t], ci=False)} ({signed(deltas[train].get(t))})"
                                              for t in tests)])
    lines = table(["", *(f"test {t}" for t in tests)], rows)
    lines += ["", f"Mean gain on unseen environments (off-diagonal deltas): {signed(unseen_mean_gain(deltas))} points; "
              f"on the trained environment (diagonal): "
              f"{signed(_mean([d[t] for t, d in deltas.items() if t in d]))} points."]
    return lines, deltas


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def sequential(grid: Grid, stats: Stats) -> tuple[list[str], dict]:
    """Per order: success on each env after each stage, BWT, FWT and per-env forgetting; mixture beside it."""
    lines: list[str] = []
    curves: dict = {}
    for (policy, order), rows in grid.views.sequential.items():
        name = " → ".join(order)
        lines += [f"**{policy}: {name}**", ""]
        body = []
        matrix: list[list[float | None]] = []
        for j, row in enumerate(rows):
            label = "base" if j == 0 else f"after {order[j - 1]}"
            body.append([label, *(success(stats, row[e], ci=False) for e in order)])
            matrix.append([value(stats, row[e]) for e in order])
        mixture = grid.views.mixture.get((policy, order))
        if mixture:
            body.append(["mixture (joint)", *(success(stats, mixture[e], ci=False) for e in order)])
        lines += table(["", *order], body)
        curves[(policy, order)] = matrix
        if all(v is not None for row in matrix for v in row):
            summary = sequence_summary([row for row in matrix[1:]], matrix[0])  # type: ignore[arg-type]
            forgetting = ", ".join(f"{e} {100 * f:.1f}" for e, f in zip(order, summary.forgetting))
            lines += ["", f"Backward transfer {signed(summary.backward_transfer)} points (negative: forgetting); "
                      f"forward transfer {signed(summary.forward_transfer)} points; forgetting per env: {forgetting}."]
        lines.append("")
    return lines, curves


def mixture_vs_sequential(grid: Grid, stats: Stats) -> tuple[list[str], list[tuple[str, str, float, float]]]:
    rows, points = [], []
    for (policy, order), rows_by_stage in grid.views.sequential.items():
        mixture = grid.views.mixture.get((policy, order))
        if not mixture:
            continue
        final = rows_by_stage[-1]
        for env in order:
            seq, mix = value(stats, final[env]), value(stats, mixture[env])
            delta = None if seq is None or mix is None else mix - seq
            rows.append([policy, " → ".join(order), env, success(stats, final[env]), success(stats, mixture[env]),
                         signed(delta)])
            if seq is not None and mix is not None:
                points.append((" → ".join(o[:2] for o in order), env, seq, mix))
    return table(["policy", "order", "env", "sequential (final)", "mixture", "mixture − sequential"], rows), points


def interface(grid: Grid, stats: Stats) -> tuple[list[str], dict]:
    """Per env: each policy's avg@k under every test interface, with the change against the trained-on one."""
    lines: list[str] = []
    heat: dict = {}
    trained_on = grid.views.interface_trained_on
    envs = list(dict.fromkeys(env for (_, env) in grid.views.interface))
    for env in envs:
        body = []
        presets: list[str] = []
        for (policy, e), parts in grid.views.interface.items():
            if e != env:
                continue
            presets = list(parts["base"])
            for which, keys in parts.items():
                origin = value(stats, keys.get(trained_on))
                scripted = grid.cells[keys[trained_on]].node is None
                state = "untrained" if which == "base" else f"trained on {trained_on}"
                label = policy if scripted else f"{policy} ({state})"
                body.append([label, *(success(stats, keys[p], ci=False)
                                      + (f" ({signed(v - origin)})" if p != trained_on and origin is not None
                                         and (v := value(stats, keys[p])) is not None else "")
                                      for p in presets)])
                heat[(policy, env, which)] = [value(stats, keys[p]) for p in presets]
        lines += [f"**{env}**", "", *table(["policy", *presets], body), ""]
    return lines, heat


def failure_modes(grid: Grid, stats: Stats) -> tuple[list[str], dict[str, Counter]]:
    """Primary failure tags of unsuccessful trajectories, per policy group (scripted, untrained, trained)."""
    groups: dict[str, Counter] = {}
    totals: Counter = Counter()
    for key, s in stats.items():
        if s is None:
            continue
        cell = grid.cells[key]
        node = grid.nodes.get(cell.node) if cell.node else None
        group = cell.policy if node is None else (f"{cell.policy} (untrained)" if node.kind != "grpo"
                                                    else f"{cell.policy} (RL-trained)")
        groups.setdefault(group, Counter()).update(s.failure_modes)
        totals[group] += s.episodes
    rows = [[g, totals[g], sum(c.values()), *(c.get(t, 0) for t in TAGS)] for g, c in sorted(groups.items())]
    return table(["policy", "episodes", "unsuccessful", *TAGS], rows), groups


def turns_tokens(grid: Grid, stats: Stats) -> tuple[list[str], list[tuple[str, str, float, float]]]:
    """Mean turns and policy tokens per env: every baseline row, and the policy trained on that env (A2)."""
    rows, points = [], []
    seen = set()
    for (policy, env, difficulty), key in sorted(grid.views.reference.items(), key=lambda i: (i[0][1], i[0][0])):
        if difficulty != grid.spec.evaluation.difficulties[0] or stats.get(key) is None:
            continue
        s = stats[key]
        tokens = f"{s.policy_tokens:.1f}" if s.policy_tokens else DASH
        rows.append([env, grid.cells[key].label, f"{s.turns:.2f}", tokens])
        points.append((env, grid.cells[key].label, s.turns, s.policy_tokens))
        seen.add(key)
    for policy, matrix in grid.views.transfer.items():
        for train, row in matrix.items():
            key = row.get(train)
            if train == "base" or key is None or key in seen or stats.get(key) is None:
                continue
            s = stats[key]
            rows.append([train, f"{policy} trained on {train}", f"{s.turns:.2f}", f"{s.policy_tokens:.1f}"])
            points.append((train, f"{policy} (RL)", s.turns, s.policy_tokens))
    return table(["env", "policy", "mean turns", "mean policy tokens"], rows), points


def signal(grid: Grid, stats: Stats, difficulty: str = "easy") -> list[str]:
    """Per env, on `difficulty`: each trained policy before RL (warm-started when the spec says so), after GRPO on
    that env (A2's diagonal), and the random row; "above random" when the policy's 95% interval lies above random's
    avg@k. Read from the signal cells (evaluation.signal_tasks) when the grid has them, else from the reference
    rows. Empty when the grid has no random row or no trained policy."""
    random_policies = [p for p in grid.spec.baseline_policies if grid.spec.policies[p].kind == "random"]
    trained = grid.spec.trained_policies
    if not random_policies or not trained:
        return []
    rows, verdicts = [], []
    for policy in trained:
        for env in grid.spec.envs:
            if grid.views.signal:
                base_key, random_key = grid.views.signal.get((policy, env)), grid.views.signal.get(
                    (random_policies[0], env))
            else:
                base_key = grid.views.reference.get((policy, env, difficulty))
                random_key = grid.views.reference.get((random_policies[0], env, difficulty))
            if base_key is None or random_key is None:
                continue
            base, rand = stats.get(base_key), stats.get(random_key)
            rl_key = grid.views.transfer.get(policy, {}).get(env, {}).get(env)
            above = base is not None and rand is not None and base.avg.low > rand.avg.value
            cell = grid.cells[base_key]
            rows.append([env, cell.label, f"{cell.tasks}x{cell.k}", success(stats, base_key), success(stats, rl_key),
                         success(stats, random_key), DASH if base is None or rand is None else
                         f"{signed(base.avg.value - rand.avg.value)}{' (above random)' if above else ''}"])
            if base is not None and rand is not None:
                verdicts.append((policy, env, above))
    lines = table(["env", "policy (before RL)", "tasks x k", "avg@k % [95% CI]", "after GRPO on the env", "random",
                   "policy − random, points"], rows)
    for policy in trained:
        mine = [(env, above) for p, env, above in verdicts if p == policy]
        if mine:
            winners = [env for env, above in mine if above]
            lines += ["", f"`{policy}` before RL is above random on {difficulty} in {len(winners)} of {len(mine)} "
                          f"environments ({', '.join(winners) or 'none'}): its 95% interval lies above random's "
                          f"avg@k there."]
    return lines
