"""Local env servers do not outlive the process that started them, even when it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from trainer.local_servers import REPO

PARENT = """
from trainer.local_servers import LocalServer
import sys, time
with LocalServer("null", "--log-level", "warning") as server:
    print(server.pid, flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_a_server_drains_and_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        server_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert _alive(server_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 60  # the drain grace is 30 s by default; an idle server exits at once
        while _alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server_pid), "the env server outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
