"""The report's PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from trainer.report.failures import TAGS


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:  # noqa: ANN001
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path.name


def heatmap(path: Path, rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[float | None]],
            title: str, *, diverging: bool = False) -> str:
    plt = _plt()
    import numpy as np

    data = np.array([[np.nan if v is None else 100 * v for v in row] for row in values], dtype=float)
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2.5, 0.55 * len(rows) + 1.8))
    limit = max(np.nanmax(np.abs(data)) if np.isfinite(data).any() else 1.0, 1.0)
    image = ax.imshow(data, cmap="RdBu" if diverging else "viridis", vmin=-limit if diverging else 0,
                      vmax=limit if diverging else 100, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isfinite(data[i, j]):
                dark = abs(data[i, j]) > 0.6 * limit if diverging else data[i, j] < 70
                ax.text(j, i, f"{data[i, j]:+.0f}" if diverging else f"{data[i, j]:.0f}", ha="center", va="center",
                        fontsize=8, color="white" if dark else "black")
    fig.colorbar(image, ax=ax, label="points" if diverging else "avg@k %")
    ax.set_title(title)
    return _save(fig, path)


def grouped_bars(path: Path, groups: Sequence[str], series: dict[str, Sequence[float | None]], ylabel: str,
                 title: str, percent: bool = True) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(groups) * max(len(series), 1) / 2 + 3), 3.8))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + i * width for g in range(len(groups))]
        ys = [0 if v is None else (100 * v if percent else v) for v in values]
        ax.bar(xs, ys, width, label=name)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if percent:
        ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def forgetting_curves(path: Path, curves: dict, title: str) -> str:
    """One panel per order: each env's success after every stage."""
    plt = _plt()
    fig, axes = plt.subplots(1, max(len(curves), 1), figsize=(4.5 * max(len(curves), 1), 3.6), squeeze=False)
    for ax, ((policy, order), matrix) in zip(axes[0], curves.items()):
        stages = ["base", *order]
        for i, env in enumerate(order):
            ys = [None if row[i] is None else 100 * row[i] for row in matrix]
            ax.plot(range(len(stages)), [float("nan") if y is None else y for y in ys], marker="o", label=env)
        ax.set_xticks(range(len(stages)), stages, rotation=30, ha="right", fontsize=7)
        ax.set_ylim(-5, 105)
        ax.set_ylabel("avg@k %")
        ax.set_title(f"{policy}: {' → '.join(e[:4] for e in order)}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(title)
    return _save(fig, path)


def failure_bars(path: Path, groups: dict[str, Counter]) -> str:
    plt = _plt()
    names = sorted(groups)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(names) + 2), 3.8))
    bottom = [0.0] * len(names)
    for tag in TAGS:
        shares = []
        for name in names:
            total = sum(groups[name].values())
            shares.append(100 * groups[name].get(tag, 0) / total if total else 0.0)
        ax.bar(names, shares, bottom=bottom, label=tag)
        bottom = [b + s for b, s in zip(bottom, shares)]
    ax.set_ylabel("% of unsuccessful trajectories")
    ax.set_title("Failure modes (primary tag)")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return _save(fig, path)
