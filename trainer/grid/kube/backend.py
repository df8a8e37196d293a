"""The grid runner's Kubernetes backend: each training stage and evaluation cell is a workload (a ConfigMap and a
Job, or a RayJob for a GRPO stage on the rayjob overlay), watched until it ends.

- Adoption: before submitting, the backend looks in the watch cache (the run's objects, listed when it opened) for
  the item's latest attempt. One still pending or running, or one that succeeded while no runner was there, is
  adopted instead of started again; one that failed is followed by a new attempt.
- Retries: a failed attempt (the Job's or RayJob's reason, and its pods' states: OOMKilled, ImagePullBackOff...)
  is retried as a new Job, `retries` times; then StageFailed carries every attempt's reason to the runner.
- Results: a cell's Job prints its records as one checksummed block (trainer/grid/kube/results.py); a log
  without an intact block makes the attempt fail, so it is retried, never half-recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Literal

from trainer.grid.expand import Cell, Grid, Node
from trainer.grid.kube import manifests, results, status, templates, validation
from trainer.grid.kube.cluster import AlreadyExists, Cluster
from trainer.grid.kube.naming import ATTEMPT, Workload, item_selector, run_selector
from trainer.grid.kube.plan import Checkpoints, ClusterPlan, PlanError, WorkloadSpec
from trainer.grid.kube.watch import Watcher
from trainer.grid.runner import Progress, QuietProgress, StageFailed

Overlay = Literal["gpu-job", "rayjob"]
WAIT_S = 60.0  # a waiter wakes at least this often to notice a watch that gave up


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    run: str  # labels every object: `shiftgym grid delete RUN`
    image: str  # the trainer image (Dockerfile target "trainer")
    overlay: Overlay = "gpu-job"
    checkpoints: Checkpoints = field(default_factory=Checkpoints)
    retries: int = 2  # new attempts after a failed one
    k8s_dir: Path = templates.K8S_DIR


class KubernetesBackend:
    def __init__(self, grid: Grid, work_dir: Path, cluster: Cluster, settings: ClusterSettings,
                 progress: Progress | None = None) -> None:
        self.grid = grid
        self.work_dir = Path(work_dir)
        self.cluster = cluster
        self.settings = settings
        self.progress = progress or QuietProgress()
        self.watchers: dict[str, Watcher] = {}
        self._labels: dict[str, str] = {}  # workload name -> what it runs, for progress lines
        self._pod_states: dict[str, str] = {}

    @property
    def namespace(self) -> str:
        return self.cluster.namespace

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator["KubernetesBackend"]:
        """Render the templates, write the plan, check access, and watch the run's objects while open."""
        rayjobs = self.settings.overlay == "rayjob"
        self.templates = await asyncio.to_thread(templates.load, self.settings.k8s_dir, rayjobs)
        self.plan = await asyncio.to_thread(ClusterPlan, self.grid, self.work_dir, self.namespace,
                                            self.settings.checkpoints, self.templates.launch_script)
        self._check_nodes()
        await asyncio.to_thread(self.cluster.check_access, rayjobs)
        selector = run_selector(self.settings.run)
        kinds = ["Job", "Pod"] + (["RayJob"] if rayjobs else [])
        self.watchers = {kind: Watcher(self.cluster, kind, selector,
                                       on_change=self._pod_changed if kind == "Pod" else None) for kind in kinds}
        try:
            await asyncio.gather(*(w.start() for w in self.watchers.values()))
            yield self
        finally:
            for watcher in self.watchers.values():
                watcher.stop()

    def _check_nodes(self) -> None:
        if self.settings.overlay == "rayjob":
            return
        for node in self.grid.training_order():
            if node.kind == "grpo":
                nodes = self.grid.spec.training.launch.get("num_nodes", 1)
                if nodes > 1:
                    raise PlanError(f"stage {node.label} trains on {nodes} nodes: a Job has one; use --overlay "
                                    "rayjob")

    # --- the backend interface -------------------------------------------------------------------------

    async def run_training_stage(self, node: Node, parent_checkpoint: str | None,
                                 out_dir: Path) -> tuple[str, dict[str, Any]]:
        spec = self.plan.stage(node, parent_checkpoint)
        checkpoint = self.plan.checkpoint(node)
        if spec is None:
            return checkpoint, {"model": checkpoint}
        kind = "RayJob" if node.kind == "grpo" and self.settings.overlay == "rayjob" else "Job"
        work, reasons, _ = await self._run("stage", node.id, node.label, kind, spec)
        return checkpoint, {"workload": f"{kind}/{work.name}", "namespace": self.namespace,
                            "failed_attempts": reasons}

    async def run_evaluation_cell(self, cell: Cell, checkpoint: str | None) -> list[dict[str, Any]]:
        spec = self.plan.cell(cell, checkpoint)
        label = f"{cell.label} on {cell.env}/{cell.difficulty}/{cell.interface}"
        _, _, records = await self._run("cell", cell.key, label, "Job", spec)
        return records or []

    # --- one item, attempt by attempt ------------------------------------------------------------------

    def _latest(self, role: str, item_id: str) -> tuple[str, Workload, dict[str, Any]] | None:
        found = []
        for kind in ("Job", "RayJob"):
            watcher = self.watchers.get(kind)
            for obj in (watcher.objects.values() if watcher else ()):
                work = Workload.from_labels(obj["metadata"].get("labels") or {})
                if work and work.run == self.settings.run and work.role == role and work.id == item_id:
                    found.append((kind, work, obj))
        return max(found, key=lambda f: f[1].attempt) if found else None

    async def _run(self, role: str, item_id: str, label: str, kind: str,
                   spec: WorkloadSpec) -> tuple[Workload, list[str], list[dict[str, Any]] | None]:
        reasons: list[str] = []
        adopt: tuple[str, Workload] | None = None
        next_attempt = 0
        latest = self._latest(role, item_id)
        if latest is not None:
            latest_kind, work, obj = latest
            next_attempt = work.attempt + 1
            if status.of(obj).state != "failed":
                adopt = (latest_kind, work)
                self.progress.note(f"{label}: adopting {latest_kind} {work.name} ({status.of(obj).state})")
        while True:
            if adopt is not None:
                (run_kind, work), adopt = adopt, None
                self._labels[work.name] = label
            else:
                run_kind, work = kind, Workload(self.settings.run, role, item_id, next_attempt)
                next_attempt += 1
                self._labels[work.name] = label
                await self._submit(run_kind, work, spec)
            outcome = await self._wait(run_kind, work.name)
            records = None
            if outcome.state == "succeeded" and role == "cell":
                try:
                    records = await self._collect(work, item_id)
                except results.NoRecords as err:
                    outcome = status.Outcome("failed", str(err))
            if outcome.state == "succeeded":
                return work, reasons, records
            outcome = await self._why(outcome, work)
            reasons.append(f"attempt {work.attempt} ({run_kind} {work.name}): {outcome.reason}")
            self.progress.note(f"{label}: {run_kind} {work.name} failed: {outcome.reason}")
            if len(reasons) > self.settings.retries:
                raise StageFailed(reasons)

    async def _submit(self, kind: str, work: Workload, spec: WorkloadSpec) -> None:
        ns, image, ckpt = self.namespace, self.settings.image, self.settings.checkpoints
        build = manifests.rayjob if kind == "RayJob" else manifests.job
        workload = build(self.templates, work, ns, image, spec, ckpt)
        files = manifests.configmap(work, ns, spec)
        validation.check(workload)  # before the ConfigMap goes: nothing is sent for a workload that would fail
        try:
            await asyncio.to_thread(self.cluster.create, files)
        except AlreadyExists:  # left by a runner stopped between the two creates: this attempt's files win
            await asyncio.to_thread(self.cluster.delete, "ConfigMap", work.config_name)
            await asyncio.to_thread(self.cluster.create, files)
        try:
            made = await asyncio.to_thread(self.cluster.create, workload)
        except AlreadyExists:
            return  # created by an earlier runner after its last list: watch that one
        self.watchers[kind].seed(made)
        self.progress.note(f"{self._labels[work.name]}: created {kind} {work.name}")

    async def _wait(self, kind: str, name: str) -> status.Outcome:
        watcher = self.watchers[kind]
        while True:
            obj = watcher.get(name)
            if obj is None and name in watcher.gone:
                return status.Outcome("failed", "deleted before it finished")
            if obj is not None:
                outcome = status.of(obj)
                if outcome.finished:
                    return outcome
            await watcher.changed(timeout_s=WAIT_S)

    async def _pods(self, work: Workload) -> list[dict[str, Any]]:
        """The attempt's pods, listed afresh: the pod watch may lag the Job's (they are separate streams)."""
        selector = f"{item_selector(work.run, work.role, work.id)},{ATTEMPT}={work.attempt}"
        pods, _ = await asyncio.to_thread(self.cluster.list, "Pod", selector)
        return pods

    async def _why(self, outcome: status.Outcome, work: Workload) -> status.Outcome:
        """A failure's reason with its pods' states (OOMKilled, ImagePullBackOff, Unschedulable...)."""
        states = [f"pod {p['metadata']['name']} {status.pod(p)}" for p in await self._pods(work)]
        return status.Outcome("failed", "; ".join([outcome.reason or "failed", *states]))

    async def _collect(self, work: Workload, cell_key: str) -> list[dict[str, Any]]:
        pods = [p for p in await self._pods(work) if (p.get("status") or {}).get("phase") == "Succeeded"]
        if not pods:
            raise results.NoRecords(f"no succeeded pod of Job {work.name} to read the records from")
        problems = []
        for pod in pods:
            log = await asyncio.to_thread(self.cluster.log, pod["metadata"]["name"])
            try:
                return results.decode(cell_key, log)
            except results.NoRecords as err:
                problems.append(str(err))
        raise results.NoRecords("; ".join(problems))

    # --- progress --------------------------------------------------------------------------------------

    def _pod_changed(self, event: str, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        work = Workload.from_labels(pod["metadata"].get("labels") or {})
        if event == "DELETED" or work is None:
            self._pod_states.pop(name, None)
            return
        state = status.pod(pod)
        if self._pod_states.get(name) != state and not state.startswith("Succeeded"):
            label = self._labels.get(work.name, work.name)
            self.progress.note(f"{label}: pod {name} {state}")
        self._pod_states[name] = state


def delete_run(cluster: Cluster, run: str, rayjobs: bool = True) -> dict[str, int]:
    """Delete every object of a run (workloads first; their pods go with them); {kind: objects deleted}."""
    from trainer.grid.kube.cluster import ClusterError

    selector = run_selector(run)
    counts: dict[str, int] = {}
    for kind in ("RayJob", "Job", "ConfigMap"):
        if kind == "RayJob" and not rayjobs:
            continue
        try:
            items, _ = cluster.list(kind, selector)
        except ClusterError as err:
            if kind == "RayJob" and "does not serve" in str(err):
                continue  # no KubeRay on this cluster: no RayJobs to delete
            raise
        counts[kind] = sum(cluster.delete(kind, item["metadata"]["name"]) for item in items)
    return counts
