"""Plays the cluster's controllers and pods for the grid backend's tests, on the stand-in API server (a test double
of an outside service: no Kubernetes can run here).

For every workload of a run that appears, it does what the Job controller, KubeRay and the pod would: makes the
pod, writes its log, and ends the Job (or RayJob) as the test's `decide` says. An evaluation pod of a scripted
policy really runs `python -m trainer.grid.kube.evaluate` (the Job's command) against a real env server on loopback;
one of a trained policy, whose vLLM cannot run here, prints a block of records of the right shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from tests.kube_apiserver import StandinApiServer
from trainer.grid.kube import results
from trainer.grid.kube.naming import Workload, run_selector

REPO = Path(__file__).resolve().parents[2]
Action = Literal["succeed", "fail", "run"]  # run: leave it running (a pod in phase Running)


@dataclass
class ClusterActor:
    api: StandinApiServer
    namespace: str
    run: str
    endpoints: dict[str, str]  # env -> a real env server, for the scripted evaluation pods
    decide: Callable[[Workload, dict], Action] = lambda work, obj: "succeed"
    handled: dict[str, Action] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cluster-actor", daemon=True)

    def __enter__(self) -> "ClusterActor":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except BaseException as err:  # noqa: BLE001 - surfaced by the test through .errors
                self.errors.append(err)
                return
            self._stop.wait(0.05)

    def step(self) -> None:
        for kind in ("jobs", "rayjobs"):
            for obj in self.api.objects(kind, self.namespace, run_selector(self.run)):
                name = obj["metadata"]["name"]
                work = Workload.from_labels(obj["metadata"]["labels"])
                if work is None or self.handled.get(name) in ("succeed", "fail"):
                    continue
                action = self.decide(work, obj)
                if self.handled.get(name) == action:
                    continue
                self.handled[name] = action
                if kind == "rayjobs":
                    self._ray(name, action)
                else:
                    self._job(work, name, action)

    def _job(self, work: Workload, name: str, action: Action) -> None:
        pods = self.api.objects("pods", self.namespace, f"batch.kubernetes.io/job-name={name}")
        if not pods:
            pods = [self.api.add_pod_for_job(self.namespace, name, log="starting\n")]
            self.api.set_job_status(self.namespace, name, active=1)
        if action == "succeed":
            if work.role == "cell":  # what the evaluation prints before its pod ends
                self.api.append_pod_log(self.namespace, pods[0]["metadata"]["name"], self._cell_log(work))
            self.api.complete_job(self.namespace, name)
        elif action == "fail":
            for pod in self.api.objects("pods", self.namespace, f"batch.kubernetes.io/job-name={name}"):
                self.api.patch("pods", self.namespace, pod["metadata"]["name"], {"status": {"containerStatuses": [
                    {"name": "trainer", "ready": False, "restartCount": 0, "image": "i", "imageID": "",
                     "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}})
            self.api.fail_job(self.namespace, name)

    def _ray(self, name: str, action: Action) -> None:
        if action == "succeed":
            self.api.set_rayjob_status(self.namespace, name, job_status="SUCCEEDED", job_deployment_status="Complete")
        elif action == "fail":
            self.api.set_rayjob_status(self.namespace, name, job_status="FAILED", job_deployment_status="Failed",
                                       reason="AppFailed", message="the entrypoint exited 1")
        else:
            self.api.set_rayjob_status(self.namespace, name, job_status="RUNNING", job_deployment_status="Running")

    def _cell_log(self, work: Workload) -> str:
        files = self.api.get("configmaps", self.namespace, work.config_name)
        assert files is not None, f"no ConfigMap {work.config_name} for {work.name}"
        config = json.loads(files["data"]["cell.json"])
        if config["checkpoint"] is None:  # a scripted policy: the Job's command, for real
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "cell.json"
                path.write_text(files["data"]["cell.json"])
                environ = {f"SHIFTGYM_ENDPOINTS_{env.upper()}": target for env, target in self.endpoints.items()}
                done = subprocess.run([sys.executable, "-m", "trainer.grid.kube.evaluate", str(path)],
                                      env={**os.environ, **environ, "PYTHONPATH": str(REPO)}, cwd=REPO,
                                      capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            block = done.stdout
        else:
            block = results.encode(work.id, _records(config))
        return f"INFO vllm engine starting\n{block}INFO shutting down\n"


def _records(config: dict) -> list[dict]:
    import yaml

    from trainer.grid.expand import expand
    from trainer.grid.spec import parse_spec

    cell = expand(parse_spec(yaml.safe_load(config["spec"]))).cells[config["cell"]]
    return [{"task_id": f"{cell.env}/test/{cell.difficulty}/{t:04d}", "sample": s, "seed": cell.seed,
             "interface": cell.interface, "status": "completed", "reason": "", "success": (t + s) % 2 == 0,
             "score": 1.0, "reward": 1.0, "turns": 3, "invalid": 0, "policy_tokens": 12, "trajectory_tokens": 90,
             "cut_turns": 0, "actions": ["go forward"], "valid": [True]}
            for t in range(cell.tasks) for s in range(cell.k)]


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
