"""Where one environment's pods are: a fixed list of "host:port" targets, every address of a DNS name, or the ready
endpoints of a Kubernetes Service followed through the API.

A Kubernetes headless Service resolves to one address per ready pod, so `dns:///babyai.envs.svc.cluster.local:50051`
(or plain `babyai.envs.svc.cluster.local:50051`) names the whole Deployment; the pool re-resolves it periodically.
`k8s:///envs/babyai:grpc` (`k8s://CONTEXT/NAMESPACE/SERVICE:PORT_NAME_OR_NUMBER`) follows the Service's
EndpointSlices with a watch instead (trainer/client/endpointslices.py): the pool hears of a pod as soon as it is
ready or gone, without waiting for DNS caches and re-resolution.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Sequence

from trainer.client.endpointslices import K8S_SCHEME, EndpointSliceWatcher, ServiceRef

DNS_SCHEME = "dns:"


def _split_host_port(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"endpoint {target!r} is not host:port (e.g. 127.0.0.1:50051 or dns:///svc.ns:50051)")
    return host.strip("[]"), int(port)


def format_target(host: str, port: int) -> str:
    """host:port, with IPv6 addresses in brackets as gRPC expects."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Endpoints:
    """The current targets of one environment's pods.

    A sequence is a fixed list of targets, used as given. A single string is a name resolved with getaddrinfo to
    every address it has; an IP literal resolves to itself, and a comma-separated string is a fixed list.
    A `k8s://` string is a Service whose EndpointSlices are watched.
    """

    def __init__(self, spec: Sequence[str] | str, resolve_interval_s: float = 30.0) -> None:
        if resolve_interval_s <= 0:
            raise ValueError(f"resolve_interval_s must be > 0; got {resolve_interval_s}")
        self.resolve_interval_s = resolve_interval_s
        if isinstance(spec, str) and "," in spec:
            spec = [part.strip() for part in spec.split(",") if part.strip()]
        self._name: tuple[str, int] | None = None
        self._fixed: tuple[str, ...] = ()
        self._watcher: EndpointSliceWatcher | None = None
        if isinstance(spec, str) and spec.strip().startswith(K8S_SCHEME):
            self._watcher = EndpointSliceWatcher(ServiceRef.parse(spec))
        elif isinstance(spec, str):
            name = spec.removeprefix(DNS_SCHEME)
            if name.startswith("//"):
                # dns://[authority]/host:port, as gRPC spells it; the authority (a DNS server) is ignored.
                name = name[2:].partition("/")[2]
            host, port = _split_host_port(name)
            if _is_ip(host):
                self._fixed = (format_target(host, port),)
            else:
                self._name = (host, port)
        else:
            for target in spec:
                _split_host_port(target)
            self._fixed = tuple(dict.fromkeys(spec))
            if not self._fixed:
                raise ValueError("no endpoints given: pass host:port targets or a DNS name")

    @property
    def dynamic(self) -> bool:
        """Whether the set can change, so the pool should call resolve() every resolve_interval_s."""
        return self._name is not None or self._watcher is not None

    def __repr__(self) -> str:
        if self._watcher is not None:
            return f"Endpoints({self._watcher.ref})"
        return f"Endpoints({format_target(*self._name) if self._name else ','.join(self._fixed)})"

    async def resolve(self) -> tuple[str, ...]:
        """The targets now, sorted; raises OSError (socket.gaierror) when the name does not resolve, or
        (EndpointDiscoveryError) when a Service's EndpointSlices cannot be listed at first."""
        if self._watcher is not None:
            return await self._watcher.targets()
        if self._name is None:
            return self._fixed
        host, port = self._name
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return tuple(sorted({format_target(str(info[4][0]), port) for info in infos}))

    async def changed(self) -> None:
        """Wait until resolve() may answer differently: resolve_interval_s for a DNS name; for a watched Service,
        as soon as its ready endpoints change (resolve_interval_s at most)."""
        if self._watcher is not None:
            await self._watcher.wait_changed(self.resolve_interval_s)
        else:
            await asyncio.sleep(self.resolve_interval_s)

    async def aclose(self) -> None:
        """Stop following a Service (nothing to do for a list or a DNS name); resolve() would start again."""
        if self._watcher is not None:
            await self._watcher.aclose()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
