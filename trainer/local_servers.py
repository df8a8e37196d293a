"""Env servers on loopback as child processes (`python -m env_server serve`), for local runs and tests."""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]


_PR_SET_PDEATHSIG = 1  # prctl(2)


def _drain_when_parent_dies() -> None:
    """In the child before exec: SIGTERM (drain, exit) when the parent dies, even by SIGKILL, so no server is left
    behind. Linux ties this to the thread that started the child: start servers from a thread that outlives them."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class LocalServer:
    """One env server process on 127.0.0.1 with free ports, read back from its READY line."""

    def __init__(self, env: str, *args: str) -> None:
        self.env = env
        self.args = [sys.executable, "-m", "env_server", "serve", "--env", env, "--host", "127.0.0.1",
                     "--port", "0", "--metrics-port", "0", *args]

    def __enter__(self) -> "LocalServer":
        env = dict(os.environ, PYTHONPATH=str(REPO), GRPC_VERBOSITY=os.environ.get("GRPC_VERBOSITY", "ERROR"))
        self.proc = subprocess.Popen(self.args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, preexec_fn=_drain_when_parent_dies)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("READY"):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
            raise RuntimeError(f"env server {self.env!r} did not start: {err.strip().splitlines()[-1:] or line!r}")
        fields = dict(part.split("=") for part in line.split()[1:])
        self.port, self.metrics_port = int(fields["port"]), int(fields["metrics_port"])
        # Keep reading the server's output: a full pipe would block a server that prints (minigrid does).
        self.output: collections.deque[str] = collections.deque(maxlen=200)
        for pipe in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._drain, args=(pipe,), daemon=True).start()
        return self

    def _drain(self, pipe: IO[str]) -> None:
        for line in pipe:
            self.output.append(line)

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(timeout=30)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float = 60) -> int:
        return self.proc.wait(timeout=timeout_s)
