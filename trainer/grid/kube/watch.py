"""The run's objects of one kind, kept current by a watch: one list, then a watch stream from its resourceVersion,
in a thread; asyncio code reads the cache and sleeps until the next change. A stream that ends is resumed from the
last resourceVersion seen; a 410 Gone (history compacted) or a broken connection relists, so no change is missed.
A watch that keeps failing for `give_up_s` fails its waiters with the reason instead of leaving them hanging."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable

from trainer.grid.kube.cluster import Cluster, ClusterError, RAY

log = logging.getLogger(__name__)
Doc = dict[str, Any]
STREAM_S = 30  # each watch request's timeoutSeconds: the server ends it cleanly and it is renewed
RETRY_S = (0.1, 1, 2, 4, 8)  # the first retry at once: a dropped stream is routine (API server restarts)


class Watcher:
    def __init__(self, cluster: Cluster, kind: str, selector: str, *, give_up_s: float = 300.0,
                 on_change: Callable[[str, Doc], None] | None = None) -> None:
        self.cluster, self.kind, self.selector = cluster, kind, selector
        self.give_up_s = give_up_s
        self.on_change = on_change  # called on the event loop with (event type, object)
        self.objects: dict[str, Doc] = {}
        self.gone: set[str] = set()  # names seen deleted
        self.error: ClusterError | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._stopped = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: Any = None

    # --- the event loop's side -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start watching; returns once the first list is in the cache (or raises why it could not be had)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.kind.lower()}s", daemon=True)
        self._thread.start()
        while not self._synced.is_set():
            if self.error is not None:
                raise self.error
            await self.changed(timeout_s=0.5)

    def stop(self) -> None:
        self._stopped.set()
        if self._watch is not None:
            self._watch.stop()

    def get(self, name: str) -> Doc | None:
        return self.objects.get(name)

    def seed(self, obj: Doc) -> None:
        """An object just created: known before its ADDED event arrives (a newer version from the watch wins)."""
        name = obj["metadata"]["name"]
        if name not in self.objects:
            self.objects[name] = obj
            self.gone.discard(name)

    async def changed(self, timeout_s: float | None = None) -> None:
        """Sleep until the next change of any object (or timeout_s); raises if the watch gave up."""
        if self.error is not None:
            raise self.error
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except asyncio.TimeoutError:
            pass
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if self.error is not None:
            raise self.error

    def _apply(self, kind: str, obj: Doc | list[Doc] | ClusterError) -> None:
        if isinstance(obj, ClusterError):
            self.error = obj
        elif kind == "SYNC":  # a (re)list: the whole truth
            fresh = {o["metadata"]["name"]: o for o in obj}  # type: ignore[union-attr]
            self.gone |= set(self.objects) - set(fresh)
            self.objects = fresh
            self.gone -= set(fresh)
        else:
            name = obj["metadata"]["name"]  # type: ignore[index]
            if kind == "DELETED":
                self.objects.pop(name, None)
                self.gone.add(name)
            else:
                self.objects[name] = obj  # type: ignore[assignment]
                self.gone.discard(name)
            if self.on_change is not None:
                try:
                    self.on_change(kind, obj)  # type: ignore[arg-type]
                except Exception:  # noqa: BLE001 - a progress line must not stop the watch
                    log.exception("progress callback failed")
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _post(self, kind: str, obj: Doc | list[Doc] | ClusterError) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._apply, kind, obj)
            except RuntimeError:  # the loop closed meanwhile
                pass

    # --- the thread's side -----------------------------------------------------------------------------

    def _stream_args(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if self.kind == "RayJob":
            return self.cluster.custom.list_namespaced_custom_object, (*RAY[:2], self.cluster.namespace, RAY[2])
        return self.cluster.lister(self.kind), (self.cluster.namespace,)

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        version: str | None = None
        failing_since: float | None = None
        failures = 0
        fn, args = self._stream_args()
        while not self._stopped.is_set():
            streamed = False  # a stream that delivered events was healthy: its end starts no failure streak
            try:
                if version is None:
                    items, version = self.cluster.list(self.kind, self.selector)
                    self._post("SYNC", items)
                    self._synced.set()
                self._watch = watch.Watch()
                for event in self._watch.stream(fn, *args, label_selector=self.selector, resource_version=version,
                                                timeout_seconds=STREAM_S,
                                                _request_timeout=(self.cluster.timeout[0],
                                                                  STREAM_S + self.cluster.timeout[1])):
                    if self._stopped.is_set():
                        break
                    streamed = True
                    obj = event["raw_object"]
                    version = obj.get("metadata", {}).get("resourceVersion") or version
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._post(event["type"], obj)
                failing_since, failures = None, 0
            except ApiException as err:
                if self._stopped.is_set():
                    break
                if err.status == 410:  # the history we would resume from is gone: relist
                    version = None
                    continue
                if streamed:
                    failing_since, failures = None, 0
                failing_since, failures = self._failed(err, failing_since, failures)
                version = None
            except Exception as err:  # noqa: BLE001 - urllib3's, JSON's, a failed relist: all retried
                if self._stopped.is_set():  # the client was closed under the stream on the way out
                    break
                # A dropped connection: resume from the last version seen (a 410 then relists if it is too old).
                if streamed:
                    failing_since, failures = None, 0
                failing_since, failures = self._failed(err, failing_since, failures)

    def _failed(self, err: Exception, since: float | None, failures: int) -> tuple[float, int]:
        from trainer.grid.kube.cluster import describe

        since = since or time.monotonic()
        error = err if isinstance(err, ClusterError) else describe(err, f"watch {self.kind.lower()}s",
                                                                      self.cluster.server)
        refused = "forbidden (403)" in str(error) or "(401 Unauthorized)" in str(error)  # retrying will not help
        if refused or time.monotonic() - since > self.give_up_s:
            self._post("ERROR", error)
            self._stopped.set()
        else:
            log.log(logging.DEBUG if failures == 0 else logging.WARNING, "%s; retrying", error)
            self._stopped.wait(RETRY_S[min(failures, len(RETRY_S) - 1)])
        return since, failures + 1
