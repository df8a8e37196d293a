"""The Kubernetes objects of each environment's servers (k8s/base/envs/<env>.yaml), from one table of profiles.

Per environment: a ConfigMap of data settings (read by the env as SHIFTGYM_* variables), a Deployment, a headless
Service (one DNS address per ready pod, which the trainer's pool resolves), an HPA and a PodDisruptionBudget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

GRPC_PORT = 50051
METRICS_PORT = 9100
DRAIN_GRACE_S = 30  # `serve --drain-grace-s`: running episodes get this long after SIGTERM
# The kubelet kills the container this long after SIGTERM: the drain, the server's own 1 s stop, and slack.
TERMINATION_GRACE_S = DRAIN_GRACE_S + 15
UID = 10001  # the image's user (Dockerfile: useradd --uid 10001)
IMAGE = "shiftgym-env-server"  # set to REGISTRY/shiftgym-env-server:TAG by kustomize `images` (make deploy)
CACHE_DIR = "/var/cache/shiftgym"
COMPONENT = "env-server"


@dataclass(frozen=True, slots=True)
class EnvProfile:
    name: str
    memory_request: str
    memory_limit: str
    # SHIFTGYM_* variables of the env's ConfigMap; README "Deployment" says how to point them at real data.
    settings: tuple[tuple[str, str], ...] = ()
    cpu_request: str = "1"  # environment code holds the GIL: one core per pod, scaled out by replicas
    cpu_limit: str = "2"  # headroom for the gRPC and metrics threads and bursts in the env thread pool
    cache_size: str = "1Gi"
    min_replicas: int = 2
    max_replicas: int = 16


PROFILES: tuple[EnvProfile, ...] = (
    EnvProfile("alfworld", "2Gi", "4Gi", (("SHIFTGYM_ALFWORLD_CACHE", f"{CACHE_DIR}/alfworld"),), cache_size="4Gi"),
    EnvProfile("babyai", "512Mi", "1Gi"),
    EnvProfile("searchqa", "1Gi", "2Gi", (("SHIFTGYM_SEARCHQA_TOPK", "3"),)),
    EnvProfile("textcraft", "512Mi", "1Gi"),
    EnvProfile("webshop", "1Gi", "2Gi", (("SHIFTGYM_WEBSHOP_PRODUCTS", "10000"),)),
)


def labels(env: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": env, "app.kubernetes.io/component": COMPONENT}


def _grpc_probe(period_s: int, failures: int, timeout_s: int = 2) -> dict[str, Any]:
    # grpc.health.v1 on the serving port; the server reports NOT_SERVING as soon as it starts draining.
    return {"grpc": {"port": GRPC_PORT}, "periodSeconds": period_s, "failureThreshold": failures,
            "timeoutSeconds": timeout_s}


def serve_args(env: str) -> list[str]:
    return ["serve", "--env", env, "--port", str(GRPC_PORT), "--metrics-port", str(METRICS_PORT),
            "--drain-grace-s", str(DRAIN_GRACE_S)]


def config_map(p: EnvProfile) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{p.name}-settings", "labels": labels(p.name)},
            "data": dict(p.settings)}


def deployment(p: EnvProfile) -> dict[str, Any]:
    container = {
        "name": COMPONENT,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        # The command is spelled out so the manifests do not depend on the image's ENTRYPOINT.
        "command": ["shiftgym-env"],
        "args": serve_args(p.name),
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": f"{p.name}-settings"}}],
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "XDG_CACHE_HOME", "value": CACHE_DIR}],
        "resources": {"requests": {"cpu": p.cpu_request, "memory": p.memory_request},
                      "limits": {"cpu": p.cpu_limit, "memory": p.memory_limit}},
        # Heavy assets load before the port opens: give start-up five minutes before liveness counts.
        "startupProbe": _grpc_probe(5, 60),
        "readinessProbe": _grpc_probe(5, 2),
        # Longer than the drain, so a draining pod (NOT_SERVING) is not restarted before it exits.
        "livenessProbe": _grpc_probe(10, 6, timeout_s=5),
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "cache", "mountPath": CACHE_DIR}],
    }
    pod = {
        "serviceAccountName": "shiftgym-env-server",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "cache", "emptyDir": {"sizeLimit": p.cache_size}}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": labels(p.name)}}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": p.name, "labels": labels(p.name)},
        # No `replicas`: the HPA owns the count, and a value here would reset it on every `kubectl apply`.
        "spec": {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": labels(p.name)},
            # Never below the wanted count during a rollout: pods that go drain their episodes first.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {"metadata": {"labels": labels(p.name)}, "spec": pod},
        },
    }


def service(p: EnvProfile) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": p.name, "labels": labels(p.name)},
        "spec": {
            "clusterIP": "None",  # headless: DNS answers with every ready pod; clients pin episodes to a pod
            "selector": labels(p.name),
            "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP",
                       "appProtocol": "grpc"},
                      {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }


def autoscaler(p: EnvProfile) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": p.name, "labels": labels(p.name)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": p.name},
            "minReplicas": p.min_replicas,
            "maxReplicas": p.max_replicas,
            "metrics": [{"type": "Resource",
                         "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
            # Scale down slowly: every pod removed drains its running episodes.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300,
                                       "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}},
        },
    }


def disruption_budget(p: EnvProfile) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": p.name, "labels": labels(p.name)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(p.name)}},
    }


def render(p: EnvProfile) -> str:
    header = (f"# {p.name} env servers. Generated by `python -m ops write` from ops/envs.py: edit there, or patch\n"
              "# in an overlay.\n")
    objects = (config_map(p), deployment(p), service(p), autoscaler(p), disruption_budget(p))
    return header + yaml.safe_dump_all(objects, sort_keys=False, width=120, explicit_start=True)
