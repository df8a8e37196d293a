"""Real env servers for tests: in a thread of the test process, or as a `python -m env_server` subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

from env_server.envs.base import Environment
from env_server.runtime import Limits
from env_server.server import EnvServer, build_server

REPO = Path(__file__).resolve().parents[1]


class ServerThread:
    """An env server on 127.0.0.1 with its own event loop in a background thread."""

    def __init__(self, env: str | Environment, limits: Limits | None = None) -> None:
        self._env = env
        self._limits = limits or Limits(enable_oracle=True)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.server: EnvServer

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        self.server = self.call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self.server.stop(grace_s=None))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _start(self) -> EnvServer:
        server = await build_server(self._env, "127.0.0.1:0", self._limits)
        await server.start()
        return server

    def call(self, coroutine: object, timeout_s: float = 120) -> object:
        """Run a coroutine on the server's loop, e.g. to poke its runtime."""
        future: Future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        return future.result(timeout=timeout_s)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def runtime(self):  # noqa: ANN201 - the live Runtime, for assertions on server state
        return self.server.runtime


class ServerProcess:
    """`python -m env_server serve` on 127.0.0.1 with free ports read back from its READY line."""

    def __init__(self, env: str, *args: str) -> None:
        self.args = [sys.executable, "-m", "env_server", "serve", "--env", env, "--host", "127.0.0.1",
                     "--port", "0", "--metrics-port", "0", *args]

    def __enter__(self) -> "ServerProcess":
        env = dict(os.environ, PYTHONPATH=str(REPO), GRPC_VERBOSITY="ERROR")
        self.proc = subprocess.Popen(self.args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("READY"):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.stderr.read()}")  # type: ignore[union-attr]
        fields = dict(part.split("=") for part in line.split()[1:])
        self.port, self.metrics_port = int(fields["port"]), int(fields["metrics_port"])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()  # type: ignore[union-attr]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float = 60) -> int:
        return self.proc.wait(timeout=timeout_s)
