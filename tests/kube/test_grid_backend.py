"""The grid on a cluster, end to end through `shiftgym grid run --backend kubernetes` against the stand-in API server
(a test double of an outside service), with tests/kube/cluster_actor.py acting as the cluster: the right workloads
appear with the right labels, checkpoints chain, failures are retried then recorded, a killed runner's successor
adopts what is running, and `grid delete` removes the run."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("kubernetes")

from click.testing import CliRunner  # noqa: E402

from tests.kube.cluster_actor import ClusterActor, wait_until  # noqa: E402
from tests.kube_apiserver import StandinApiServer, running_apiserver  # noqa: E402
from tests.servers import ServerThread, free_port  # noqa: E402
from trainer.cli import main as cli  # noqa: E402
from trainer.grid.expand import expand  # noqa: E402
from trainer.grid.kube import naming, validation  # noqa: E402
from trainer.grid.spec import load_spec  # noqa: E402
from trainer.grid.store import ResultsStore  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NS = "grid"
RUN = "r1"
MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
IMAGE = "registry.example/trainer:1"
SPEC = f"""
name: kube-small
envs: {{babyai: {{max_turns: 6}}}}
policies:
  qwen: {{kind: pretrained, model: {MODEL}}}
  oracle: {{kind: oracle}}
training: {{steps: 1, tasks_per_step: 2, group_size: 2, launch: {{gpus_per_node: 1, vllm_num_engines: 1}}}}
evaluation: {{tasks: 2, k: 2, difficulties: [easy]}}
axes:
  difficulty: {{envs: [babyai], regimes: [easy_then_hard], test: [easy]}}
