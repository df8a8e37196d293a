"""Real env servers for tests: in a thread of the test process, or as a `python -m env_server` subprocess."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import Future

from env_server.envs.base import Environment
from env_server.runtime import Limits
from env_server.server import EnvServer, build_server
from trainer.local_servers import LocalServer


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


def free_port() -> int:
    """A port free on loopback now, for a server that must come back on the same address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Tests run servers exactly as users do.
ServerProcess = LocalServer
