"""One Service's ready pods, followed through the Kubernetes API: `k8s:///NAMESPACE/SERVICE:PORT`.

The watcher lists the Service's EndpointSlices once, then watches them from that list's resourceVersion; a watch
that ends is resumed from the last version seen, an expired version (410 Gone) means listing again, and any other
error a pause (doubling, with jitter) before trying again. Only ready endpoints count, an absent `ready` condition
meaning ready, as the EndpointSlice API documents. Needs `get`, `list` and `watch` on
`endpointslices.discovery.k8s.io` in the namespace.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
from dataclasses import dataclass
from typing import Any, Mapping

log = logging.getLogger(__name__)

K8S_SCHEME = "k8s:"
SERVICE_LABEL = "kubernetes.io/service-name"
LIST_TIMEOUT_S = 30.0
# DNS-1123 labels, as Kubernetes requires of namespace and Service names; a port is a number or an IANA name.
_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SPEC = re.compile(rf"^k8s://(?P<context>[^/]*)/(?P<namespace>{_NAME})/(?P<service>{_NAME}):(?P<port>[a-z0-9-]+)$")


class EndpointDiscoveryError(OSError):
    """The Kubernetes API could not be reached or read (an OSError, like a DNS name that does not resolve)."""


@dataclass(frozen=True, slots=True)
class ServiceRef:
    """Which Service and port to follow, and through which kubeconfig context ("" = in-cluster or current)."""

    namespace: str
    service: str
    port: str  # a port name, looked up in each EndpointSlice, or a number used as given
    context: str = ""

    @classmethod
    def parse(cls, spec: str) -> "ServiceRef":
        found = _SPEC.match(spec.strip())
        if found is None:
            raise ValueError(f"endpoint {spec!r} is not k8s://[CONTEXT]/NAMESPACE/SERVICE:PORT "
                             "(e.g. k8s:///shiftgym/babyai:grpc or k8s:///shiftgym/babyai:50051)")
        return cls(found["namespace"], found["service"], found["port"], found["context"])

    def __str__(self) -> str:
        return f"k8s://{self.context}/{self.namespace}/{self.service}:{self.port}"


def _get(obj: Any, snake: str, camel: str) -> Any:
    """A field of a client model or of a plain dict (the API's own camelCase)."""
    return obj.get(camel) if isinstance(obj, Mapping) else getattr(obj, snake, None)


def slice_targets(endpoint_slice: Any, port: str) -> frozenset[str]:
    """The host:port targets of one EndpointSlice's ready endpoints."""
    from trainer.client.endpoints import format_target

    if port.isdigit():
        number: int | None = int(port)
    else:
        ports = [p for p in _get(endpoint_slice, "ports", "ports") or () if _get(p, "name", "name") == port]
        number = _get(ports[0], "port", "port") if ports else None
    if number is None:
        return frozenset()
    targets = set()
    for endpoint in _get(endpoint_slice, "endpoints", "endpoints") or ():
        conditions = _get(endpoint, "conditions", "conditions")
        ready = _get(conditions, "ready", "ready") if conditions is not None else None
        addresses = _get(endpoint, "addresses", "addresses") or ()
        if ready is not False and addresses:  # the API: "consumers ... may choose to only use the first element"
            targets.add(format_target(addresses[0], number))
    return frozenset(targets)


class _Expired(Exception):
    """The watch's resourceVersion is gone from the server's history: list again."""


class EndpointSliceWatcher:
    """Follows one Service's EndpointSlices in a background task, started by the first `targets()` call."""

    def __init__(self, ref: ServiceRef, *, watch_timeout_s: float = 300.0, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0) -> None:
        self.ref = ref
        self.watch_timeout_s = watch_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._slices: dict[str, frozenset[str]] = {}
        self._targets: tuple[str, ...] = ()
        self._changed = asyncio.Event()
        self._listed: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()  # backoff jitter only
        self._version = ""  # the resourceVersion to resume watching from; "" means list first

    async def targets(self) -> tuple[str, ...]:
        """The ready targets now, sorted. The first call starts the watcher and waits for its first list; it raises
        EndpointDiscoveryError when that fails (later failures keep the last known targets while it retries)."""
        if self._task is None or self._task.done():
            self._listed = asyncio.get_running_loop().create_future()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"watch {self.ref}")
        assert self._listed is not None
        await asyncio.shield(self._listed)
        self._changed.clear()
        return self._targets

    async def wait_changed(self, timeout_s: float) -> None:
        """Return when the targets changed since the last `targets()`, or after `timeout_s`."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # --- the background task ---------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            api_client = await _api_client(self.ref.context)
        except Exception as err:  # noqa: BLE001 - any config problem is the caller's to read
            assert self._listed is not None
            self._listed.set_exception(EndpointDiscoveryError(f"{self.ref}: no Kubernetes API to ask: {err}"))
            return
        from kubernetes.aio import client

        async with api_client:
            api = client.DiscoveryV1Api(api_client)
            failures = 0
            self._version = ""
            while True:
                try:
                    if not self._version:
                        self._version = await self._list(api)
                    failures = 0
                    await self._watch(api)
                except _Expired:
                    self._version = ""  # list again at once: the history we would resume from is gone
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # noqa: BLE001 - the API server restarting, the network, a 5xx
                    if self._listed is not None and not self._listed.done():
                        self._listed.set_exception(
                            EndpointDiscoveryError(f"{self.ref}: listing EndpointSlices failed: {_describe(err)}"))
                        return
                    log.warning("watching EndpointSlices failed; retrying",
                                extra={"endpoints": str(self.ref), "error": _describe(err)})
                    await asyncio.sleep(self._pause_s(failures))
                    failures += 1

    async def _list(self, api: Any) -> str:
        listed = await api.list_namespaced_endpoint_slice(
            self.ref.namespace, label_selector=f"{SERVICE_LABEL}={self.ref.service}",
            _request_timeout=LIST_TIMEOUT_S)
        self._slices = {s.metadata.name: slice_targets(s, self.ref.port) for s in listed.items}
        self._publish()
        if self._listed is not None and not self._listed.done():
            self._listed.set_result(None)
        return str(listed.metadata.resource_version)

    async def _watch(self, api: Any) -> None:
        """Apply events until the server ends the watch, keeping the last resourceVersion seen to resume from."""
        from kubernetes.aio import watch
        from kubernetes.aio.client.exceptions import ApiException

        stream = watch.Watch().stream(
            api.list_namespaced_endpoint_slice, self.ref.namespace, label_selector=f"{SERVICE_LABEL}={self.ref.service}",
            resource_version=self._version, timeout_seconds=int(self.watch_timeout_s),
            _request_timeout=self.watch_timeout_s + 30)
        try:
            async with stream:
                async for event in stream:
                    raw = event["raw_object"]
                    self._version = raw["metadata"].get("resourceVersion") or self._version
                    if event["type"] == "DELETED":
                        self._slices.pop(raw["metadata"]["name"], None)
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        self._slices[raw["metadata"]["name"]] = slice_targets(raw, self.ref.port)
                    self._publish()  # BOOKMARK events only move the version
        except ApiException as err:
            if err.status == 410:
                raise _Expired() from err
            raise

    def _publish(self) -> None:
        targets = tuple(sorted(set().union(*self._slices.values())))
        if targets != self._targets:
            log.info("env endpoints changed", extra={"endpoints": str(self.ref), "targets": ",".join(targets)})
            self._targets = targets
            self._changed.set()

    def _pause_s(self, failures: int) -> float:
        ceiling = min(self.max_backoff_s, self.backoff_s * 2.0**failures)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)


async def _api_client(context: str) -> Any:
    """An asyncio client: the pod's service account when running in a cluster (and no context is named), else the
    kubeconfig ($KUBECONFIG, or ~/.kube/config) with its current or the named context."""
    from kubernetes.aio import client, config

    configuration = client.Configuration()
    if not context and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        await config.load_kube_config(config_file=kubeconfig, context=context or None,
                                      client_configuration=configuration)
    return client.ApiClient(configuration)


def _describe(err: BaseException) -> str:
    status = getattr(err, "status", None)
    reason = getattr(err, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return f"{type(err).__name__}: {err}"