"""
# Two GRPO stages (easy, then hard from easy's checkpoint) and three cells: the oracle, and qwen before and after.
STAGES, CELLS = 2, 3


@pytest.fixture
def api():
    with running_apiserver() as server:
        yield server


@pytest.fixture(scope="module")
def babyai():
    with ServerThread("babyai") as server:
        yield server


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def _args(api: StandinApiServer, spec_path: Path, out: Path, *extra: str) -> list[str]:
    return ["grid", "run", str(spec_path), "--out", str(out), "--backend", "kubernetes", "--kubeconfig",
            str(api.kubeconfig_path), "--context", "standin", "--namespace", NS, "--image", IMAGE, "--run-name", RUN,
            "--no-progress", "--no-report", *extra]


def _run(api: StandinApiServer, spec_path: Path, out: Path, *extra: str):  # noqa: ANN202 - click's Result
    return CliRunner().invoke(cli, _args(api, spec_path, out, *extra))


def _workloads(api: StandinApiServer, kind: str = "jobs") -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in api.objects(kind, NS, naming.run_selector(RUN))}


def _args_of(api: StandinApiServer, job: dict) -> list[str]:
    work = naming.Workload.from_labels(job["metadata"]["labels"])
    files = api.get("configmaps", NS, work.config_name)
    return files["data"]["train-args.txt"].split()


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_a_small_grid_runs_as_labelled_validated_workloads_with_chained_checkpoints(api, babyai, spec_path,
                                                                                      tmp_path):
    out = tmp_path / "run"
    with ClusterActor(api, NS, RUN, {"babyai": babyai.target}) as actor:
        result = _run(api, spec_path, out, "--max-parallel", "3")
    assert actor.errors == []
    assert result.exit_code == 0, result.output
    grid = expand(load_spec(spec_path))
    jobs = _workloads(api)
    works = [naming.Workload.from_labels(j["metadata"]["labels"]) for j in jobs.values()]
    # One Job per GRPO stage and per cell (the pretrained base needs none), each labelled with its run and item.
    assert sorted(w.role for w in works) == ["cell"] * CELLS + ["stage"] * STAGES
    assert {w.id for w in works if w.role == "cell"} == set(grid.cells)
    assert {w.id for w in works if w.role == "stage"} == {n.id for n in grid.training_order() if n.kind == "grpo"}
    assert all(w.attempt == 0 and w.run == RUN for w in works)
    for job in jobs.values():
        labels = job["metadata"]["labels"]
        assert labels[naming.PART_OF] == "shiftgym" and labels[naming.MANAGED_BY] == naming.MANAGER
        assert naming.RUN in job["spec"]["template"]["metadata"]["labels"]  # so its pods are the run's too
        pod = job["spec"]["template"]["spec"]
        assert {c["image"] for c in pod["containers"]} == {IMAGE}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["checkpoints"]["persistentVolumeClaim"]["claimName"] == "shiftgym-checkpoints"
        assert volumes["train"]["configMap"]["name"].endswith("-files")
    # Everything the backend sent passes the same strict schemas the overlays do.
    for doc in [*jobs.values(), *_workloads(api, "configmaps").values()]:
        stored = {k: v for k, v in doc.items() if k != "status"}
        stored.setdefault("apiVersion", "batch/v1" if "spec" in doc else "v1")
        stored.setdefault("kind", "Job" if "spec" in doc else "ConfigMap")
        assert validation.errors(stored, validation.KUBERNETES_VERSIONS[-1]) == []
    # Checkpoints chain: the hard stage starts from the easy stage's output on the claim.
    easy, hard = sorted((n for n in grid.training_order() if n.kind == "grpo"), key=lambda n: n.depth)
    by_stage = {w.id: j for w, j in zip(works, jobs.values())}
    easy_args, hard_args = _args_of(api, by_stage[easy.id]), _args_of(api, by_stage[hard.id])
    assert _flag(easy_args, "--actor.model_name_or_path") == MODEL
    assert _flag(easy_args, "--ckpt.output_dir") == f"/checkpoints/shiftgym/{RUN}/{easy.id}"
    assert _flag(hard_args, "--actor.model_name_or_path") == _flag(easy_args, "--ckpt.output_dir")
    # Its dataset travels gzip-compressed in its ConfigMap; run.sh unpacks it where the launch reads it.
    prompts = _flag(hard_args, "--data.prompt_dataset")
    assert prompts == f"/checkpoints/shiftgym/{RUN}/{hard.id}-data/prompts.jsonl"
    files = api.get("configmaps", NS, naming.Workload(RUN, "stage", hard.id, 0).config_name)
    lines = gzip.decompress(base64.b64decode(files["binaryData"]["prompts.jsonl.gz"])).decode().splitlines()
    assert len(lines) == hard.steps * 2 and all(json.loads(line)["prompt"] for line in lines)
    assert f"> {prompts}" in files["data"]["run.sh"]
    assert by_stage[hard.id]["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "/bin/sh", "/etc/shiftgym/train/run.sh"]
    # The store holds every cell whole; the oracle's records come from a real evaluation through the env server.
    with ResultsStore.open_existing(out) as store:
        assert set(store.done()) == set(grid.cells)
        for key, cell in grid.cells.items():
            assert len(store.trajectories(key)) == cell.tasks * cell.k
        oracle = next(k for k, c in grid.cells.items() if c.policy == "oracle")
        assert all(t["success"] and t["task_id"].startswith("babyai/") for t in store.trajectories(oracle))
        assert store.node(hard.id)["checkpoint"] == f"/checkpoints/shiftgym/{RUN}/{hard.id}"
    # Watched, not polled: one list of each kind to start from, then watch streams.
    verbs = [(r.verb, r.resource) for r in api.requests]
    assert ("watch", "jobs") in verbs and ("watch", "pods") in verbs
    assert verbs.count(("list", "jobs")) <= 2


def test_a_failed_stage_is_retried_then_recorded_as_failed_with_its_reason(api, babyai, spec_path, tmp_path):
    out = tmp_path / "run"
    grid = expand(load_spec(spec_path))
    easy = min((n for n in grid.training_order() if n.kind == "grpo"), key=lambda n: n.depth)

    def decide(work, obj):  # noqa: ANN001, ANN202
        return "fail" if work.id == easy.id else "succeed"

    with ClusterActor(api, NS, RUN, {"babyai": babyai.target}, decide) as actor:
        result = _run(api, spec_path, out, "--retries", "1")
    assert actor.errors == []
    assert result.exit_code == 1 and "1 failed" in result.output and "Traceback" not in result.output
    stage_jobs = [naming.Workload.from_labels(j["metadata"]["labels"]) for j in _workloads(api).values()]
    easy_attempts = sorted(w.attempt for w in stage_jobs if w.id == easy.id)
    assert easy_attempts == [0, 1]  # the first try and one retry, each its own Job
    assert not any(w.role == "stage" and w.id != easy.id for w in stage_jobs)  # its child never started
    with ResultsStore.open_existing(out) as store:
        failure = store.meta("failures")[easy.id]
        assert easy.id not in store.nodes()
        assert len(store.done()) == 2  # the oracle and the untrained qwen cells still ran
    assert failure["label"] == easy.label and len(failure["reasons"]) == 2
    for reason in failure["reasons"]:
        assert "BackoffLimitExceeded" in reason and "OOMKilled (exit 137)" in reason


def _counts(jobs: dict[str, dict]) -> dict[tuple[str, str], list[int]]:
    seen: dict[tuple[str, str], list[int]] = {}
    for job in jobs.values():
        work = naming.Workload.from_labels(job["metadata"]["labels"])
        seen.setdefault((work.role, work.id), []).append(work.attempt)
    return seen


def test_a_killed_runner_is_restarted_and_adopts_the_running_jobs_without_duplicates(api, babyai, spec_path,
                                                                                     tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "trainer.cli", *_args(api, spec_path, out, "--max-parallel", "3")]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    phase = {"action": "run"}
    with ClusterActor(api, NS, RUN, {"babyai": babyai.target}, lambda work, obj: phase["action"]) as actor:
        first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # The oracle cell, the untrained cell and the first stage start together, and stay running.
            wait_until(lambda: len(_workloads(api)) == 3 and all(
                v == "run" for v in actor.handled.values()) and len(actor.handled) == 3, "three running Jobs")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        before = {name: job["metadata"]["uid"] for name, job in _workloads(api).items()}
        # The history the old watches saw is gone and streams drop: the new runner must list afresh anyway.
        api.compact()
        api.break_watches()
        phase["action"] = "succeed"
        second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert actor.errors == []
    assert second.returncode == 0, second.stderr[-3000:]
    after = _workloads(api)
    for name, uid in before.items():
        assert after[name]["metadata"]["uid"] == uid  # adopted, not recreated
    assert all(attempts == [0] for attempts in _counts(after).values())  # nothing started twice
    assert len(after) == STAGES + CELLS
    with ResultsStore.open_existing(out) as store:
        assert len(store.done()) == CELLS


def test_grid_delete_removes_every_object_of_the_run_and_nothing_else(api, babyai, spec_path, tmp_path):
    with ClusterActor(api, NS, RUN, {"babyai": babyai.target}):
        assert _run(api, spec_path, tmp_path / "run").exit_code == 0
    other = {"apiVersion": "v1", "kind": "ConfigMap", "data": {},
             "metadata": {"name": "another-run", "namespace": NS, "labels": {naming.RUN: "r2"}}}
    api.put(other)
    selector = naming.run_selector(RUN)
    assert api.objects("pods", NS, selector) and api.objects("configmaps", NS, selector)
    result = CliRunner().invoke(cli, ["grid", "delete", RUN, "--namespace", NS, "--kubeconfig",
                                      str(api.kubeconfig_path), "--context", "standin"])
    assert result.exit_code == 0, result.output
    assert f"{STAGES + CELLS} Job(s)" in result.output
    for kind in ("jobs", "configmaps", "pods", "rayjobs"):
        assert api.objects(kind, NS, selector) == [], kind
    assert api.get("configmaps", NS, "another-run") is not None
    # Everything the runner asked of the API server, run and delete, is within its Role (k8s/components/grid-runner).
    role = next(d for d in yaml.safe_load_all((REPO / "k8s/components/grid-runner/rbac.yaml").read_text())
                if d["kind"] == "Role")
    granted = {(resource, verb) for rule in role["rules"] for resource in rule["resources"] for verb in rule["verbs"]}
    asked = {("pods/log", "get") if r.verb == "log" else (r.resource, r.verb) for r in api.requests
             if r.resource and r.name != "another-run"}
    assert asked and asked <= granted, asked - granted


def test_the_rayjob_overlay_runs_grpo_stages_as_rayjobs_over_the_specs_nodes(api, babyai, tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC.replace("launch: {gpus_per_node: 1, vllm_num_engines: 1}",
                                      "launch: {num_nodes: 2, gpus_per_node: 1, vllm_num_engines: 2}"))
    with ClusterActor(api, NS, RUN, {"babyai": babyai.target}) as actor:
        result = _run(api, spec_path, tmp_path / "run", "--overlay", "rayjob")
    assert actor.errors == [] and result.exit_code == 0, result.output
    rayjobs = _workloads(api, "rayjobs")
    assert len(rayjobs) == STAGES and len(_workloads(api)) == CELLS  # cells stay Jobs
    for doc in rayjobs.values():
        workers = doc["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
        assert workers["replicas"] == 2
        assert workers["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert validation.errors({k: v for k, v in doc.items() if k != "status"},
                                 validation.KUBERNETES_VERSIONS[-1]) == []


def test_a_multi_node_stage_on_the_gpu_job_overlay_is_a_clear_error(api, tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC.replace("launch: {gpus_per_node: 1, vllm_num_engines: 1}",
                                      "launch: {num_nodes: 2, gpus_per_node: 1, vllm_num_engines: 2}"))
    result = _run(api, spec_path, tmp_path / "run")
    assert result.exit_code == 1 and "use --overlay rayjob" in result.output
    assert not any(r.verb == "create" for r in api.requests)


# --- a cluster that cannot be used says why, at once ---------------------------------------------------------

def test_a_bad_kubeconfig_is_a_one_line_error(api, spec_path, tmp_path):
    bad = tmp_path / "kubeconfig"
    bad.write_text("this: [is not a kubeconfig")
    args = _args(api, spec_path, tmp_path / "run")
    args[args.index("--kubeconfig") + 1] = str(bad)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot read the kubeconfig" in result.output and str(bad) in result.output


def test_an_unreachable_api_server_fails_fast_with_the_address(spec_path, tmp_path):
    port = free_port()  # nothing listens there
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "gone", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}]}))
    result = CliRunner().invoke(cli, ["grid", "run", str(spec_path), "--out", str(tmp_path / "run"), "--backend",
                                      "kubernetes", "--kubeconfig", str(config), "--image", "t:1",
                                      "--request-timeout", "5", "--no-progress"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot reach the API server" in result.output and f"127.0.0.1:{port}" in result.output


def test_a_forbidden_answer_names_the_role_to_bind(api, spec_path, tmp_path):
    api.inject_failure(403, verb="list", resource="jobs")
    result = _run(api, spec_path, tmp_path / "run")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "forbidden (403)" in result.output and "k8s/components/grid-runner" in result.output


def test_cluster_options_need_the_kubernetes_backend_and_an_image(api, spec_path, tmp_path):
    local = CliRunner().invoke(cli, ["grid", "run", str(spec_path), "--out", str(tmp_path / "a"), "--namespace", "x"])
    assert local.exit_code == 2 and "--namespace: only with --backend kubernetes" in local.output
    args = _args(api, spec_path, tmp_path / "b")
    del args[args.index("--image"):args.index("--image") + 2]
    no_image = CliRunner().invoke(cli, args)
    assert no_image.exit_code == 2 and "--image" in no_image.output
