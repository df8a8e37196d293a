"""Cross-object checks over a rendered overlay: the objects that must find each other do (Services, HPAs,
budgets and monitors select the right pods; the trainer reaches every env Service and is let in by the
NetworkPolicy; env server arguments are ones `serve` accepts; the kubelet waits out the drain)."""

from __future__ import annotations

import re
from typing import Any

import click

from env_server.__main__ import serve
from ops.policy import PodSpec, pod_specs

Doc = dict[str, Any]
ENV_COMPONENT = "env-server"
TRAINER_COMPONENT = "trainer"


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) against a label set."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def _kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def _serve_options(args: list[str]) -> dict[str, Any]:
    """The options env_server's own `serve` command parses from a container's args (raises on a bad one)."""
    if args[:1] != ["serve"]:
        raise click.UsageError(f"args {args} do not start with the serve command")
    return serve.make_context("serve", list(args[1:])).params


def env_server_violations(docs: list[Doc]) -> list[str]:
    found = []
    services = _kind(docs, "Service")
    for dep in _kind(docs, "Deployment"):
        name, template = dep["metadata"]["name"], dep["spec"]["template"]
        labels = template["metadata"]["labels"]
        if labels.get("app.kubernetes.io/component") != ENV_COMPONENT:
            continue
        pod, container = template["spec"], template["spec"]["containers"][0]
        try:
            options = _serve_options(container.get("args", []))
        except click.ClickException as err:
            found.append(f"Deployment/{name}: `serve` rejects its args: {err.format_message()}")
            continue
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        if options["env_name"] != name:
            found.append(f"Deployment/{name}: serves --env {options['env_name']}")
        if (options["port"], options["metrics_port"]) != (ports.get("grpc"), ports.get("metrics")):
            found.append(f"Deployment/{name}: --port/--metrics-port do not match the grpc/metrics container ports")
        if pod.get("terminationGracePeriodSeconds", 30) <= options["drain_grace_s"] + 1:
            found.append(f"Deployment/{name}: terminationGracePeriodSeconds does not cover --drain-grace-s")
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
            if not any(_targets(d, dep) for d in _kind(docs, kind)):
                found.append(f"Deployment/{name}: no {kind}")
        if "replicas" in dep["spec"]:
            found.append(f"Deployment/{name}: sets replicas, which every apply would reset under its HPA")
        service = next((s for s in services if s["metadata"]["name"] == name), None)
        if service is None:
            found.append(f"Deployment/{name}: no Service of the same name")
        elif not _matches({"matchLabels": service["spec"]["selector"]}, labels):
            found.append(f"Service/{name}: does not select its Deployment's pods")
        elif service["spec"].get("clusterIP") != "None":
            found.append(f"Service/{name}: not headless (the trainer resolves one address per pod)")
    return found


def _targets(doc: Doc, dep: Doc) -> bool:
    if doc["kind"] == "HorizontalPodAutoscaler":
        ref = doc["spec"]["scaleTargetRef"]
        return (ref["kind"], ref["name"]) == ("Deployment", dep["metadata"]["name"])
    return _matches(doc["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"])


def _trainer_pods(docs: list[Doc]) -> list[PodSpec]:
    return [p for p in pod_specs(docs) if p.labels.get("app.kubernetes.io/component") == TRAINER_COMPONENT]


