"""A stand-in Kubernetes API server for tests: a test double of an outside service (no real API server can run on
these machines), speaking the real REST + watch protocol on 127.0.0.1 well enough for the official `kubernetes`
client, sync (`kubernetes.client`) and asyncio (`kubernetes.aio`).

    from tests.kube_apiserver import running_apiserver

    with running_apiserver() as api:
        batch = kubernetes.client.BatchV1Api(api.api_client())   # or load api.kubeconfig_path, context "standin"
        batch.create_namespaced_job("grid", job_manifest)
        api.add_pod_for_job("grid", "stage-1", log="step 10 loss 0.3\n")   # act as the cluster
        api.fail_job("grid", "stage-1", reason="BackoffLimitExceeded")
        assert any(r.verb == "watch" and r.resource == "jobs" for r in api.requests)

What it serves (one line per type in tests/kube/standin_resources.py): core v1 Pods (+ pods/log, follow too),
ConfigMaps, Secrets, Services, ServiceAccounts, PersistentVolumeClaims, Events, Namespaces; batch/v1 Jobs; apps/v1
Deployments; discovery.k8s.io/v1 EndpointSlices; rbac Roles and RoleBindings; ray.io/v1 RayJobs and RayClusters
(custom resources, through CustomObjectsApi). Namespaced and all-namespace paths, discovery (/api, /apis, /version).

Protocol, as the real server behaves:
- create: 201; 409 AlreadyExists; generateName; uid, creationTimestamp, resourceVersion (one global counter),
  generation (1, then +1 whenever anything outside metadata and status changes); `dryRun=All` stores nothing.
  Types with a status subresource (Pods, Jobs, RayJobs, ...) drop `status` on create and keep the stored one on
  writes to the main resource; `/status` writes change only the status. Jobs get the server's defaults
  (backoffLimit 6, selector and the controller-uid / job-name template labels).
- get: 404 NotFound with a `Status` body (kind, reason, message `jobs.batch "x" not found`, details, code).
- list: `labelSelector` (`=`, `==`, `!=`, `in (..)`, `notin (..)`, `key`, `!key`), `fieldSelector` (`=`, `!=` on
  any dotted path); list metadata.resourceVersion; items without apiVersion/kind, as the real server sends them.
- watch (`watch=true`): without resourceVersion (or "0") ADDED for every current object, then changes; from a
  resourceVersion, every change after it; ADDED/MODIFIED/DELETED as JSON lines over chunked HTTP; a selector
  turns an object leaving or entering it into DELETED / ADDED; `timeoutSeconds` ends the stream cleanly; a
  resourceVersion older than the last `compact()` gets an ERROR event with a 410 Expired Status.
- replace (PUT): 409 Conflict when metadata.resourceVersion is stale. patch: merge-patch, strategic-merge (as a
  merge patch; 415 for custom resources, as the real server), JSON Patch (add/remove/replace/test),
  apply-patch (as a merge patch that creates a missing object).
- delete: `propagationPolicy` Background / Foreground / Orphan; dependents are the objects whose ownerReferences
  name the owner's uid. Jobs default to Orphan when no policy is given (the real batch/v1 default: pass
  `propagation_policy="Background"` to delete a Job's pods with it). Finalizers keep an object, marked with a
  deletionTimestamp, until they are removed. `deletecollection` with selectors.
- auth: every request needs `Authorization: Bearer <token>` (the kubeconfig carries it), else 401.

Not served: protobuf/CBOR bodies, paging (`limit` is ignored; a server may return everything), bookmarks, exec,
admission and schema validation (the backend validates manifests itself before sending), namespace existence,
controllers (no Job creates pods by itself: tests act as the cluster with the helpers below).

Why not kmock (PyPI, 0.8): its Kubernetes emulator keeps objects but has no resourceVersion counter (lists say
"..."), replays every object as ADDED on every watch whatever resourceVersion is asked, ignores timeoutSeconds and
label selectors, never answers 410, sets no uid/creationTimestamp/generation, and has no deletecollection,
pods/log or owner cascade: the client paths the grid backend and the endpoint watcher depend on.
"""

from __future__ import annotations

import contextlib
import copy
import json
import select
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

