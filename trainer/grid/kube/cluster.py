"""The Kubernetes API as the grid backend uses it: a client from a kubeconfig (or the pod's service account), every
call with a timeout, and API failures turned into one-line errors that say what to fix.

Only the objects the runner makes are touched: ConfigMaps, Jobs, RayJobs (custom resources of KubeRay), their pods
(read, and their logs); k8s/components/grid-runner grants exactly that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from trainer.grid.kube import validation

Doc = dict[str, Any]
RAY = ("ray.io", "v1", "rayjobs")
KINDS = ("Job", "RayJob", "ConfigMap", "Pod")


class ClusterError(RuntimeError):
    """The API server cannot be used as asked; the message says why and what to check."""


class AlreadyExists(ClusterError):
    """409: an object of that name is already there."""


@dataclass(frozen=True, slots=True)
class Connection:
    kubeconfig: str | None = None  # None: $KUBECONFIG or ~/.kube/config, else the pod's service account
    context: str | None = None
    namespace: str = "shiftgym"
    timeout_s: float = 30.0  # every request; a watch's own stream is renewed well within it


def _reason(err: Exception) -> str:
    body = getattr(err, "body", None)
    try:
        message = json.loads(body)["message"] if body else ""
    except (ValueError, KeyError, TypeError):
        message = ""
    return message or str(getattr(err, "reason", "") or err).strip()


def describe(err: Exception, action: str, where: str = "") -> ClusterError:
    """An API failure as one line naming the action, the server's answer and the fix."""
    from kubernetes.client.exceptions import ApiException

    at = f" at {where}" if where else ""
    if isinstance(err, ApiException):
        status = err.status
        if status == 401:
            return ClusterError(f"{action}: the API server{at} refused the credentials (401 Unauthorized): refresh "
                                "the kubeconfig's token or pick another --context")
        if status == 403:
            return ClusterError(f"{action}: forbidden (403): {_reason(err)}. The runner's identity needs the Role in "
                                "k8s/components/grid-runner bound in this namespace")
        if status == 409:
            return AlreadyExists(f"{action}: already exists")
        if status == 404 and "rayjobs" in action:
            return ClusterError(f"{action}: the API server{at} does not serve ray.io/v1 RayJobs (404): install the "
                                "KubeRay operator or use --overlay gpu-job")
        return ClusterError(f"{action}: the API server{at} answered {status} {err.reason}: {_reason(err)}")
    return ClusterError(f"{action}: cannot reach the API server{at}: {type(err).__name__}: {err}; check the "
                        "kubeconfig's server address, the network and --request-timeout")


