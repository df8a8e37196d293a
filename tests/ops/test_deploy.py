"""`make deploy` / `make undeploy` fail with one clear line, and build nothing, when no cluster is reachable.

The kubeconfig points at 127.0.0.1:1 (loopback, nothing listens there); nothing leaves the machine.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from ops import policy, validate, wiring
from trainer.local_servers import REPO

UNREACHABLE = """\
apiVersion: v1
kind: Config
clusters:
  - name: nowhere
    cluster: {server: "https://127.0.0.1:1"}
contexts:
  - name: unreachable
    context: {cluster: nowhere, user: nobody}
users:
  - name: nobody
    user: {token: not-a-token}
current-context: unreachable
"""


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(UNREACHABLE)
    return path


def _env(kubeconfig: Path, **settings: str) -> dict[str, str]:
    # No proxy settings either: kubectl would hand even a loopback address to a proxy.
    env = {k: v for k, v in os.environ.items()
           if k not in {"REGISTRY", "TAG", "OVERLAY", "NAMESPACE", "KUBECONTEXT", "SKIP_BUILD"}
           and not k.lower().endswith("_proxy")}
    env["KUBECONFIG"] = str(kubeconfig)
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **settings}


def _script(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "scripts/deploy.sh", action], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("action", ["deploy", "undeploy"])
def test_an_unreachable_cluster_is_one_line_and_a_failure(kubeconfig: Path, action: str) -> None:
    done = _script(action, _env(kubeconfig, REGISTRY="registry.invalid/shiftgym", OVERLAY="gpu-job"))
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{action}: no Kubernetes cluster reachable with context 'unreachable' (https://127.0.0.1:1): "
        "set KUBECONTEXT or configure kubectl"
    ]


def test_make_deploy_stops_at_the_cluster_check_before_building(kubeconfig: Path) -> None:
    # -o: take the installed venv as current, so the test never reinstalls packages.
    done = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "deploy", "REGISTRY=registry.invalid/shiftgym",
         "KUBECONTEXT=unreachable", "OVERLAY=dev", "TAG=test"],
        cwd=REPO, env=_env(kubeconfig), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "docker" not in done.stdout + done.stderr
    # make's own "*** ... Error 1" line reads "make[1]: ***" when the tests themselves run under make.
    ours = [line for line in done.stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]
    assert ours == ["deploy: no Kubernetes cluster reachable with context 'unreachable' (https://127.0.0.1:1): "
                    "set KUBECONTEXT or configure kubectl"]


def test_an_unknown_context_names_the_kubeconfig(kubeconfig: Path) -> None:
    done = _script("deploy", _env(kubeconfig, REGISTRY="registry.invalid/shiftgym", KUBECONTEXT="prod"))
    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        f"deploy: no context 'prod' in your kubeconfig ({kubeconfig}): set KUBECONTEXT to one of "
        "`kubectl config get-contexts -o name`"
    ]


def test_deploy_without_a_registry_says_what_to_set(kubeconfig: Path) -> None:
    done = _script("deploy", _env(kubeconfig))
    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        "deploy: set REGISTRY to the registry to push images to (e.g. REGISTRY=ghcr.io/acme/shiftgym), or SKIP_BUILD=1"
    ]


def test_an_unknown_overlay_lists_the_known_ones(kubeconfig: Path) -> None:
    done = _script("deploy", _env(kubeconfig, OVERLAY="prod", REGISTRY="registry.invalid/shiftgym"))
    assert done.returncode != 0
    assert done.stderr.splitlines() == ["deploy: no overlay 'prod' (known: dev gpu-job rayjob): set OVERLAY"]


def test_render_shows_what_deploy_applies_in_the_chosen_namespace_with_the_pushed_images(kubeconfig: Path) -> None:
    done = _script("render", _env(kubeconfig, OVERLAY="rayjob", NAMESPACE="exp1", REGISTRY="registry.invalid/sg",
                                  TAG="t1"))
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"exp1"}
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"] == ["exp1"]
    images = {c["image"] for pod in policy.pod_specs(docs) for c in pod.spec["containers"]}
    assert images == {"registry.invalid/sg/shiftgym-env-server:t1", "registry.invalid/sg/shiftgym-trainer:t1"}
    assert validate.errors(docs, validate.KUBERNETES_VERSIONS[-1]) == []
    assert policy.violations(docs) == [] and wiring.violations(docs) == []
