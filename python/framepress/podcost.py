"""Keep this pod's scale-down annotations current, so that Kubernetes removes idle workers first.

- `controller.kubernetes.io/pod-deletion-cost`: when a Deployment scales down, its ReplicaSet
  deletes the pods with the lowest cost first. Busy workers get a high cost, idle ones 0.
- `cluster-autoscaler.kubernetes.io/safe-to-evict`: the cluster-autoscaler does not remove a
  node that runs a pod marked "false", so a node whose worker is mid-task is not drained.

The worker calls `busy()` when it takes a task and `idle()` when the task is settled. Outside
Kubernetes (no POD_NAME/POD_NAMESPACE from the downward API, or no service-account token)
`from_environment()` returns None and nothing is patched. Errors are logged, never raised: a
missed annotation only makes a scale-down less choosy.

Needs RBAC `patch` on pods in the namespace (k8s/common/rbac.yaml). The API server sees one write
per task start and end, which is fine for tasks of seconds to hours (Kubernetes advises against
updating the cost at a high rate).
"""
from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import urllib.request
from pathlib import Path
from typing import Mapping

log = logging.getLogger(__name__)

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
BUSY_COST = 1000
IDLE_COST = 0
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class PodAnnotator:
    def __init__(self, api_url: str, namespace: str, pod: str, token_file: str,
                 ca_file: str | None = None, timeout_s: float = 3.0):
        self.url = f"{api_url.rstrip('/')}/api/v1/namespaces/{namespace}/pods/{pod}"
        self.token_file = token_file
        self.timeout_s = timeout_s
        self.ca_file = ca_file
        self._https = api_url.startswith("https")
        self._last: bool | None = None
        self._failing = False
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None,
                         sa_dir: str = SERVICE_ACCOUNT_DIR) -> "PodAnnotator | None":
        env = os.environ if env is None else env
        pod, namespace = env.get("POD_NAME"), env.get("POD_NAMESPACE")
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
        token = Path(sa_dir, "token")
        if not (pod and namespace and host and token.is_file()):
            return None
        host = f"[{host}]" if ":" in host else host  # IPv6 service address
        return cls(f"https://{host}:{port}", namespace, pod, str(token), str(Path(sa_dir, "ca.crt")))

    def busy(self) -> bool:
        return self._set(True)

    def idle(self) -> bool:
        return self._set(False)

    def _set(self, busy: bool) -> bool:
        """Patch the annotations if they change; True when the pod carries the wanted values."""
        with self._lock:
            if self._last == busy:
                return True
            body = json.dumps({"metadata": {"annotations": {
                DELETION_COST: str(BUSY_COST if busy else IDLE_COST),
                SAFE_TO_EVICT: "false" if busy else "true",
            }}}).encode()
            try:
                token = Path(self.token_file).read_text().strip()  # rotated by the kubelet: read each time
                req = urllib.request.Request(self.url, data=body, method="PATCH", headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/merge-patch+json",
                    "Accept": "application/json",
                })
                # Built per call: the CA bundle can be rotated too, and calls are rare.
                context = ssl.create_default_context(cafile=self.ca_file) if self._https else None
                with urllib.request.urlopen(req, timeout=self.timeout_s, context=context) as resp:
                    resp.read()
            except Exception as exc:  # never fatal: the task matters more than the annotation
                if not self._failing:
                    log.warning("could not annotate the pod as %s: %s", "busy" if busy else "idle", exc)
                self._failing = True
                self._last = None
                return False
            if self._failing:
                log.info("pod annotations are being updated again")
            self._failing = False
            self._last = busy
            return True


def from_environment() -> PodAnnotator | None:
    """The annotator for this pod, or None outside Kubernetes."""
    return PodAnnotator.from_environment()
