"""`shiftgym grid run|show|emit|delete` and `shiftgym report`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import click

from trainer.grid.expand import Grid, expand
from trainer.grid.kube.options import kube_options
from trainer.grid.spec import GridSpec, SpecError, dump_spec, load_spec

if TYPE_CHECKING:
    from trainer.grid.runner import Progress, RunSummary


def _spec(spec_path: str | None, preset_name: str | None) -> GridSpec:
    from trainer.grid.presets import preset

    if bool(spec_path) == bool(preset_name):
        raise click.UsageError("give a spec file or --preset NAME (one of them)")
    try:
        return load_spec(spec_path) if spec_path else preset(preset_name)  # type: ignore[arg-type]
    except SpecError as err:
        raise click.ClickException(f"bad grid spec {spec_path or preset_name}:\n{err}") from None
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from None


def _summary(grid: Grid) -> str:
    order = grid.training_order()
    kinds = {k: sum(n.kind == k for n in order) for k in ("base", "warm_start", "grpo")}
    return (f"grid {grid.spec.name!r}: {len(grid.cells)} evaluation cells, {len(order)} checkpoints "
            f"({kinds['base']} base, {kinds['warm_start']} warm start, {kinds['grpo']} GRPO stages, "
            f"{sum(n.steps for n in order)} GRPO steps)")


@contextlib.contextmanager
def _endpoints(spec: GridSpec, given: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """The given endpoints, plus a local server for every env of the spec without one (stopped on the way out)."""
    from trainer.grid.fleet import local_fleet
    from trainer.grid.local import parse_endpoints

    try:
        endpoints = parse_endpoints(given)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--endpoint") from None
    missing = [env for env in spec.envs if env not in endpoints]
    if not missing:
        yield endpoints
        return
    click.echo(f"starting local env servers on loopback: {', '.join(missing)}", err=True)
    with local_fleet(missing) as started:
        yield {**endpoints, **started}


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@click.group("grid")
def grid_group() -> None:
    """The evaluation grid: train by plan, evaluate every cell, keep results in a resumable store."""


spec_argument = click.argument("spec_path", required=False, type=click.Path(exists=True, dir_okay=False))
preset_option = click.option("--preset", "preset_name", default=None, help="A built-in spec: smoke or paper.")


@grid_group.command("run")
@spec_argument
@preset_option
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run directory: results.sqlite, checkpoints/, report/. Rerun with the same --out to resume.")
@click.option("--endpoint", "endpoints", multiple=True,
              help="ENV=host:port[,host:port] of running servers (with --enable-oracle); repeat per env. Envs "
                   "without one get a local server on loopback for the run.")
@click.option("--no-report", is_flag=True, help="Skip writing the report at the end.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--backend", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True,
              help="local: CPU training and evaluation here; kubernetes: every stage and cell as a cluster workload.")
@kube_options
def run_command(spec_path: str | None, preset_name: str | None, run_dir: str, endpoints: tuple[str, ...],
                no_report: bool, no_progress: bool, backend: str, **kube: object) -> None:
    """Run a grid (a spec file or --preset) into RUN_DIR, resuming what is there."""
    from trainer.grid.runner import BarProgress, QuietProgress, RunDirBusy
    from trainer.grid.store import ResultsStoreError

    spec = _spec(spec_path, preset_name)
    grid = expand(spec)
    if backend == "local":
        source = click.get_current_context().get_parameter_source
        given = [f"--{k.replace('_', '-')}" for k in kube if source(k) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"{', '.join(given)}: only with --backend kubernetes")
    elif endpoints:
        raise click.UsageError("--endpoint: only with --backend local (cluster workloads reach the env Services)")
    click.echo(_summary(grid), err=True)
    # A failed episode is data (its reason goes to the store), not a line on the console between the bars.
    logging.getLogger("trainer.episodes").setLevel(logging.ERROR)
    out = Path(run_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "spec.yaml").write_text(dump_spec(spec))
    except OSError as err:
        raise click.ClickException(f"cannot write the run directory {out}: {err.strerror}; choose another --out") \
            from None
    began = time.monotonic()
    # SIGTERM unwinds like Ctrl-C, so the local env servers are stopped on the way out either way.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    progress = QuietProgress() if no_progress else BarProgress()
    try:
        if backend == "kubernetes":
            from trainer.grid.kube.command import run_on_cluster

            summary = run_on_cluster(grid, out, progress, **kube)  # type: ignore[arg-type]
        else:
            summary = _run_local(grid, out, endpoints, progress)
    except (RunDirBusy, ResultsStoreError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"trained {summary.nodes_trained} checkpoints ({summary.nodes_reused} reused), ran "
               f"{summary.cells_run} cells ({summary.cells_reused} reused) in {time.monotonic() - began:.0f} s",
               err=True)
    if not no_report:
        from trainer.report.build import write_report

        path = write_report(out)
        click.echo(f"report: {path}")
    if summary.failed:
        raise click.ClickException(f"{len(summary.failed)} failed (reasons: the store's 'failures' meta): "
                                   + "; ".join(summary.failed) + ". Rerun the same command to retry them")


def _run_local(grid: Grid, out: Path, endpoints: tuple[str, ...], progress: "Progress") -> "RunSummary":
    from trainer.grid.local import LocalBackend
    from trainer.grid.runner import GridRunner

    with _endpoints(grid.spec, endpoints) as targets:
        backend = LocalBackend(grid.spec, targets)

        async def go():  # noqa: ANN202
            async with backend.opened():
                return await GridRunner(grid, out, backend, progress).run()

        return asyncio.run(go())


@grid_group.command("delete")
@click.argument("run")
@click.option("--namespace", default="shiftgym", show_default=True, help="The run's namespace.")
@click.option("--context", default=None, help="kubeconfig context (default: the current one).")
@click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False),
              help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config; in a pod, its service account).")
@click.option("--request-timeout", default=30.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds any one API request may take.")
def delete_command(run: str, namespace: str, context: str | None, kubeconfig: str | None,
                   request_timeout: float) -> None:
    """Delete every Kubernetes object of grid run RUN (its Jobs, RayJobs, ConfigMaps; pods go with their Jobs).
    Checkpoints on the volume and the local results store stay."""
    from trainer.grid.kube.command import delete_on_cluster

    counts = delete_on_cluster(run, namespace, context, kubeconfig, request_timeout)
    click.echo(f"deleted run {run} in namespace {namespace}: "
               + ", ".join(f"{n} {kind}(s)" for kind, n in counts.items()))


@grid_group.command("show")
@spec_argument
@preset_option
@click.option("--cells", is_flag=True, help="List every checkpoint and cell too.")
def show_command(spec_path: str | None, preset_name: str | None, cells: bool) -> None:
    """Validate a spec and print it as YAML (with every default) and what it expands into."""
    spec = _spec(spec_path, preset_name)
    grid = expand(spec)
    click.echo(dump_spec(spec))
    click.echo("# " + _summary(grid))
    if cells:
        for node in grid.training_order():
            click.echo(f"# node {node.id} {node.kind:10s} {node.label} ({node.steps} steps)")
        for cell in sorted(grid.cells.values(), key=lambda c: (c.label, c.env, c.difficulty, c.interface)):
            click.echo(f"# cell {cell.key} {cell.label} | {cell.env}/{cell.split}/{cell.difficulty} | "
                       f"{cell.interface} | {cell.tasks} tasks x {cell.k}")


@grid_group.command("emit")
@spec_argument
@preset_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--endpoint", "endpoints", multiple=True,
              help="ENV=endpoints the GPU job's pods reach (default: dns:///ENV.shiftgym.svc.cluster.local:50051).")
@click.option("--checkpoints", default="/checkpoints/shiftgym", show_default=True,
              help="Where the GPU jobs write checkpoints (a stage starts from its parent's directory).")
def emit_command(spec_path: str | None, preset_name: str | None, out_dir: str, endpoints: tuple[str, ...],
                 checkpoints: str) -> None:
    """Write the OpenRLHF launch and dataset files of every training stage (for GPU nodes)."""
    from trainer.grid.gpu import emit
    from trainer.grid.local import parse_endpoints

    spec = _spec(spec_path, preset_name)
    try:
        plan = emit(expand(spec), Path(out_dir), parse_endpoints(endpoints), checkpoints)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {len(plan['stages'])} stages to {out_dir} (plan: {Path(out_dir) / 'plan.json'})")


@click.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def report_command(run_dir: str) -> None:
    """Rebuild RUN_DIR/report/ (Markdown and PNGs) from RUN_DIR/results.sqlite alone."""
    from trainer.report.build import write_report

    try:
        path = write_report(Path(run_dir))
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"report: {path}")


def register(group: click.Group) -> None:
    group.add_command(grid_group)
    group.add_command(report_command)


if __name__ == "__main__":
    grid_group()
