"""Keep the worker pods' scale-down annotations current, from the workers table.

- `controller.kubernetes.io/pod-deletion-cost`: when a Deployment scales down, its ReplicaSet
  deletes the pods with the lowest cost first. Pods whose worker holds a task get a high cost,
  idle ones 0.
- `cluster-autoscaler.kubernetes.io/safe-to-evict`: the cluster-autoscaler does not remove a
  node that runs a pod marked "false", so a node whose worker is mid-task is not drained.

The reaper deployment does this, not the workers: a worker decodes untrusted media and holds no
Kubernetes credentials. Each reaper round lists the worker pods (one GET), decides each pod's
cost from the workers and tasks tables, and patches only the pods whose annotations differ, so
the API server sees one write per task start and end (Kubernetes advises against updating the
cost at a high rate). A pod with no worker row yet (starting) counts as idle.

Outside Kubernetes (no service-account token, no API server address) `from_environment()`
returns None and nothing is done. API errors are logged, never raised: a missed annotation only
makes a scale-down less choosy. RBAC: get, list and patch pods in the namespace
(k8s/common/rbac.yaml).
"""
from __future__ import annotations

import json
import logging
import os
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from sqlalchemy import or_, select

from framepress.service.db import Database, Task, TaskStatus, Worker

log = logging.getLogger(__name__)

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
BUSY_COST = 1000
IDLE_COST = 0
WORKER_PODS = "app.kubernetes.io/name=framepress,app.kubernetes.io/component=worker"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
GONE_STATES = ("lost", "stopped")


def annotations(busy: bool) -> dict[str, str]:
    return {DELETION_COST: str(BUSY_COST if busy else IDLE_COST),
            SAFE_TO_EVICT: "false" if busy else "true"}


def busy_pods(db: Database) -> set[str]:
    """Pods whose worker holds a task: a running task's holder (set when it is taken) or the
    task its last heartbeat named. Workers that are lost or stopped hold nothing."""
    with db.session() as s:
        holding = select(Task.id).where(Task.worker_id == Worker.id,
                                        Task.status == TaskStatus.RUNNING).exists()
        return set(s.scalars(select(Worker.pod).distinct().where(
            Worker.pod.is_not(None), Worker.state.not_in(GONE_STATES),
            or_(Worker.current_task_id.is_not(None), holding))))


def changes(pods: Mapping[str, Mapping[str, str]], busy: set[str]) -> dict[str, dict[str, str]]:
    """The patch each pod needs: pod name -> annotations, for the pods whose values differ."""
    out = {}
    for pod, current in pods.items():
        wanted = annotations(pod in busy)
        if any(current.get(k) != v for k, v in wanted.items()):
            out[pod] = wanted
    return out


@dataclass
class KubeApi:
    """The few calls the pod-cost step makes, with the pod's own service-account token."""
    base_url: str
    namespace: str
    token_file: str
    ca_file: str | None = None
    timeout_s: float = 5.0

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None,
                         sa_dir: str = SERVICE_ACCOUNT_DIR) -> "KubeApi | None":
        env = os.environ if env is None else env
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
        token, ns_file = Path(sa_dir, "token"), Path(sa_dir, "namespace")
        namespace = env.get("POD_NAMESPACE") or (ns_file.read_text().strip() if ns_file.is_file() else "")
        if not (host and namespace and token.is_file()):
            return None
        host = f"[{host}]" if ":" in host else host  # IPv6 service address
        return cls(f"https://{host}:{port}", namespace, str(token), str(Path(sa_dir, "ca.crt")))

    def _request(self, method: str, path: str, body: dict | None = None,
                 content_type: str | None = None) -> urllib.request.Request:
        # The kubelet rotates the token: read it for every request.
        headers = {"Authorization": f"Bearer {Path(self.token_file).read_text().strip()}",
                   "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        return urllib.request.Request(f"{self.base_url.rstrip('/')}{path}", method=method, headers=headers,
                                      data=None if body is None else json.dumps(body).encode())

    def list_request(self, selector: str) -> urllib.request.Request:
        query = urllib.parse.urlencode({"labelSelector": selector})
        return self._request("GET", f"/api/v1/namespaces/{self.namespace}/pods?{query}")

    def patch_request(self, pod: str, values: Mapping[str, str]) -> urllib.request.Request:
        return self._request("PATCH", f"/api/v1/namespaces/{self.namespace}/pods/{pod}",
                             {"metadata": {"annotations": dict(values)}}, "application/merge-patch+json")

    def send(self, req: urllib.request.Request) -> dict:
        # A context per call: the CA bundle can be rotated too, and calls are few.
        context = ssl.create_default_context(cafile=self.ca_file) if req.full_url.startswith("https") else None
        with urllib.request.urlopen(req, timeout=self.timeout_s, context=context) as resp:
            return json.loads(resp.read() or b"{}")

    def worker_pods(self) -> dict[str, dict[str, str]]:
        """Live worker pods in the namespace: name -> annotations."""
        return live_pods(self.send(self.list_request(WORKER_PODS)))


def live_pods(pod_list: Mapping) -> dict[str, dict[str, str]]:
    """Name -> annotations of the pods in a PodList that have not finished."""
    return {p["metadata"]["name"]: p["metadata"].get("annotations") or {}
            for p in pod_list.get("items", [])
            if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")}


class PodCost:
    """One step of a reaper round: every worker pod's annotations set from the tables."""

    def __init__(self, db: Database, api: KubeApi):
        self.db, self.api = db, api
        self._failing = False

    def update(self) -> dict[str, dict[str, str]]:
        """Patch the pods whose annotations are out of date; returns the patches that were made."""
        done: dict[str, dict[str, str]] = {}
        try:
            todo = changes(self.api.worker_pods(), busy_pods(self.db))
            for pod, values in todo.items():
                self.api.send(self.api.patch_request(pod, values))
                done[pod] = values
        except Exception as exc:  # never fatal: the reaping matters more than the annotation
            if not self._failing:
                log.warning("could not update the worker pods' deletion cost: %r", exc)
            self._failing = True
            return done
        if self._failing:
            log.info("worker pods' deletion cost is being updated again")
        self._failing = False
        return done


def from_environment(db: Database) -> PodCost | None:
    """The pod-cost step for a reaper inside Kubernetes with a token mounted; None elsewhere."""
    api = KubeApi.from_environment()
    return PodCost(db, api) if api else None