from tests.kube.standin_resources import RESOURCES, Resource, by_path, for_object, lookup
from tests.kube.standin_selectors import Obj, SelectorError, parse_field_selector, parse_label_selector
from tests.kube.standin_store import ApiError, Event, Store, not_found, now_rfc3339

CONTEXT = "standin"
_TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Request:
    """One request as the server saw it. `verb` is the Kubernetes verb (get, list, watch, create, update, patch,
    delete, deletecollection, log, discovery); `resource` the plural (`jobs`, `endpointslices`), or "" if none."""

    method: str
    path: str
    query: dict[str, str]
    verb: str
    resource: str
    namespace: str | None
    name: str | None


@dataclass
class _Failure:
    code: int
    verb: str | None
    resource: str | None
    times: int


@dataclass
class _Route:
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str


def _parse_route(path: str) -> _Route | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = by_path(group, version, rest[0])
    if resource is None or len(rest) > 3 or (namespace is not None and not resource.namespaced):
        return None
    return _Route(resource, namespace, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else "")


def _verb(method: str, route: _Route | None, query: dict[str, str]) -> str:
    if route is None:
        return "discovery"
    if route.subresource == "log":
        return "log"
    if method == "GET":
        if route.name:
            return "get"
        return "watch" if query.get("watch") in ("true", "1") else "list"
    if method == "DELETE" and not route.name:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())


