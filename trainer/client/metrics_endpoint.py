"""One /metrics port per pod for the rollout series of every process in it.

OpenRLHF builds an agent executor in every vLLM rollout actor, several per pod, and the pod has one metrics port
(SHIFTGYM_METRICS_PORT). With PROMETHEUS_MULTIPROC_DIR set in the pod's environment (prometheus_client reads it
when it is imported, so it must be there when the process starts), every process's collectors write to files in
that directory and the first process to bind the port serves all of them, summed per series by prometheus_client's
MultiProcessCollector; the others find the port taken and leave it be (should the serving process die, none of
them takes the port over). Without the directory, a process serves its own registry if the port is free.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = logging.getLogger(__name__)

PORT_VARIABLE = "SHIFTGYM_METRICS_PORT"
HOST_VARIABLE = "SHIFTGYM_METRICS_HOST"
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own name
DEFAULT_HOST = "0.0.0.0"  # Prometheus scrapes the pod's IP
# Other libraries of the pod (vLLM, Ray) may write their own series to the same directory; the trainer's endpoint
# serves ShiftGym's.
SERIES_PREFIX = "shiftgym_"
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


@dataclass(frozen=True, slots=True)
class MetricsAddress:
    host: str
    port: int

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "MetricsAddress | None":
        """Where to serve, or None when SHIFTGYM_METRICS_PORT is unset or empty; ValueError naming the variable
        when it is not a port number."""
        raw = environ.get(PORT_VARIABLE, "").strip()
        if not raw:
            return None
        try:
            port = int(raw)
        except ValueError:
            raise ValueError(f"{PORT_VARIABLE}={raw!r}: not a port number") from None
        if not 0 <= port <= 65535:
            raise ValueError(f"{PORT_VARIABLE}={raw!r}: a port is 0..65535")
        return cls(environ.get(HOST_VARIABLE, "").strip() or DEFAULT_HOST, port)


class PodCollector:
    """The shiftgym_* series of every process that wrote to the directory, combined by MultiProcessCollector.

    The live gauges of processes that have exited are dropped first, as prometheus_client's mark_process_dead does
    for a server that knows when its workers die: a rollout actor that died must not keep its episodes in flight.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._files = MultiProcessCollector(None, path)  # ValueError when the path is not a directory

    def collect(self) -> Iterator[Metric]:
        for pid in self._dead_writers():
            mark_process_dead(pid, self.path)
        for family in self._files.collect():
            if family.name.startswith(SERIES_PREFIX):
                yield family

    def _dead_writers(self) -> set[int]:
        pids = {int(m.group(1)) for m in map(_LIVE_GAUGE_FILE.match, os.listdir(self.path)) if m}
        return {pid for pid in pids if not _alive(pid)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def shared_directory(environ: Mapping[str, str]) -> str | None:
    """PROMETHEUS_MULTIPROC_DIR, created if missing (every collector of the process writes there, so a missing
    directory would fail them all); None when it is unset."""
    path = environ.get(MULTIPROC_VARIABLE, "").strip()
    if not path:
        return None
    os.makedirs(path, exist_ok=True)
    if values.ValueClass is values.MutexValue:  # chosen when prometheus_client was imported
        log.warning("%s was set after prometheus_client was imported: this process's series stay in memory and the "
                    "pod's endpoint will not show them", MULTIPROC_VARIABLE)
    return path


def serve_pod_metrics(registry: CollectorRegistry, address: MetricsAddress, shared: str | None) -> WSGIServer | None:
    """Serve /metrics at `address`: the series of every process of the pod when they share a directory (`shared`,
    from shared_directory), else `registry`. Returns the server, or None when the port is taken (with a shared
    directory, another process of the pod serves this one's series too). Other errors (a bad host, no permission)
    are raised."""
    served = registry
    if shared is not None:
        served = CollectorRegistry()
        served.register(PodCollector(shared))
    try:
        server, _thread = start_http_server(address.port, addr=address.host, registry=served)
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise
        if shared is not None:
            log.debug("metrics port %s:%d is served by another process of this pod", address.host, address.port)
        else:
            log.warning("metrics port %s:%d is taken and %s is unset: this process's rollout series are not served",
                        address.host, address.port, MULTIPROC_VARIABLE)
        return None
    log.info("serving metrics", extra={"host": address.host, "port": int(server.server_address[1]),
                                       "shared_directory": shared})
    return server


def stop_serving(server: WSGIServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
