"""Every manifest is checked before it is sent: Kubernetes' own kinds with kubernetes-validate in strict mode (an
unknown or misspelt field fails), the RayJob against k8s/schemas/rayjob.json (which refers to Kubernetes' strict
definitions for its pod templates), for the oldest and the newest Kubernetes the manifests support."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from trainer.grid.kube.templates import K8S_DIR

# The oldest Kubernetes the manifests support (gRPC probes are GA from 1.27) and the newest the validator knows;
# ops/validate.py checks the overlays against the same range and schemas.
KUBERNETES_VERSIONS = ("1.28.0", "1.37.0")
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
    ("ray.io/v1", "RayJob"): "rayjob.json",
}
Doc = dict[str, Any]


class InvalidManifest(ValueError):
    """A manifest the backend built fails its schema: nothing was sent."""


def _where(path: Any) -> str:
    return ".".join(map(str, path)) or "<root>"


@cache
def _crd_validator(api_version: str, kind: str, version: str, schemas: Path) -> Any:
    import jsonschema
    from referencing import Registry, Resource

    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
    definitions = Resource.from_contents(json.loads((folder / "_definitions.json").read_text()))
    registry: Registry = Registry().with_resource("https://kubernetes.io/api/_definitions.json", definitions)
    schema = json.loads((schemas / CRD_SCHEMAS[(api_version, kind)]).read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def is_custom(doc: Doc) -> bool:
    return (doc.get("apiVersion"), doc.get("kind")) in CRD_SCHEMAS


def crd_errors(doc: Doc, version: str, schemas: Path = K8S_DIR / "schemas") -> list[str]:
    """The schema errors of a custom resource (a kind in CRD_SCHEMAS) against one Kubernetes version."""
    validator = _crd_validator(doc["apiVersion"], doc["kind"], version, schemas)
    return [f"{_name(doc)}: {_where(e.absolute_path)}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def _name(doc: Doc) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def errors(doc: Doc, version: str, schemas: Path = K8S_DIR / "schemas") -> list[str]:
    """The schema errors of one manifest against one Kubernetes version ([] when it is valid)."""
    if is_custom(doc):
        return crd_errors(doc, version, schemas)
    name, key = _name(doc), (doc.get("apiVersion"), doc.get("kind"))
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        return [f"{name}: {_where(err.absolute_path)}: {err.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name}: no schema for {key[0]} {key[1]} in Kubernetes {version}"]
    return []


def check(doc: Doc, schemas: Path = K8S_DIR / "schemas") -> Doc:
    """The manifest itself when it is valid for every supported version; InvalidManifest otherwise."""
    found = [e for version in KUBERNETES_VERSIONS for e in errors(doc, version, schemas)]
    if found:
        raise InvalidManifest("manifest fails its schema, not sent: " + "; ".join(dict.fromkeys(found)))
    return doc
