"""The committed protocol code matches what `make proto` generates from proto/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATED = ("env_pb2.py", "env_pb2.pyi", "env_pb2_grpc.py")


def test_generated_code_is_current(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Iproto", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}",
         f"--grpc_python_out={tmp_path}", "proto/shiftgym/env/v1/env.proto"],
        cwd=REPO, check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "shiftgym/env/v1" / name).read_text()
        committed = (REPO / "shiftgym/env/v1" / name).read_text()
        assert fresh == committed, f"shiftgym/env/v1/{name} is stale: run `make proto` and commit the result"
