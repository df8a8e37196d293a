"""The local env fleet: one `python -m env_server serve` per environment on loopback, with the oracle enabled (the
report's oracle row and warm starts ask for it; the GRPO policies never call it). Started together, stopped
together on the way out, Ctrl-C and errors included."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

from trainer.local_servers import LocalServer


@contextlib.contextmanager
def local_fleet(envs: Sequence[str]) -> Iterator[dict[str, str]]:
    """{env: "127.0.0.1:port"} while the servers run."""
    with contextlib.ExitStack() as stack:
        servers = [LocalServer(env, "--enable-oracle", "--log-level", "warning") for env in envs]
        # The servers die with the thread that started them (trainer/local_servers.py): the pool's threads live
        # until the fleet is done.
        with ThreadPoolExecutor(max_workers=max(len(servers), 1)) as threads:
            started = [threads.submit(server.__enter__) for server in servers]
            errors = []
            for server, future in zip(servers, started):
                try:
                    future.result()
                    stack.push(server.__exit__)
                except BaseException as err:  # noqa: BLE001 - stop the others, then raise the first
                    errors.append(err)
            if errors:
                raise errors[0]
            yield {server.env: server.target for server in servers}
