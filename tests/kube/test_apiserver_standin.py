"""The stand-in API server (tests/kube_apiserver.py) against the official `kubernetes` client: what the grid backend
and the endpoint watcher rely on behaves as the real server's protocol says."""

from __future__ import annotations

import json
import threading

import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, watch  # noqa: E402

from tests.kube_apiserver import StandinApiServer, running_apiserver  # noqa: E402

NS = "grid"


@pytest.fixture
def api():
    with running_apiserver() as server:
        yield server


def _job(name: str, labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "main", "image": "trainer"}]}}},
            "status": {"succeeded": 5}}


def _status(err: client.ApiException) -> dict:
    return json.loads(err.body)


def test_create_get_and_the_errors_carry_status_bodies(api: StandinApiServer) -> None:
    batch = client.BatchV1Api(api.api_client())
    created = batch.create_namespaced_job(NS, _job("stage-1"))
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    assert created.metadata.generation == 1 and int(created.metadata.resource_version) > 0
    assert created.status is None or created.status.succeeded is None  # status is the controller's, not the client's
    assert created.spec.template.metadata.labels["batch.kubernetes.io/job-name"] == "stage-1"
    assert batch.read_namespaced_job("stage-1", NS).metadata.uid == created.metadata.uid

    with pytest.raises(client.ApiException) as exists:
        batch.create_namespaced_job(NS, _job("stage-1"))
    assert exists.value.status == 409
    assert _status(exists.value)["reason"] == "AlreadyExists"

    with pytest.raises(client.ApiException) as missing:
        batch.read_namespaced_job("nope", NS)
    body = _status(missing.value)
    assert (missing.value.status, body["kind"], body["reason"], body["code"]) == (404, "Status", "NotFound", 404)
    assert body["message"] == 'jobs.batch "nope" not found'


def test_a_client_without_the_token_is_unauthorized(api: StandinApiServer) -> None:
    anonymous = client.ApiClient(client.Configuration(host=api.url))
    with pytest.raises(client.ApiException) as err:
        client.CoreV1Api(anonymous).list_namespaced_pod(NS)
    assert err.value.status == 401


def test_label_selectors_equality_set_and_exists(api: StandinApiServer) -> None:
    core = client.CoreV1Api(api.api_client())
    for name, labels in (("a", {"run": "r1", "cell": "x"}), ("b", {"run": "r2", "cell": "y"}), ("c", {"run": "r3"})):
        core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": labels}})

    def names(selector: str) -> list[str]:
        return [cm.metadata.name for cm in core.list_namespaced_config_map(NS, label_selector=selector).items]

    assert names("run=r1") == ["a"]
    assert names("run==r2") == ["b"]
    assert names("run!=r1") == ["b", "c"]
    assert names("run in (r1, r3)") == ["a", "c"]
    assert names("run notin (r1,r3)") == ["b"]
    assert names("cell") == ["a", "b"]
    assert names("!cell") == ["c"]
    assert names("run in (r1,r2),cell=y") == ["b"]
    listed = core.list_namespaced_config_map(NS)
    assert int(listed.metadata.resource_version) >= 3
    with pytest.raises(client.ApiException) as bad:
        core.list_namespaced_config_map(NS, label_selector="run in r1")
    assert bad.value.status == 400


def test_watch_streams_changes_from_a_resource_version(api: StandinApiServer) -> None:
    batch = client.BatchV1Api(api.api_client())
    batch.create_namespaced_job(NS, _job("before"))
    listed = batch.list_namespaced_job(NS)

    def cluster() -> None:
        batch.create_namespaced_job(NS, _job("stage-1"))
        api.set_job_status(NS, "stage-1", active=1)
        api.fail_job(NS, "stage-1", reason="BackoffLimitExceeded", message="too many failures")
        batch.delete_namespaced_job("stage-1", NS, propagation_policy="Background")

    worker = threading.Thread(target=cluster)
    events = []
    stream = watch.Watch().stream(batch.list_namespaced_job, NS, resource_version=listed.metadata.resource_version,
                                  timeout_seconds=30)
    worker.start()
    for event in stream:
        events.append((event["type"], event["object"].metadata.name))
        if event["type"] == "MODIFIED" and event["object"].status.failed:
            failed = event["object"]
        if event["type"] == "DELETED":
            break
    worker.join()
    # "before" existed at the listed version, so it is not replayed.
    assert events == [("ADDED", "stage-1"), ("MODIFIED", "stage-1"), ("MODIFIED", "stage-1"), ("DELETED", "stage-1")]
    condition = [c for c in failed.status.conditions if c.type == "Failed"][0]
    assert (condition.status, condition.reason, condition.message) == ("True", "BackoffLimitExceeded",
                                                                      "too many failures")
    assert [r.verb for r in api.requests if r.resource == "jobs"].count("watch") == 1


