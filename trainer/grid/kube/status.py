"""What a Job's, a RayJob's or a pod's status says, in the runner's terms: pending, running, succeeded or failed, and
why, in one line a person can act on (OOMKilled, ImagePullBackOff, Unschedulable: 0/4 nodes have nvidia.com/gpu)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

State = Literal["pending", "running", "succeeded", "failed"]
Doc = dict[str, Any]
RAY_FAILED = {"FAILED", "STOPPED"}
RAY_DEPLOYMENT_FAILED = {"Failed", "ValidationFailed"}


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


def _true(conditions: list[Doc] | None, *types: str) -> Doc | None:
    for condition in conditions or []:
        if condition.get("type") in types and condition.get("status") == "True":
            return condition
    return None


def _because(condition: Doc) -> str:
    return ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p) or condition["type"]


def job(doc: Doc) -> Outcome:
    status = doc.get("status") or {}
    spec = doc.get("spec") or {}
    if _true(status.get("conditions"), "Complete", "SuccessCriteriaMet"):
        return Outcome("succeeded")
    failed = _true(status.get("conditions"), "Failed", "FailureTarget")
    if failed is not None:
        return Outcome("failed", _because(failed))
    if (status.get("succeeded") or 0) >= (spec.get("completions") or 1):
        return Outcome("succeeded")
    if (status.get("failed") or 0) > spec.get("backoffLimit", 6):
        return Outcome("failed", f"{status['failed']} failed pod(s), over the backoff limit")
    return Outcome("running" if status.get("active") else "pending")


def rayjob(doc: Doc) -> Outcome:
    status = doc.get("status") or {}
    job_status, deployment = status.get("jobStatus", ""), status.get("jobDeploymentStatus", "")
    why = ": ".join(p for p in (status.get("reason"), status.get("message")) if p)
    if job_status == "SUCCEEDED" and deployment in ("", "Complete", "Running", "Suspended"):
        return Outcome("succeeded")
    if job_status in RAY_FAILED or deployment in RAY_DEPLOYMENT_FAILED:
        return Outcome("failed", why or f"jobStatus {job_status or '-'}, jobDeploymentStatus {deployment}")
    return Outcome("running" if job_status == "RUNNING" or deployment == "Running" else "pending")


def of(doc: Doc) -> Outcome:
    return rayjob(doc) if doc.get("kind") == "RayJob" else job(doc)


def pod(doc: Doc) -> str:
    """A pod's state in a few words: its phase and, when there is one, why it is not running as it should."""
    status = doc.get("status") or {}
    phase = status.get("phase", "Pending")
    details = []
    unscheduled = next((c for c in status.get("conditions") or []
                        if c.get("type") == "PodScheduled" and c.get("status") == "False"), None)
    if unscheduled is not None:
        details.append(_because(unscheduled))
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason") not in (None, "ContainerCreating"):
            waiting = state["waiting"]
            details.append(": ".join(p for p in (waiting.get("reason"), waiting.get("message")) if p))
        elif "terminated" in state:
            ended = state["terminated"]
            exit_code = ended.get("exitCode")
            if ended.get("reason") != "Completed" or exit_code:
                details.append(f"{ended.get('reason') or 'terminated'} (exit {exit_code})")
    return phase + (f" ({'; '.join(details)})" if details else "")
