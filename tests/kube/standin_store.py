"""The object store behind the stand-in API server: objects, resource versions, the event history watches read.

Part of the stand-in API server (tests/kube_apiserver.py). One lock (a Condition) guards everything; watchers
wait on it and wake when an event is recorded.
"""

from __future__ import annotations

import bisect
import copy
import datetime
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from tests.kube.standin_resources import Resource
from tests.kube.standin_selectors import Obj, SelectorError, json_patch, merge_patch

Key = tuple[str, str, str]  # (resource qualified name, namespace or "", name)


class ApiError(Exception):
    """An error the server answers with a `Status` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.reason, "details": self.details, "code": self.code}


def _details(resource: Resource, name: str) -> dict:
    return {"name": name, "group": resource.group, "kind": resource.plural}


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found', _details(resource, name))


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    rv: int
    resource: str
    namespace: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj  # the object after the change (the last state for DELETED)
    old: Obj | None  # the object before the change, to tell a watch with a selector that it left or entered


@dataclass
class Store:
    objects: dict[Key, Obj] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    rv: int = 0
    compacted_rv: int = 0  # watches asking for a resourceVersion below this get 410 Gone
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    # -- reading ---------------------------------------------------------------------------------------------
    def get(self, resource: Resource, namespace: str, name: str) -> Obj:
        with self.changed:
            obj = self.objects.get((resource.qualified, namespace, name))
            if obj is None:
                raise not_found(resource, name)
            return copy.deepcopy(obj)

    def list(self, resource: Resource, namespace: str | None, matches: Callable[[Obj], bool]) -> tuple[list[Obj], int]:
        with self.changed:
            items = [copy.deepcopy(obj) for (qualified, ns, _), obj in sorted(self.objects.items())
                     if qualified == resource.qualified and namespace in (None, ns) and matches(obj)]
            return items, self.rv

    def events_after(self, rv: int) -> list[Event]:
        """Events with a resourceVersion above `rv` (caller holds `changed`)."""
        start = bisect.bisect_right([event.rv for event in self.events], rv)
        return self.events[start:]

    # -- writing ---------------------------------------------------------------------------------------------
    def _record(self, resource: Resource, namespace: str, kind: str, obj: Obj, old: Obj | None) -> Obj:
        self.rv += 1
        if kind != "DELETED":
            obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append(Event(self.rv, resource.qualified, namespace, kind, copy.deepcopy(obj), old))
        self.changed.notify_all()
        return copy.deepcopy(obj)

    def create(self, resource: Resource, namespace: str, body: Obj, *, keep_status: bool = False,
               dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{resource.kind}.{resource.group or 'core'} is invalid: metadata.name: "
                                           "Required value: name or generateName is required",
                           _details(resource, ""))
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        if resource.namespaced:
            meta["namespace"] = namespace
        for stale in ("resourceVersion", "deletionTimestamp"):
            meta.pop(stale, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
        if resource.status_subresource and not keep_status:
            obj.pop("status", None)
        _default(resource, obj)
        with self.changed:
            key = (resource.qualified, namespace, name)
            if key in self.objects:
                raise ApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists',
                               _details(resource, name))
            if dry_run:
                return obj
            self.objects[key] = obj
            return self._record(resource, namespace, "ADDED", obj, None)

    def update(self, resource: Resource, namespace: str, name: str, change: Callable[[Obj], Obj], *,
               subresource: str = "", as_cluster: bool = False, dry_run: bool = False) -> Obj:
        """Apply `change` to the stored object; the API's rules on status, identity and generation hold."""
        with self.changed:
            key = (resource.qualified, namespace, name)
            old = self.objects.get(key)
            if old is None:
                raise not_found(resource, name)
            new = change(copy.deepcopy(old))
            expected = new.get("metadata", {}).get("resourceVersion")
            if expected and expected != old["metadata"]["resourceVersion"] and not as_cluster:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource.qualified} "{name}": '
                               "the object has been modified; please apply your changes to the latest version "
                               "and try again", _details(resource, name))
            if not as_cluster and resource.status_subresource:
                if subresource == "status":
                    new = {**old, "status": new.get("status", {})}
                else:
                    new = {**new, "status": old["status"]} if "status" in old else {
                        k: v for k, v in new.items() if k != "status"}
            new["apiVersion"], new["kind"] = resource.api_version, resource.kind
            meta = new.setdefault("metadata", {})
            for kept in ("name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion",
                         "deletionTimestamp"):
                if kept in old["metadata"]:
                    meta[kept] = old["metadata"][kept]
                else:
                    meta.pop(kept, None)
            if _spec(new) != _spec(old):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
            if dry_run:
                return new
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                return self._remove(resource, key, old)
            self.objects[key] = new
            return self._record(resource, namespace, "MODIFIED", new, old)

    def patch(self, resource: Resource, namespace: str, name: str, content_type: str, body: Any, *,
              subresource: str = "", dry_run: bool = False) -> Obj:
        kind = content_type.split(";")[0].strip()
        if kind == "application/strategic-merge-patch+json" and not resource.builtin:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           "accepted media types include: application/json-patch+json, "
                           "application/merge-patch+json, application/apply-patch+yaml")
        if kind == "application/json-patch+json":
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest", "a JSON Patch must be a list of operations")

            def change(obj: Obj) -> Obj:
                try:
                    return json_patch(obj, body)
                except SelectorError as err:
                    raise ApiError(422, "Invalid", str(err)) from err
        elif kind in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                      "application/apply-patch+yaml"):
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")

            def change(obj: Obj) -> Obj:
                return merge_patch(obj, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           "accepted media types include: application/json-patch+json, "
                           "application/merge-patch+json, application/apply-patch+yaml")
        if kind == "application/apply-patch+yaml":  # server-side apply creates what is missing
            with self.changed:
                if (resource.qualified, namespace, name) not in self.objects:
                    return self.create(resource, namespace, {**body, "metadata": {**body.get("metadata", {}),
                                                                                  "name": name}}, dry_run=dry_run)
        return self.update(resource, namespace, name, change, subresource=subresource, dry_run=dry_run)

    def delete(self, resource: Resource, namespace: str, name: str, propagation: str | None,
               resolve: Callable[[str], Resource], *, dry_run: bool = False) -> Obj:
        propagation = propagation or resource.default_propagation
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise ApiError(400, "BadRequest", f"Unsupported propagation policy {propagation!r}: "
                                              "must be Orphan, Background or Foreground")
        with self.changed:
            key = (resource.qualified, namespace, name)
            obj = self.objects.get(key)
            if obj is None:
                raise not_found(resource, name)
            if dry_run:
                return copy.deepcopy(obj)
            uid = obj["metadata"]["uid"]
            if propagation == "Foreground":  # dependents go first, then the owner
                self._delete_dependents(uid, resolve)
            if obj["metadata"].get("finalizers"):
                if not obj["metadata"].get("deletionTimestamp"):
                    marked = copy.deepcopy(obj)
                    marked["metadata"]["deletionTimestamp"] = now_rfc3339()
                    self.objects[key] = marked
                    self._record(resource, namespace, "MODIFIED", marked, obj)
                result = copy.deepcopy(self.objects[key])
            else:
                result = self._remove(resource, key, obj)
            if propagation == "Background":
                self._delete_dependents(uid, resolve)
            elif propagation == "Orphan":
                self._orphan_dependents(uid, resolve)
            return result

    def _remove(self, resource: Resource, key: Key, obj: Obj) -> Obj:
        del self.objects[key]
        if resource.plural == "pods":
            self.logs.pop((key[1], key[2]), None)
        return self._record(resource, key[1], "DELETED", copy.deepcopy(obj), obj)

    def _owned_by(self, uid: str) -> list[Key]:
        return [key for key, obj in self.objects.items()
                if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences", []))]

    def _delete_dependents(self, uid: str, resolve: Callable[[str], Resource]) -> None:
        for key in self._owned_by(uid):
            if key in self.objects:
                self.delete(resolve(key[0]), key[1], key[2], "Background", resolve)

    def _orphan_dependents(self, uid: str, resolve: Callable[[str], Resource]) -> None:
        for key in self._owned_by(uid):
            def drop_owner(obj: Obj) -> Obj:
                refs = [ref for ref in obj["metadata"]["ownerReferences"] if ref.get("uid") != uid]
                obj["metadata"]["ownerReferences"] = refs
                return obj
            self.update(resolve(key[0]), key[1], key[2], drop_owner, as_cluster=True)

    def compact(self) -> int:
        """Forget the event history: watches from any resourceVersion seen so far get 410 Gone."""
        with self.changed:
            self.compacted_rv = self.rv + 1
            self.rv += 1
            self.events.clear()
            return self.compacted_rv


def _spec(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _default(resource: Resource, obj: Obj) -> None:
    """The few defaults the real server adds that clients read back."""
    if resource.qualified == "jobs.batch":
        uid, name = obj["metadata"]["uid"], obj["metadata"]["name"]
        spec = obj.setdefault("spec", {})
        for default_key, value in (("backoffLimit", 6), ("completions", 1), ("parallelism", 1),
                                   ("completionMode", "NonIndexed"), ("suspend", False)):
            spec.setdefault(default_key, value)
        labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                  "controller-uid": uid, "job-name": name}
        template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
        template_meta["labels"] = {**template_meta.get("labels", {}), **labels}
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    if resource.plural == "pods":
        obj.setdefault("status", {}).setdefault("phase", "Pending")