class Cluster:
    """One namespace of one cluster, through the official client (blocking calls: run them in threads)."""

    def __init__(self, connection: Connection) -> None:
        import yaml
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        self.connection = connection
        self.namespace = connection.namespace
        try:
            if connection.kubeconfig is None and connection.context is None and _in_cluster():
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                self.api = client.ApiClient(configuration)
            else:
                self.api = config.new_client_from_config(config_file=connection.kubeconfig,
                                                         context=connection.context, persist_config=False)
        except ConfigException as err:
            source = connection.kubeconfig or "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
            raise ClusterError(f"cannot use {source}" + (f" with context {connection.context!r}"
                               if connection.context else "") + f": {err}") from None
        except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError) as err:
            problem = str(err).replace("\n", " ")
            raise ClusterError(f"cannot read the kubeconfig {connection.kubeconfig}: {problem}") from None
        self.api.configuration.retries = 1  # an unreachable server fails within about two timeouts, not minutes
        self.server = self.api.configuration.host
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    @property
    def timeout(self) -> tuple[float, float]:
        return (min(self.connection.timeout_s, 10.0), self.connection.timeout_s)

    def call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs) with the request timeout; failures become ClusterError."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, _request_timeout=self.timeout, **kwargs)
        except (ApiException, HTTPError, OSError) as err:
            raise describe(err, action, self.server) from None

    def check_access(self, rayjobs: bool) -> None:
        """One cheap read of each kind the run needs, so a wrong server, token or Role fails before any work."""
        self.call(f"list jobs in namespace {self.namespace}", self.batch.list_namespaced_job, self.namespace,
                  limit=1)
        self.call(f"list pods in namespace {self.namespace}", self.core.list_namespaced_pod, self.namespace,
                  limit=1)
        if rayjobs:
            self.call(f"list rayjobs in namespace {self.namespace}", self.custom.list_namespaced_custom_object,
                      *RAY[:2], self.namespace, RAY[2], limit=1)

    # --- objects ---------------------------------------------------------------------------------------

    def create(self, doc: Doc) -> Doc:
        """Validate `doc` against its schemas, then create it; returns the object the server stored."""
        validation.check(doc)
        kind, name = doc["kind"], doc["metadata"]["name"]
        action = f"create {kind} {name} in namespace {self.namespace}"
        if kind == "ConfigMap":
            made = self.call(action, self.core.create_namespaced_config_map, self.namespace, doc)
        elif kind == "Job":
            made = self.call(action, self.batch.create_namespaced_job, self.namespace, doc)
        elif kind == "RayJob":
            return self.call(action.replace("RayJob", "rayjobs"), self.custom.create_namespaced_custom_object,
                             *RAY[:2], self.namespace, RAY[2], doc)
        else:
            raise ValueError(f"the grid backend does not create {kind}")
        return self.api.sanitize_for_serialization(made)

    def list(self, kind: str, selector: str) -> tuple[list[Doc], str]:
        """The objects of a kind matching a label selector, as plain dicts, and the list's resourceVersion."""
        action = f"list {kind.lower()}s in namespace {self.namespace}"
        if kind == "RayJob":
            found = self.call(action, self.custom.list_namespaced_custom_object, *RAY[:2], self.namespace, RAY[2],
                              label_selector=selector)
            return found.get("items", []), found.get("metadata", {}).get("resourceVersion", "")
        found = self.call(action, self.lister(kind), self.namespace, label_selector=selector)
        plain = self.api.sanitize_for_serialization(found)
        return plain.get("items", []), plain.get("metadata", {}).get("resourceVersion", "")

    def lister(self, kind: str) -> Callable[..., Any]:
        return {"Job": self.batch.list_namespaced_job, "ConfigMap": self.core.list_namespaced_config_map,
                "Pod": self.core.list_namespaced_pod}[kind]

    def delete(self, kind: str, name: str) -> bool:
        """Delete one object and (in the background) what it owns, its pods included; False if it was gone."""
        from kubernetes.client import V1DeleteOptions
        from kubernetes.client.exceptions import ApiException

        options = V1DeleteOptions(propagation_policy="Background")
        fn: Callable[..., Any]
        args: tuple[Any, ...]
        if kind == "RayJob":
            fn, args = self.custom.delete_namespaced_custom_object, (*RAY[:2], self.namespace, RAY[2], name)
        else:
            fn = {"Job": self.batch.delete_namespaced_job, "ConfigMap": self.core.delete_namespaced_config_map,
                  "Pod": self.core.delete_namespaced_pod}[kind]
            args = (name, self.namespace)
        try:
            fn(*args, body=options, _request_timeout=self.timeout)
        except ApiException as err:
            if err.status == 404:
                return False
            raise describe(err, f"delete {kind} {name}", self.server) from None
        except OSError as err:
            raise describe(err, f"delete {kind} {name}", self.server) from None
        return True

    def log(self, pod: str, tail_bytes: int | None = None) -> str:
        kwargs = {"limit_bytes": tail_bytes} if tail_bytes else {}
        return self.call(f"read the log of pod {pod}", self.core.read_namespaced_pod_log, pod, self.namespace,
                         **kwargs)

    def close(self) -> None:
        self.api.close()


def _in_cluster() -> bool:
    import os

    from kubernetes.config.kube_config import KUBE_CONFIG_DEFAULT_LOCATION

    return "KUBERNETES_SERVICE_HOST" in os.environ and not os.environ.get("KUBECONFIG") and not os.path.exists(
        os.path.expanduser(KUBE_CONFIG_DEFAULT_LOCATION))