def test_watch_without_version_replays_current_objects_and_ends_at_its_timeout(api: StandinApiServer) -> None:
    batch = client.BatchV1Api(api.api_client())
    batch.create_namespaced_job(NS, _job("one"))
    batch.create_namespaced_job("elsewhere", _job("two"))
    events = [(e["type"], e["object"].metadata.name)
              for e in watch.Watch().stream(batch.list_namespaced_job, NS, timeout_seconds=1)]
    assert events == [("ADDED", "one")]


def test_watch_with_a_selector_sees_objects_leave_and_enter_it(api: StandinApiServer) -> None:
    core = client.CoreV1Api(api.api_client())
    core.create_namespaced_config_map(NS, {"metadata": {"name": "cm", "labels": {"run": "r1"}}})
    version = core.list_namespaced_config_map(NS).metadata.resource_version
    core.patch_namespaced_config_map("cm", NS, {"metadata": {"labels": {"run": "r2"}}})
    core.patch_namespaced_config_map("cm", NS, {"metadata": {"labels": {"run": "r1"}}})
    events = [e["type"] for e in watch.Watch().stream(core.list_namespaced_config_map, NS, label_selector="run=r1",
                                                       resource_version=version, timeout_seconds=1)]
    assert events == ["DELETED", "ADDED"]


def test_a_compacted_resource_version_gets_410_gone(api: StandinApiServer) -> None:
    core = client.CoreV1Api(api.api_client())
    core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}})
    version = core.list_namespaced_config_map(NS).metadata.resource_version
    api.compact()
    with pytest.raises(client.ApiException) as gone:
        list(watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=version, timeout_seconds=5))
    assert gone.value.status == 410


def test_a_broken_watch_connection_is_an_error_for_the_client(api: StandinApiServer) -> None:
    core = client.CoreV1Api(api.api_client())
    core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}})
    stream = watch.Watch().stream(core.list_namespaced_config_map, NS, timeout_seconds=30)
    assert next(stream)["type"] == "ADDED"
    api.break_watches()
    with pytest.raises(Exception) as err:
        next(stream)
    assert "Protocol" in type(err.value).__name__ or "Connection" in type(err.value).__name__


def test_patch_kinds_generation_and_conflicts(api: StandinApiServer) -> None:
    api_client = api.api_client()
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}, "data": {"a": "1", "b": "2"}})
    merged = core.patch_namespaced_config_map("cm", NS, {"data": {"a": None, "c": "3"}})
    assert merged.data == {"b": "2", "c": "3"} and merged.metadata.generation == 2
    patched = core.patch_namespaced_config_map("cm", NS, [{"op": "replace", "path": "/data/b", "value": "9"}])
    assert patched.data == {"b": "9", "c": "3"}
    relabelled = core.patch_namespaced_config_map("cm", NS, {"metadata": {"labels": {"x": "y"}}})
    assert relabelled.metadata.generation == 3 and relabelled.metadata.labels == {"x": "y"}

    stale = core.read_namespaced_config_map("cm", NS)
    core.patch_namespaced_config_map("cm", NS, {"data": {"d": "4"}})
    with pytest.raises(client.ApiException) as conflict:
        core.replace_namespaced_config_map("cm", NS, stale)
    assert conflict.value.status == 409 and _status(conflict.value)["reason"] == "Conflict"

    rayjob = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "rl"}, "spec": {"entrypoint": "a"}}
    custom.create_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", rayjob)
    after = custom.patch_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", "rl", {"spec": {"entrypoint": "b"}})
    assert after["spec"] == {"entrypoint": "b"} and after["metadata"]["generation"] == 2
    with pytest.raises(client.ApiException) as unsupported:
        custom.patch_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", "rl", {"spec": {"entrypoint": "c"}},
                                              _content_type="application/strategic-merge-patch+json")
    assert unsupported.value.status == 415


