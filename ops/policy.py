"""Security and resource policy over rendered manifests: every container has requests and limits, runs as a
non-root user with a read-only root filesystem, no privilege escalation, no capabilities and seccomp
RuntimeDefault (the "restricted" Pod Security Standard and more); env servers have gRPC probes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

Doc = dict[str, Any]
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


@dataclass(frozen=True, slots=True)
class PodSpec:
    where: str  # e.g. "RayJob/shiftgym-trainer head"
    labels: dict[str, str]
    spec: dict[str, Any]

    def containers(self) -> list[dict[str, Any]]:
        return [*self.spec.get("initContainers", []), *self.spec.get("containers", [])]


def pod_specs(docs: list[Doc]) -> Iterator[PodSpec]:
    """Every pod template in the docs, the ones inside KubeRay's RayJob included."""
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        templates: list[tuple[str, dict[str, Any]]] = []
        if doc["kind"] in _WORKLOADS:
            templates.append(("", doc["spec"]["template"]))
        elif doc["kind"] == "CronJob":
            templates.append(("", doc["spec"]["jobTemplate"]["spec"]["template"]))
        elif doc["kind"] == "RayJob":
            cluster = doc["spec"].get("rayClusterSpec", {})
            if "submitterPodTemplate" in doc["spec"]:
                templates.append((" submitter", doc["spec"]["submitterPodTemplate"]))
            if "headGroupSpec" in cluster:
                templates.append((" head", cluster["headGroupSpec"]["template"]))
            for group in cluster.get("workerGroupSpecs", []):
                templates.append((f" worker group {group['groupName']}", group["template"]))
        elif doc["kind"] == "Pod":
            templates.append(("", doc))
        for suffix, template in templates:
            yield PodSpec(where + suffix, template.get("metadata", {}).get("labels", {}), template["spec"])


def _effective(pod: PodSpec, container: dict[str, Any], key: str) -> Any:
    """A securityContext setting of the container, else of the pod."""
    own = container.get("securityContext", {})
    return own[key] if key in own else pod.spec.get("securityContext", {}).get(key)


def container_violations(pod: PodSpec, container: dict[str, Any]) -> list[str]:
    at = f"{pod.where} container {container['name']}"
    found = []
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        missing = [r for r in ("cpu", "memory") if r not in resources.get(kind, {})]
        if missing:
            found.append(f"{at}: no {kind} for {', '.join(missing)}")
    gpus = {kind: resources.get(kind, {}).get("nvidia.com/gpu") for kind in ("requests", "limits")}
    if gpus["requests"] != gpus["limits"]:
        found.append(f"{at}: nvidia.com/gpu requests {gpus['requests']} != limits {gpus['limits']}")
    security = container.get("securityContext", {})
    if _effective(pod, container, "runAsNonRoot") is not True:
        found.append(f"{at}: runAsNonRoot is not true")
    if _effective(pod, container, "runAsUser") in (None, 0):
        found.append(f"{at}: no non-zero runAsUser")
    if security.get("allowPrivilegeEscalation") is not False:
        found.append(f"{at}: allowPrivilegeEscalation is not false")
    if security.get("readOnlyRootFilesystem") is not True:
        found.append(f"{at}: readOnlyRootFilesystem is not true")
    if security.get("privileged"):
        found.append(f"{at}: privileged")
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        found.append(f"{at}: capabilities do not drop ALL")
    if security.get("capabilities", {}).get("add"):
        found.append(f"{at}: adds capabilities {security['capabilities']['add']}")
    seccomp = _effective(pod, container, "seccompProfile") or {}
    if seccomp.get("type") != "RuntimeDefault":
        found.append(f"{at}: seccompProfile is not RuntimeDefault")
    mounts = {m["name"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"] for v in pod.spec.get("volumes", [])}
    if mounts - volumes:
        found.append(f"{at}: mounts undefined volumes {sorted(mounts - volumes)}")
    return found


def probe_violations(pod: PodSpec, container: dict[str, Any]) -> list[str]:
    """An env server answers grpc.health.v1 on its gRPC port: start-up, readiness and liveness all ask it."""
    at = f"{pod.where} container {container['name']}"
    grpc_ports = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == "grpc"]
    found = [] if grpc_ports else [f"{at}: no port named grpc"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container.get(probe)
        if spec is None:
            found.append(f"{at}: no {probe}")
        elif spec.get("grpc", {}).get("port") not in grpc_ports:
            found.append(f"{at}: {probe} is not a gRPC probe on the grpc port")
    return found


def pod_violations(pod: PodSpec) -> list[str]:
    found = []
    spec = pod.spec
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        found.append(f"{pod.where}: shares the host's namespaces")
    if any("hostPath" in v for v in spec.get("volumes", [])):
        found.append(f"{pod.where}: mounts a hostPath volume")
    if spec.get("serviceAccountName") in (None, "default"):
        found.append(f"{pod.where}: runs as the default ServiceAccount (use the role's own)")
    if spec.get("automountServiceAccountToken") is not False:
        found.append(f"{pod.where}: mounts a ServiceAccount token it does not need")
    uses_gpu = any("nvidia.com/gpu" in c.get("resources", {}).get("limits", {}) for c in pod.containers())
    if uses_gpu:
        if not any(t.get("key") == "nvidia.com/gpu" for t in spec.get("tolerations", [])):
            found.append(f"{pod.where}: asks for GPUs but does not tolerate the nvidia.com/gpu taint")
        if not spec.get("nodeSelector"):
            found.append(f"{pod.where}: asks for GPUs but has no nodeSelector")
    for container in pod.containers():
        found += container_violations(pod, container)
        if pod.labels.get("app.kubernetes.io/component") == "env-server":
            found += probe_violations(pod, container)
    return found


def violations(docs: list[Doc]) -> list[str]:
    return [v for pod in pod_specs(docs) for v in pod_violations(pod)]