def _event_type(event: Event, matches) -> str | None:  # noqa: ANN001 - a predicate over objects
    """What a watch with a selector sees of an event, or None when the object is outside it before and after."""
    now_in = matches(event.obj)
    was_in = event.old is not None and matches(event.old)
    if event.type == "DELETED":
        return "DELETED" if was_in or now_in else None
    if now_in and was_in:
        return "MODIFIED"
    if now_in:
        return "ADDED"
    return "DELETED" if was_in else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_HttpServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass

    # -- plumbing ------------------------------------------------------------------------------------------
    def _send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_text(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _client_gone(self) -> bool:
        """Whether the client closed its end (a watch is otherwise only found dead on its next write)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as err:
            raise ApiError(400, "BadRequest", f"the body of the request is not JSON: {err}") from err

    def _handle(self) -> None:
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        route = _parse_route(split.path)
        request = Request(self.command, split.path, query, _verb(self.command, route, query),
                          route.resource.plural if route else "", route.namespace if route else None,
                          route.name if route else None)
        standin = self.server.standin
        standin._log(request)
        try:
            body = self._body() if self.command in ("POST", "PUT", "PATCH", "DELETE") else None
            if self.headers.get("Authorization") != f"Bearer {standin.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if (failure := standin._take_failure(request)) is not None:
                raise ApiError(failure, "InternalError" if failure >= 500 else "BadRequest",
                               f"failure injected by the test for {request.verb} {request.resource}")
            if route is None:
                self._discovery(split.path)
            else:
                self._resource(route, request, query, body)
        except ApiError as err:
            self._send_json(err.code, err.status())
        except SelectorError as err:
            self._send_json(400, ApiError(400, "BadRequest", str(err)).status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    # -- discovery -----------------------------------------------------------------------------------------
    def _discovery(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        groups: dict[str, list[Resource]] = {}
        for resource in RESOURCES:
            groups.setdefault(resource.api_version, []).append(resource)
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return self._send_text(200, "ok")
        if parts == ["version"]:
            return self._send_json(200, {"major": "1", "minor": "34", "gitVersion": "v1.34.0-standin",
                                         "platform": "linux/amd64"})
        if parts == ["api"]:
            return self._send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.server.standin.url.split("//")[1]}]})
        if parts == ["apis"]:
            return self._send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                self._group(gv.split("/")[0]) for gv in groups if "/" in gv]})
        if len(parts) == 2 and parts[0] == "apis" and any(gv.startswith(parts[1] + "/") for gv in groups):
            return self._send_json(200, {"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1])})
        group_version = "v1" if parts[:2] == ["api", "v1"] and len(parts) == 2 else "/".join(parts[1:3])
        if (parts[:1] == ["apis"] and len(parts) == 3 or parts == ["api", "v1"]) and group_version in groups:
            return self._send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                         "groupVersion": group_version, "resources": [
                entry for r in groups[group_version] for entry in self._api_resources(r)]})
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    @staticmethod
    def _group(name: str) -> dict:
        versions = [{"groupVersion": r.api_version, "version": r.version} for r in RESOURCES if r.group == name]
        unique = [dict(v) for v in {json.dumps(v): v for v in versions}.values()]
        return {"name": name, "versions": unique, "preferredVersion": unique[0]}

    @staticmethod
    def _api_resources(resource: Resource) -> list[dict]:
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        main = {"name": resource.plural, "singularName": resource.singular, "namespaced": resource.namespaced,
                "kind": resource.kind, "verbs": verbs, "shortNames": list(resource.short_names)}
        extra = []
        if resource.status_subresource:
            extra.append({"name": f"{resource.plural}/status", "singularName": "", "namespaced": resource.namespaced,
                          "kind": resource.kind, "verbs": ["get", "patch", "update"]})
        if resource.plural == "pods":
            extra.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                          "verbs": ["get"]})
        return [main, *extra]

    # -- resources -----------------------------------------------------------------------------------------
    def _resource(self, route: _Route, request: Request, query: dict[str, str], body: Any) -> None:
        standin, resource = self.server.standin, route.resource
        store, namespace = standin.store, route.namespace or ""
        dry_run = query.get("dryRun") == "All"
        if route.subresource not in ("", "status", "log") or (route.subresource == "log" and resource.plural != "pods"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if resource.namespaced and route.name and route.namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = request.verb
        if verb == "log":
            return self._log(namespace, route.name or "", query)
        if verb == "get":
            return self._send_json(200, store.get(resource, namespace, route.name or ""))
        if verb in ("list", "watch", "deletecollection"):
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"))

            def matches(obj: Obj) -> bool:
                return labels(obj.get("metadata", {}).get("labels") or {}) and fields(obj)
            if verb == "watch":
                return self._watch(resource, route.namespace, matches, query)
            items, rv = store.list(resource, route.namespace, matches)
            if verb == "deletecollection":
                for item in items:
                    meta = item["metadata"]
                    with contextlib.suppress(ApiError):
                        store.delete(resource, meta.get("namespace", ""), meta["name"],
                                     (body or {}).get("propagationPolicy") or query.get("propagationPolicy"),
                                     _by_qualified, dry_run=dry_run)
                return self._send_json(200, _success(resource, ""))
            for item in items:  # the real server leaves type information to the list
                item.pop("apiVersion", None)
                item.pop("kind", None)
            return self._send_json(200, {"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                                         "metadata": {"resourceVersion": str(rv)}, "items": items})
        if verb == "create":
            if route.name or not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "create takes an object body on the collection path")
            self._check_identity(resource, route, body)
            return self._send_json(201, store.create(resource, namespace, body, dry_run=dry_run))
        name = route.name or ""
        if verb == "update":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "update takes an object body")
            self._check_identity(resource, route, body)
            if body.get("metadata", {}).get("name") != name:
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            return self._send_json(200, store.update(resource, namespace, name, lambda _old: copy.deepcopy(body),
                                                     subresource=route.subresource, dry_run=dry_run))
        if verb == "patch":
            content_type = self.headers.get("Content-Type", "")
            return self._send_json(200, store.patch(resource, namespace, name, content_type, body,
                                                    subresource=route.subresource, dry_run=dry_run))
        if verb == "delete":
            policy = (body or {}).get("propagationPolicy") or query.get("propagationPolicy")
            gone = store.delete(resource, namespace, name, policy, _by_qualified, dry_run=dry_run)
            if resource.plural == "pods":  # pods answer with the object, everything else with a Status
                return self._send_json(200, gone)
            return self._send_json(200, _success(resource, name, gone["metadata"].get("uid", "")))
        raise ApiError(405, "MethodNotAllowed", f"{self.command} is not supported here")

    @staticmethod
    def _check_identity(resource: Resource, route: _Route, body: Obj) -> None:
        if body.get("kind") not in (None, resource.kind) or body.get("apiVersion") not in (None, resource.api_version):
            raise ApiError(400, "BadRequest", f"the API version in the data ({body.get('apiVersion')}) and kind "
                           f"({body.get('kind')}) do not match {resource.api_version} {resource.kind}")
        body_ns = body.get("metadata", {}).get("namespace")
        if resource.namespaced and body_ns and body_ns != route.namespace:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                              "sent on the request")

    def _watch(self, resource: Resource, namespace: str | None, matches, query: dict[str, str]) -> None:  # noqa: ANN001
        standin, store = self.server.standin, self.server.standin.store
        timeout_s = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout_s
        wanted_rv = query.get("resourceVersion") or "0"
        if not wanted_rv.isdigit():
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {wanted_rv!r}")
        generation = standin._watch_generation
        self._start_stream("application/json")
        standin._watch_opened(+1)
        try:
            with store.changed:
                if wanted_rv == "0":
                    current, last_rv = store.list(resource, namespace, matches)
                    opening = [{"type": "ADDED", "object": obj} for obj in current]
                elif int(wanted_rv) < store.compacted_rv:
                    opening = [{"type": "ERROR", "object": ApiError(
                        410, "Expired", f"too old resource version: {wanted_rv} ({store.compacted_rv})").status()}]
                    last_rv = None
                else:
                    opening, last_rv = [], int(wanted_rv)
            for event in opening:
                self._chunk(json.dumps(event).encode() + b"\n")
            while last_rv is not None:
                with store.changed:
                    events = [e for e in store.events_after(last_rv)
                              if e.resource == resource.qualified and namespace in (None, e.namespace)]
                    if standin._watch_generation != generation or standin._stopping:
                        break
                    if not events:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or self._client_gone():
                            break
                        store.changed.wait(min(remaining, 0.5))
                        continue
                for event in events:
                    last_rv = event.rv
                    if (kind := _event_type(event, matches)) is not None:
                        self._chunk(json.dumps({"type": kind, "object": event.obj}).encode() + b"\n")
            if standin._watch_generation != generation or standin._stopping:
                # A dropped connection, as when the real server restarts: no clean end of the stream.
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._chunk(b"")
        finally:
            standin._watch_opened(-1)

    def _log(self, namespace: str, name: str, query: dict[str, str]) -> None:
        store = self.server.standin.store
        pods = lookup("pods")
        store.get(pods, namespace, name)  # 404 for an unknown pod
        with store.changed:
            text = store.logs.get((namespace, name), "")
        if query.get("tailLines"):
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(query["tailLines"]):]) if int(query["tailLines"]) else ""
        if query.get("follow") not in ("true", "1"):
            return self._send_text(200, text)
        self._start_stream("text/plain")
        sent = len(store.logs.get((namespace, name), ""))
        if text:
            self._chunk(text.encode())
        standin = self.server.standin
        while not standin._stopping:
            with store.changed:
                pod = store.objects.get((pods.qualified, namespace, name))
                current = store.logs.get((namespace, name), "")
                if len(current) == sent:
                    if pod is None or pod.get("status", {}).get("phase") in _TERMINAL_PHASES or self._client_gone():
                        break
                    store.changed.wait(0.5)
                    continue
            self._chunk(current[sent:].encode())
            sent = len(current)
        self._chunk(b"")


def _by_qualified(qualified: str) -> Resource:
    return next(r for r in RESOURCES if r.qualified == qualified)


def _success(resource: Resource, name: str, uid: str = "") -> Obj:
    details = {"name": name, "group": resource.group, "kind": resource.plural}
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive client connections must not hold up the test's teardown
    standin: "StandinApiServer"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _conditions(conditions: list[dict]) -> list[dict]:
    stamped = []
    for condition in conditions:
        full = {"status": "True", "lastProbeTime": now_rfc3339(), "lastTransitionTime": now_rfc3339(), **condition}
        stamped.append(full)
    return stamped


class StandinApiServer:
    """The running stand-in: where it listens, a client for it, and the helpers tests use to act as the cluster.

    Helpers name types the way `lookup()` does: plural (`jobs`), kind (`Job`), `rayjobs.ray.io` or short name.
    They act as the cluster's controllers, so they may set `status` directly and bypass the API's rules.
    """

    def __init__(self, token: str = "standin-token") -> None:
        self.token = token
        self.store = Store()
        self._requests: list[Request] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._watch_generation = 0
        self._open_watches = 0
        self._stopping = False
        self._http = _HttpServer(("127.0.0.1", 0), _Handler)
        self._http.standin = self
        self._thread = threading.Thread(target=self._http.serve_forever, name="kube-apiserver-standin", daemon=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="kube-standin-")
        self.kubeconfig_path = Path(self._tmp.name) / "kubeconfig"
        self.kubeconfig_path.write_text(self.kubeconfig())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def kubeconfig(self, namespace: str = "default") -> str:
        """A kubeconfig whose context `standin` points at this server with its token."""
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
            "clusters": [{"name": CONTEXT, "cluster": {"server": self.url}}],
            "users": [{"name": CONTEXT, "user": {"token": self.token}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT,
                                                       "namespace": namespace}}],
        }, indent=1)

    def start(self) -> "StandinApiServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        with self.store.changed:
            self.store.changed.notify_all()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=10)
        self._tmp.cleanup()

    def api_client(self):  # noqa: ANN201 - kubernetes.client.ApiClient, imported lazily
        """A `kubernetes.client.ApiClient` configured from this server's kubeconfig."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig_path), context=CONTEXT)

    # -- what the server saw ---------------------------------------------------------------------------------
    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def open_watches(self) -> int:
        """Watch streams open right now."""
        with self._lock:
            return self._open_watches

    def _log(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _watch_opened(self, delta: int) -> None:
        with self._lock:
            self._open_watches += delta

    # -- faults ----------------------------------------------------------------------------------------------
    def inject_failure(self, code: int = 500, *, verb: str | None = None, resource: str | None = None,
                       times: int = 1) -> None:
        """Answer the next `times` requests matching verb/resource (None: any) with `code` and a Status."""
        with self._lock:
            self._failures.append(_Failure(code, verb, resource, times))

    def _take_failure(self, request: Request) -> int | None:
        with self._lock:
            for failure in self._failures:
                if failure.verb in (None, request.verb) and failure.resource in (None, request.resource):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    return failure.code
        return None

    def break_watches(self) -> None:
        """Drop every open watch connection without a clean end, as a restarting API server does."""
        with self.store.changed:
            self._watch_generation += 1
            self.store.changed.notify_all()

    def compact(self) -> int:
        """Forget the event history; a watch from any resourceVersion handed out so far gets 410 Gone."""
        return self.store.compact()

    # -- objects, as the cluster -----------------------------------------------------------------------------
    def objects(self, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        labels = parse_label_selector(label_selector)
        items, _ = self.store.list(lookup(kind), namespace,
                                   lambda obj: labels(obj.get("metadata", {}).get("labels") or {}))
        return items

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return self.store.get(lookup(kind), namespace, name)
        except ApiError:
            return None

    def put(self, obj: Obj) -> Obj:
        """Create or replace `obj` as it is, status included (apiVersion and kind say which type)."""
        resource = for_object(obj)
        namespace = obj.get("metadata", {}).get("namespace", "default") if resource.namespaced else ""
        name = obj["metadata"]["name"]
        if (resource.qualified, namespace, name) in self.store.objects:
            return self.store.update(resource, namespace, name, lambda _old: copy.deepcopy(obj), as_cluster=True)
        return self.store.create(resource, namespace, obj, keep_status=True)

    def patch(self, kind: str, namespace: str, name: str, patch: Obj) -> Obj:
        """Merge-patch an object as the cluster (status included)."""
        from tests.kube.standin_selectors import merge_patch

        return self.store.update(lookup(kind), namespace, name, lambda obj: merge_patch(obj, patch), as_cluster=True)

    def delete(self, kind: str, namespace: str, name: str, propagation: str = "Background") -> None:
        self.store.delete(lookup(kind), namespace, name, propagation, _by_qualified)

    def set_status(self, kind: str, namespace: str, name: str, **fields: Any) -> Obj:
        """Merge `fields` (snake_case or camelCase) into the object's status; `conditions` get timestamps."""
        status = {_camel(key): value for key, value in fields.items()}
        if "conditions" in status:
            status["conditions"] = _conditions(status["conditions"])
        return self.patch(kind, namespace, name, {"status": status})

    def set_job_status(self, namespace: str, name: str, **fields: Any) -> Obj:
        """e.g. `set_job_status("grid", "stage-1", active=1, start_time="...")`, or failed=/succeeded=/conditions=."""
        return self.set_status("jobs", namespace, name, **fields)

    def set_rayjob_status(self, namespace: str, name: str, **fields: Any) -> Obj:
        """e.g. `set_rayjob_status("grid", "rl", job_status="FAILED", job_deployment_status="Failed", message=..)`."""
        return self.set_status("rayjobs", namespace, name, **fields)

    def complete_job(self, namespace: str, name: str) -> Obj:
        """The Job succeeded, as the Job controller reports it (its pods end Succeeded)."""
        self._end_pods(namespace, name, "Succeeded")
        return self.set_job_status(namespace, name, active=0, succeeded=1, completion_time=now_rfc3339(),
                                   conditions=[{"type": "SuccessCriteriaMet", "reason": "CompletionsReached",
                                                "message": "Reached expected number of succeeded pods"},
                                               {"type": "Complete", "reason": "CompletionsReached",
                                                "message": "Reached expected number of succeeded pods"}])

    def fail_job(self, namespace: str, name: str, reason: str = "BackoffLimitExceeded",
                 message: str = "Job has reached the specified backoff limit") -> Obj:
        """The Job failed, as the Job controller reports it (its pods end Failed)."""
        failed = len(self._end_pods(namespace, name, "Failed")) or 1
        return self.set_job_status(namespace, name, active=0, failed=failed,
                                   conditions=[{"type": "FailureTarget", "reason": reason, "message": message},
                                               {"type": "Failed", "reason": reason, "message": message}])

    def _end_pods(self, namespace: str, job_name: str, phase: str) -> list[Obj]:
        pods = self.objects("pods", namespace, f"batch.kubernetes.io/job-name={job_name}")
        for pod in pods:
            self.set_pod_phase(namespace, pod["metadata"]["name"], phase)
        return pods

    def add_pod(self, namespace: str, name: str, *, labels: dict[str, str] | None = None, phase: str = "Running",
                ip: str = "127.0.0.1", owner: Obj | None = None, log: str | None = None) -> Obj:
        meta: Obj = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
        if owner is not None:
            meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                        "controller": True, "blockOwnerDeletion": True}]
        pod = self.put({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                        "spec": {"containers": [{"name": "main", "image": "standin"}]},
                        "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}]}})
        if log is not None:
            self.set_pod_log(namespace, name, log)
        return pod

    def add_pod_for_job(self, namespace: str, job_name: str, *, name: str | None = None, phase: str = "Running",
                        ip: str = "127.0.0.1", log: str | None = None) -> Obj:
        """A pod as the Job controller makes it: the job's template labels and an ownerReference to the job."""
        job = self.get("jobs", namespace, job_name)
        if job is None:
            raise not_found(lookup("jobs"), job_name)
        labels = job["spec"]["template"].get("metadata", {}).get("labels", {})
        count = len(self.objects("pods", namespace, f"batch.kubernetes.io/job-name={job_name}"))
        pod_name = name or f"{job_name}-{count}{job['metadata']['uid'][:4]}"
        return self.add_pod(namespace, pod_name, labels=labels, phase=phase, ip=ip, owner=job, log=log)

    def set_pod_phase(self, namespace: str, name: str, phase: str) -> Obj:
        return self.patch("pods", namespace, name, {"status": {"phase": phase}})

    def set_pod_log(self, namespace: str, pod: str, text: str) -> None:
        with self.store.changed:
            self.store.logs[(namespace, pod)] = text
            self.store.changed.notify_all()

    def append_pod_log(self, namespace: str, pod: str, text: str) -> None:
        with self.store.changed:
            self.store.logs[(namespace, pod)] = self.store.logs.get((namespace, pod), "") + text
            self.store.changed.notify_all()

    def put_endpoint_slice(self, namespace: str, name: str, service: str, ports: dict[str, int],
                           endpoints: list[tuple[str, bool | None]], address_type: str = "IPv4") -> Obj:
        """An EndpointSlice of `service` as the EndpointSlice controller writes it; `endpoints` are
        (address, ready) pairs, ready None leaving the condition out."""
        entries = []
        for address, ready in endpoints:
            conditions = {} if ready is None else {"ready": ready, "serving": ready, "terminating": False}
            entries.append({"addresses": [address], "conditions": conditions})
        return self.put({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": address_type,
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"} for port_name, port in ports.items()],
            "endpoints": entries,
        })


@contextlib.contextmanager
def running_apiserver(token: str = "standin-token") -> Iterator[StandinApiServer]:
    """A stand-in API server on a free 127.0.0.1 port for the duration of the block."""
    server = StandinApiServer(token).start()
    try:
        yield server
    finally:
        server.stop()