def trainer_violations(docs: list[Doc]) -> list[str]:
    """Every trainer container knows every env Service's address; the NetworkPolicy lets the trainer in."""
    found = []
    env_services = [s for s in _kind(docs, "Service")
                    if s["metadata"].get("labels", {}).get("app.kubernetes.io/component") == ENV_COMPONENT]
    policies = _kind(docs, "NetworkPolicy")
    for pod in _trainer_pods(docs):
        for container in pod.spec["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            order = list(env)
            for service in env_services:
                svc = service["metadata"]["name"]
                port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
                var = f"SHIFTGYM_ENDPOINTS_{svc.upper()}"
                want = f"dns:///{svc}.$(POD_NAMESPACE).svc.cluster.local:{port}"
                if env.get(var, {}).get("value") != want:
                    found.append(f"{pod.where} container {container['name']}: {var} is not {want}")
                elif "POD_NAMESPACE" not in order or order.index("POD_NAMESPACE") > order.index(var):
                    found.append(f"{pod.where} container {container['name']}: POD_NAMESPACE is not set before {var}")
        admitted = [rule for policy in policies for rule in policy["spec"].get("ingress", [])
                    if any(_matches(src.get("podSelector", {}), pod.labels) and "namespaceSelector" not in src
                           for src in rule.get("from", []))
                    and any(p.get("port") == "grpc" for p in rule.get("ports", []))]
        if policies and not admitted:
            found.append(f"{pod.where}: no NetworkPolicy rule admits it to the env servers' grpc port")
    return found


def monitoring_violations(docs: list[Doc]) -> list[str]:
    found = []
    for monitor in _kind(docs, "ServiceMonitor"):
        selected = [s for s in _kind(docs, "Service") if _matches(monitor["spec"]["selector"],
                                                                  s["metadata"].get("labels", {}))]
        if not selected:
            found.append(f"ServiceMonitor/{monitor['metadata']['name']}: selects no Service")
        for service in selected:
            ports = {p["name"] for p in service["spec"]["ports"]}
            for endpoint in monitor["spec"]["endpoints"]:
                if endpoint["port"] not in ports:
                    found.append(f"ServiceMonitor/{monitor['metadata']['name']}: Service/"
                                 f"{service['metadata']['name']} has no port {endpoint['port']}")
    trainer_pods = _trainer_pods(docs)
    for monitor in _kind(docs, "PodMonitor"):
        for pod in [p for p in trainer_pods if _matches(monitor["spec"]["selector"], p.labels)]:
            ports = {p.get("name") for c in pod.spec["containers"] for p in c.get("ports", [])}
            for endpoint in monitor["spec"]["podMetricsEndpoints"]:
                if endpoint["port"] not in ports:
                    found.append(f"PodMonitor/{monitor['metadata']['name']}: {pod.where} has no port "
                                 f"{endpoint['port']}")
    return found


def reference_violations(docs: list[Doc]) -> list[str]:
    """ConfigMaps, PVCs and ServiceAccounts that pods name exist in the overlay."""
    found = []
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for pod in pod_specs(docs):
        wanted = [("ServiceAccount", pod.spec.get("serviceAccountName", "default"))]
        for volume in pod.spec.get("volumes", []):
            if "configMap" in volume:
                wanted.append(("ConfigMap", volume["configMap"]["name"]))
            wanted += [("ConfigMap", source["configMap"]["name"])
                       for source in volume.get("projected", {}).get("sources", []) if "configMap" in source]
            if "persistentVolumeClaim" in volume:
                wanted.append(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        for container in pod.spec["containers"]:
            wanted += [("ConfigMap", src["configMapRef"]["name"]) for src in container.get("envFrom", [])
                       if "configMapRef" in src]
        found += [f"{pod.where}: {kind}/{ref} is not in the overlay"
                  for kind, ref in wanted if (kind, ref) not in names]
    return found


def image_violations(docs: list[Doc]) -> list[str]:
    """Images are the two names `make deploy` rewrites (kustomize `images`), optionally with a registry and tag."""
    pattern = re.compile(r"^([^/]+/)*shiftgym-(env-server|trainer)(:[\w.-]+)?$")
    return [f"{pod.where} container {c['name']}: image {c['image']} is not shiftgym-env-server or shiftgym-trainer"
            for pod in pod_specs(docs) for c in pod.spec["containers"] if not pattern.match(c["image"])]


def violations(docs: list[Doc]) -> list[str]:
    return (env_server_violations(docs) + trainer_violations(docs) + monitoring_violations(docs)
            + reference_violations(docs) + image_violations(docs))
