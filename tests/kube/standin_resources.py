"""The resource types the stand-in API server serves, with what the real server knows about each.

Part of the stand-in API server (tests/kube_apiserver.py). To serve another type, add one `Resource` line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    # Writes to the main resource keep the stored status and writes to /status touch only the status, as the
    # real server does for types with a status subresource.
    status_subresource: bool = False
    # Custom resources (CRDs) refuse strategic merge patches with 415, as the real server does.
    builtin: bool = True
    # batch/v1 Jobs default to orphaning their pods when deleted through the API (kept for compatibility by
    # the real server); everything else cascades in the background.
    default_propagation: str = "Background"
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How the real server names the type in messages: `jobs.batch`, `pods`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, status_subresource=True, short_names=("ns",)),
    Resource("", "v1", "pods", "Pod", status_subresource=True, short_names=("po",)),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "services", "Service", status_subresource=True, short_names=("svc",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", status_subresource=True,
             short_names=("pvc",)),
    Resource("", "v1", "events", "Event", short_names=("ev",)),
    Resource("batch", "v1", "jobs", "Job", status_subresource=True, default_propagation="Orphan"),
    Resource("apps", "v1", "deployments", "Deployment", status_subresource=True, short_names=("deploy",)),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    Resource("ray.io", "v1", "rayjobs", "RayJob", status_subresource=True, builtin=False),
    Resource("ray.io", "v1", "rayclusters", "RayCluster", status_subresource=True, builtin=False),
)


def by_path(group: str, version: str, plural: str) -> Resource | None:
    for resource in RESOURCES:
        if (resource.group, resource.version, resource.plural) == (group, version, plural):
            return resource
    return None


def lookup(name: str) -> Resource:
    """A resource by plural (`jobs`), kind (`Job`), `plural.group` (`rayjobs.ray.io`) or short name (`cm`)."""
    for resource in RESOURCES:
        if name in (resource.plural, resource.kind, resource.qualified, resource.singular) + resource.short_names:
            return resource
    known = ", ".join(sorted(r.qualified for r in RESOURCES))
    raise KeyError(f"the stand-in API server does not serve {name!r} (it serves: {known})")


def for_object(obj: dict) -> Resource:
    """The resource of a full object, from its apiVersion and kind."""
    for resource in RESOURCES:
        if resource.api_version == obj.get("apiVersion") and resource.kind == obj.get("kind"):
            return resource
    raise KeyError(f"the stand-in API server does not serve {obj.get('apiVersion')}/{obj.get('kind')}")
