"""A workload's manifests: its ConfigMap, and the rendered Job or RayJob template filled with its name, labels,
image, files, environment, command, GPUs and checkpoints claim. Nothing about pods is written here that the
k8s/ overlays do not already say; this module only fills in what differs per stage or cell."""

from __future__ import annotations

import shlex
from typing import Any, Iterator

from trainer.grid.kube.naming import Workload
from trainer.grid.kube.plan import Checkpoints, WorkloadSpec
from trainer.grid.kube.templates import Templates

GPU = "nvidia.com/gpu"
FILES_VOLUME = "train"  # the templates' volume mounted at /etc/shiftgym/train
CHECKPOINTS_VOLUME = "checkpoints"
CPU_RESOURCES = {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}
Doc = dict[str, Any]


def configmap(work: Workload, namespace: str, spec: WorkloadSpec) -> Doc:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": work.config_name, "namespace": namespace, "labels": work.labels()},
            "data": dict(spec.files), **({"binaryData": dict(spec.binary)} if spec.binary else {})}


def _metadata(doc: Doc, work: Workload, namespace: str) -> None:
    meta = doc["metadata"]
    meta["name"], meta["namespace"] = work.name, namespace
    meta["labels"] = {**meta.get("labels", {}), **work.labels()}
    for key in ("resourceVersion", "uid", "creationTimestamp"):
        meta.pop(key, None)


def _pod(template: Doc, work: Workload) -> Doc:
    """Label a pod template with the workload (so its pods are watched, found and deleted by run) and return its
    spec."""
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**meta.get("labels", {}), **work.labels()}
    return template["spec"]


def _fill_pod(pod: Doc, work: Workload, image: str, spec: WorkloadSpec, checkpoints: Checkpoints,
              command: bool) -> None:
    for volume in pod.get("volumes", []):
        if volume["name"] == FILES_VOLUME:  # the overlay's launch.sh + train-args ConfigMaps -> this workload's
            volume.clear()
            volume.update({"name": FILES_VOLUME, "configMap": {"name": work.config_name}})
        elif volume["name"] == CHECKPOINTS_VOLUME:
            volume["persistentVolumeClaim"]["claimName"] = checkpoints.claim
    for container in pod["containers"]:
        container["image"] = image
        names = set(spec.env)
        container["env"] = [e for e in container.get("env", []) if e["name"] not in names]
        container["env"] += [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
        for mount in container.get("volumeMounts", []):
            if mount["name"] == CHECKPOINTS_VOLUME:
                mount["mountPath"] = checkpoints.mount
        if command and spec.command is not None:
            container["command"] = list(spec.command)
            container.pop("args", None)
        _gpus(pod, container, spec.gpus_per_node if spec.gpu else 0)
        for amounts in container.get("resources", {}).values():  # quantities are strings in the API's types
            amounts.update({k: str(v) for k, v in amounts.items()})


def _gpus(pod: Doc, container: Doc, gpus: int) -> None:
    resources = container.setdefault("resources", {})
    if GPU not in resources.get("limits", {}):
        return  # a CPU container of the template (the Ray head)
    if gpus:
        resources["requests"][GPU] = resources["limits"][GPU] = gpus
        return
    container["resources"] = {k: dict(v) for k, v in CPU_RESOURCES.items()}
    pod.pop("nodeSelector", None)
    pod.pop("tolerations", None)


def job(templates: Templates, work: Workload, namespace: str, image: str, spec: WorkloadSpec,
        checkpoints: Checkpoints) -> Doc:
    doc = templates.job()
    _metadata(doc, work, namespace)
    # One pod per attempt: the runner retries with a new Job and records why each attempt failed.
    doc["spec"]["backoffLimit"] = 0
    _fill_pod(_pod(doc["spec"]["template"], work), work, image, spec, checkpoints, command=True)
    return doc


def _ray_pods(doc: Doc) -> Iterator[Doc]:
    cluster = doc["spec"]["rayClusterSpec"]
    yield cluster["headGroupSpec"]["template"]
    for group in cluster["workerGroupSpecs"]:
        yield group["template"]


def rayjob(templates: Templates, work: Workload, namespace: str, image: str, spec: WorkloadSpec,
           checkpoints: Checkpoints) -> Doc:
    """A RayJob over `spec.num_nodes` GPU workers, its entrypoint run on the head."""
    doc = templates.rayjob()
    _metadata(doc, work, namespace)
    doc["spec"]["backoffLimit"] = 0
    if spec.command is not None:
        doc["spec"]["entrypoint"] = shlex.join(spec.command)
    for template in _ray_pods(doc):
        _fill_pod(_pod(template, work), work, image, spec, checkpoints, command=False)
    submitter = doc["spec"].get("submitterPodTemplate")
    if submitter:
        _pod(submitter, work)
        for container in submitter["spec"]["containers"]:
            container["image"] = image
    for group in doc["spec"]["rayClusterSpec"]["workerGroupSpecs"]:
        group["replicas"] = group["minReplicas"] = group["maxReplicas"] = spec.num_nodes
    return doc