def test_status_is_the_clusters_and_moves_without_generation(api: StandinApiServer) -> None:
    custom = client.CustomObjectsApi(api.api_client())
    custom.create_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", {
        "apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "rl"}, "spec": {},
        "status": {"jobStatus": "SUCCEEDED"}})
    assert "status" not in api.get("rayjobs", NS, "rl")
    api.set_rayjob_status(NS, "rl", job_status="RUNNING", job_deployment_status="Running")
    stored = custom.get_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", "rl")
    assert stored["status"] == {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"}
    assert stored["metadata"]["generation"] == 1
    # A client's write to the main resource cannot change the status.
    custom.patch_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", "rl", {"status": {"jobStatus": "FAILED"}})
    assert api.get("rayjobs", NS, "rl")["status"]["jobStatus"] == "RUNNING"


def test_deleting_a_job_cascades_to_its_pods_only_when_asked(api: StandinApiServer) -> None:
    batch, core = client.BatchV1Api(api.api_client()), client.CoreV1Api(api.api_client())
    for name in ("cascade", "orphan"):
        batch.create_namespaced_job(NS, _job(name))
        api.add_pod_for_job(NS, name)
    batch.delete_namespaced_job("cascade", NS, propagation_policy="Background")
    batch.delete_namespaced_job("orphan", NS)  # batch/v1's default policy orphans
    pods = core.list_namespaced_pod(NS).items
    assert [p.metadata.labels["job-name"] for p in pods] == ["orphan"]
    assert not pods[0].metadata.owner_references


def test_deletecollection_by_label(api: StandinApiServer) -> None:
    core = client.CoreV1Api(api.api_client())
    for name, run in (("a", "r1"), ("b", "r1"), ("c", "r2")):
        core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": {"grid-run": run}}})
    core.delete_collection_namespaced_config_map(NS, label_selector="grid-run=r1")
    assert [cm["metadata"]["name"] for cm in api.objects("configmaps", NS)] == ["c"]


def test_pod_logs_plain_tail_and_follow(api: StandinApiServer) -> None:
    core = client.CoreV1Api(api.api_client())
    api.add_pod(NS, "worker", log="line 1\nline 2\n")
    assert core.read_namespaced_pod_log("worker", NS) == "line 1\nline 2\n"
    assert core.read_namespaced_pod_log("worker", NS, tail_lines=1) == "line 2\n"

    def finish() -> None:
        api.append_pod_log(NS, "worker", "line 3\n")
        api.set_pod_phase(NS, "worker", "Succeeded")

    stream = watch.Watch().stream(core.read_namespaced_pod_log, "worker", NS, follow=True)
    lines = [next(stream), next(stream)]
    threading.Thread(target=finish).start()
    lines += list(stream)
    assert lines == ["line 1", "line 2", "line 3"]
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_pod_log("nobody", NS)
    assert missing.value.status == 404


def test_endpoint_slices_list_by_service(api: StandinApiServer) -> None:
    discovery = client.DiscoveryV1Api(api.api_client())
    api.put_endpoint_slice(NS, "env-a", "babyai", {"grpc": 50051}, [("10.0.0.1", True), ("10.0.0.2", None)])
    api.put_endpoint_slice(NS, "other", "textcraft", {"grpc": 50051}, [("10.0.0.3", True)])
    slices = discovery.list_namespaced_endpoint_slice(NS, label_selector="kubernetes.io/service-name=babyai").items
    assert [s.metadata.name for s in slices] == ["env-a"]
    assert [(e.addresses, e.conditions.ready) for e in slices[0].endpoints] == [(["10.0.0.1"], True),
                                                                                 (["10.0.0.2"], None)]
    assert slices[0].ports[0].name == "grpc" and slices[0].ports[0].port == 50051


def test_kubeconfig_context_and_injected_failures(api: StandinApiServer) -> None:
    from kubernetes import config

    config_client = config.new_client_from_config(config_file=str(api.kubeconfig_path), context="standin")
    core = client.CoreV1Api(config_client)
    api.inject_failure(503, verb="list", resource="pods")
    with pytest.raises(client.ApiException) as failed:
        core.list_namespaced_pod(NS)
    assert failed.value.status == 503
    assert core.list_namespaced_pod(NS).items == []
    assert [(r.method, r.verb, r.resource, r.namespace) for r in api.requests] == [
        ("GET", "list", "pods", NS), ("GET", "list", "pods", NS)]
