"""The pod annotator patches its own pod through the API (a local stand-in server here)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from framepress.podcost import DELETION_COST, SAFE_TO_EVICT, PodAnnotator

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def api():
    calls, state = [], {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append((self.path, self.headers["Content-Type"], self.headers["Authorization"], body))
            self.send_response(state["status"])
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls, state
    server.shutdown()
    server.server_close()


def test_busy_and_idle_patch_the_pod_once_each(api, tmp_path):
    url, calls, _ = api
    token = tmp_path / "token"
    token.write_text("tok-1\n")
    a = PodAnnotator(url, "framepress", "framepress-worker-gpu-abc", str(token))
    assert a.busy() and a.busy()  # the second is a no-op
    token.write_text("tok-2\n")  # rotated tokens are picked up
    assert a.idle()
    assert len(calls) == 2
    path, ctype, auth, body = calls[0]
    assert path == "/api/v1/namespaces/framepress/pods/framepress-worker-gpu-abc"
    assert ctype == "application/merge-patch+json" and auth == "Bearer tok-1"
    assert body == {"metadata": {"annotations": {DELETION_COST: "1000", SAFE_TO_EVICT: "false"}}}
    assert calls[1][2] == "Bearer tok-2"
    assert calls[1][3]["metadata"]["annotations"] == {DELETION_COST: "0", SAFE_TO_EVICT: "true"}


def test_api_errors_are_not_fatal_and_retried(api, tmp_path):
    url, calls, state = api
    (tmp_path / "token").write_text("t")
    a = PodAnnotator(url, "ns", "p", str(tmp_path / "token"))
    state["status"] = 403  # RBAC missing
    assert a.busy() is False
    state["status"] = 200
    assert a.busy() is True  # not cached as done after a failure
    assert len(calls) == 2


def test_outside_kubernetes_there_is_nothing_to_do(tmp_path):
    assert PodAnnotator.from_environment({}, sa_dir=str(tmp_path)) is None
    env = {"POD_NAME": "p", "POD_NAMESPACE": "ns", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert PodAnnotator.from_environment(env, sa_dir=str(tmp_path)) is None  # no token mounted
    (tmp_path / "token").write_text("t")
    a = PodAnnotator.from_environment(env, sa_dir=str(tmp_path))
    assert a.url == "https://10.0.0.1:443/api/v1/namespaces/ns/pods/p"
