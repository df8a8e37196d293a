"""Every overlay renders with `kubectl kustomize` and validates strictly offline: Kubernetes' kinds with
`kubernetes-validate --strict`, the custom resources against k8s/schemas/."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from ops import policy, validate, wiring

OVERLAYS = validate.overlays()
Doc = dict[str, Any]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    return {o.name: validate.render(o) for o in OVERLAYS}


def _one(docs: list[Doc], kind: str) -> Doc:
    return copy.deepcopy(next(d for d in docs if d["kind"] == kind))


def test_the_overlays_are_dev_gpu_job_and_rayjob() -> None:
    assert [o.name for o in OVERLAYS] == ["dev", "gpu-job", "rayjob"]


@pytest.mark.parametrize("version", validate.KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", [o.name for o in OVERLAYS])
def test_overlay_validates_strictly(rendered: dict[str, list[Doc]], overlay: str, version: str) -> None:
    assert validate.errors(rendered[overlay], version) == []


@pytest.mark.parametrize("overlay", [o.name for o in OVERLAYS])
def test_overlay_meets_the_policy_and_its_objects_find_each_other(rendered: dict[str, list[Doc]],
                                                                  overlay: str) -> None:
    assert policy.violations(rendered[overlay]) == []
    assert wiring.violations(rendered[overlay]) == []


def test_the_trainer_overlays_hold_what_they_promise(rendered: dict[str, list[Doc]]) -> None:
    kinds = {name: {d["kind"] for d in docs} for name, docs in rendered.items()}
    assert "Job" in kinds["gpu-job"] and "RayJob" not in kinds["gpu-job"]
    assert "RayJob" in kinds["rayjob"] and "Job" not in kinds["rayjob"]
    assert not {"Job", "RayJob", "ServiceMonitor"} & kinds["dev"]
    for name in ("gpu-job", "rayjob"):
        assert {"ServiceMonitor", "PodMonitor", "PrometheusRule"} <= kinds[name]
        board = next(d for d in rendered[name] if d["metadata"]["name"] == "shiftgym-grafana-dashboard")
        assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    job = _one(rendered["gpu-job"], "Job")["spec"]["template"]["spec"]["containers"][0]
    assert job["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_the_real_data_component_renders_and_validates(tmp_path: Path) -> None:
    overlay = validate.OVERLAYS / "gpu-job"
    component = validate.K8S / "components" / "real-data"
    # kustomize takes relative paths only; the overlay is the reader's own, adding the component.
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(overlay, tmp_path)}]\ncomponents: [{os.path.relpath(component, tmp_path)}]\n"
    )
    docs = validate.render(tmp_path)
    for version in validate.KUBERNETES_VERSIONS:
        assert validate.errors(docs, version) == []
    assert policy.violations(docs) == [] and wiring.violations(docs) == []
    settings = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    assert settings["webshop-settings"]["SHIFTGYM_WEBSHOP_DATA"] == "/data/webshop"
    assert settings["alfworld-settings"]["SHIFTGYM_ALFWORLD_DATA"].startswith("/data/alfworld")
    assert settings["searchqa-settings"]["SHIFTGYM_SEARCHQA_CORPUS"].startswith("/data/searchqa")


# The validators are only worth their green if they say red: each breaks one thing.

def test_an_unknown_field_fails_kubernetes_validate(rendered: dict[str, list[Doc]]) -> None:
    dep = _one(rendered["dev"], "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["grpc"]["prot"] = 50051
    assert any("'prot' was unexpected" in e for e in validate.errors([dep], validate.KUBERNETES_VERSIONS[0]))


def test_a_kind_without_a_schema_fails(rendered: dict[str, list[Doc]]) -> None:
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validate.errors([doc], validate.KUBERNETES_VERSIONS[0])


def test_custom_resources_are_checked_against_their_schemas(rendered: dict[str, list[Doc]]) -> None:
    version = validate.KUBERNETES_VERSIONS[-1]
    monitor = _one(rendered["gpu-job"], "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["interval"] = "15 seconds"
    rule = _one(rendered["gpu-job"], "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["fro"] = "5m"
    ray = _one(rendered["rayjob"], "RayJob")
    worker = ray["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    worker["containers"][0]["imagePullPolice"] = "Always"
    pod_monitor = _one(rendered["gpu-job"], "PodMonitor")
    del pod_monitor["spec"]["selector"]
    broken = ((monitor, "does not match"), (rule, "'fro' was unexpected"), (ray, "'imagePullPolice' was unexpected"),
              (pod_monitor, "'selector' is a required property"))
    for doc, fragment in broken:
        found = validate.errors([doc], version)
        assert any(fragment in e for e in found), found


def test_the_policy_flags_a_container_without_limits_or_hardening(rendered: dict[str, list[Doc]]) -> None:
    dep = _one(rendered["dev"], "Deployment")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    del container["resources"]["limits"]
    del container["readinessProbe"]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    container["securityContext"]["readOnlyRootFilesystem"] = False
    del dep["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]
    del container["securityContext"]["seccompProfile"]
    found = "\n".join(policy.violations([dep]))
    for fragment in ("no limits", "no readinessProbe", "allowPrivilegeEscalation", "readOnlyRootFilesystem",
                     "seccompProfile"):
        assert fragment in found


def test_the_policy_flags_a_root_container_in_a_ray_pod(rendered: dict[str, list[Doc]]) -> None:
    ray = _one(rendered["rayjob"], "RayJob")
    head = ray["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    head["securityContext"]["runAsUser"] = 0
    head["containers"][0]["securityContext"].pop("runAsUser")
    assert any("head container ray-head: no non-zero runAsUser" in v for v in policy.violations([ray]))


def test_the_wiring_flags_a_missing_endpoint_and_a_short_grace_period(rendered: dict[str, list[Doc]]) -> None:
    docs = copy.deepcopy(rendered["gpu-job"])
    job = next(d for d in docs if d["kind"] == "Job")
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [e for e in env if e["name"] != "SHIFTGYM_ENDPOINTS_WEBSHOP"]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 10
    dep["spec"]["template"]["spec"]["containers"][0]["args"].append("--no-such-flag")
    found = "\n".join(wiring.violations(docs))
    assert "SHIFTGYM_ENDPOINTS_WEBSHOP" in found
    assert "`serve` rejects its args" in found


def test_the_grid_runner_role_grants_only_what_the_runner_uses_in_its_namespace(rendered: dict[str, list[Doc]]) -> None:
    for overlay in ("gpu-job", "rayjob"):
        docs = rendered[overlay]
        by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
        assert not any(d["kind"] in ("ClusterRole", "ClusterRoleBinding") for d in docs)
        role = by_kind[("Role", "shiftgym-grid-runner")]
        granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
                   for resource in rule["resources"] for verb in rule["verbs"]}
        watch_read = {"get", "list", "watch"}
        expected = ({("batch", "jobs", v) for v in watch_read | {"create", "delete"}}
                    | {("ray.io", "rayjobs", v) for v in watch_read | {"create", "delete"}}
                    | {("", "configmaps", v) for v in ("get", "list", "create", "delete")}
                    | {("", "pods", v) for v in watch_read} | {("", "pods/log", "get")}
                    | {("discovery.k8s.io", "endpointslices", v) for v in watch_read})
        assert granted == expected
        binding = by_kind[("RoleBinding", "shiftgym-grid-runner")]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": "shiftgym-grid-runner"}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "shiftgym-grid-runner",
                                        "namespace": "shiftgym"}]
        assert ("ServiceAccount", "shiftgym-grid-runner") in by_kind
