"""Strict checks for the custom resources in k8s/, which kubernetes-validate has no schemas for.

Split between the two checkers:
- kubernetes-validate (strict, 1.31) checks what is a core type inside them: every object's
  `metadata` (ObjectMeta), the PodMonitor's `selector` (LabelSelector) and the ScaledObject's
  `advanced.horizontalPodAutoscalerConfig.behavior` (autoscaling/v2 HPA behavior), each by
  wrapping it in a core object that holds that type;
- the JSON schemas below check the rest structurally: the fields the CRDs define (KEDA v2
  keda.sh/v1alpha1, Prometheus Operator monitoring.coreos.com/v1), their types, required fields,
  and no unknown field (a typo the API server would drop silently, with `kubectl apply`'s
  default field validation only a warning). They cover the fields of those CRDs that matter for
  these objects, not every one: a field added to k8s/ that is missing here fails loudly, and is
  then added from the CRD's reference.
"""
from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
                                         r"(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}


def _closed(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False}


def _object(api_version: str, kind: str, spec: dict) -> dict:
    return _closed({"apiVersion": {"const": api_version}, "kind": {"const": kind},
                    "metadata": {"type": "object"}, "spec": spec},
                   ("apiVersion", "kind", "metadata", "spec"))


SCALED_OBJECT = _object("keda.sh/v1alpha1", "ScaledObject", _closed({
    "scaleTargetRef": _closed({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                               "name": {"type": "string"},
                               "envSourceContainerName": {"type": "string"}}, ("name",)),
    "pollingInterval": {"type": "integer", "minimum": 1},
    "cooldownPeriod": {"type": "integer", "minimum": 0},
    "initialCooldownPeriod": {"type": "integer", "minimum": 0},
    "idleReplicaCount": {"type": "integer", "minimum": 0},
    "minReplicaCount": {"type": "integer", "minimum": 0},
    "maxReplicaCount": {"type": "integer", "minimum": 1},
    "fallback": _closed({"failureThreshold": {"type": "integer"}, "replicas": {"type": "integer"}},
                        ("failureThreshold", "replicas")),
    "advanced": _closed({
        "restoreToOriginalReplicaCount": {"type": "boolean"},
        # `behavior` is an HPA's: validated by kubernetes-validate as autoscaling/v2.
        "horizontalPodAutoscalerConfig": _closed({"name": {"type": "string"},
                                                  "behavior": {"type": "object"}}),
    }),
    "triggers": {"type": "array", "minItems": 1, "items": _closed({
        "type": {"type": "string"},
        "name": {"type": "string"},
        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
        "useCachedMetrics": {"type": "boolean"},
        "metadata": STRING_MAP,  # KEDA reads map[string]string: numbers must be quoted
        "authenticationRef": _closed({"name": {"type": "string"},
                                      "kind": {"enum": ["TriggerAuthentication",
                                                        "ClusterTriggerAuthentication"]}}, ("name",)),
    }, ("type", "metadata"))},
}, ("scaleTargetRef", "triggers")))

TRIGGER_AUTHENTICATION = _object("keda.sh/v1alpha1", "TriggerAuthentication", _closed({
    "secretTargetRef": {"type": "array", "items": _closed({
        "parameter": {"type": "string"}, "name": {"type": "string"}, "key": {"type": "string"},
    }, ("parameter", "name", "key"))},
    "env": {"type": "array", "items": _closed({
        "parameter": {"type": "string"}, "name": {"type": "string"},
        "containerName": {"type": "string"}}, ("parameter", "name"))},
    "podIdentity": _closed({"provider": {"type": "string"}, "identityId": {"type": "string"}},
                           ("provider",)),
}))

POD_MONITOR = _object("monitoring.coreos.com/v1", "PodMonitor", _closed({
    "jobLabel": {"type": "string"},
    "podTargetLabels": {"type": "array", "items": {"type": "string"}},
    "selector": {"type": "object"},  # a LabelSelector: validated by kubernetes-validate
    "namespaceSelector": _closed({"any": {"type": "boolean"},
                                  "matchNames": {"type": "array", "items": {"type": "string"}}}),
    "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _closed({
        "port": {"type": "string"},
        "path": {"type": "string"},
        "scheme": {"enum": ["http", "https"]},
        "interval": DURATION,
        "scrapeTimeout": DURATION,
        "honorLabels": {"type": "boolean"},
        "params": {"type": "object", "additionalProperties": {"type": "array",
                                                              "items": {"type": "string"}}},
    })},
}, ("selector",)))

PROMETHEUS_RULE = _object("monitoring.coreos.com/v1", "PrometheusRule", _closed({
    "groups": {"type": "array", "items": _closed({
        "name": {"type": "string", "minLength": 1},
        "interval": DURATION,
        "limit": {"type": "integer"},
        "rules": {"type": "array", "items": {
            **_closed({
                "alert": {"type": "string"},
                "record": {"type": "string"},
                "expr": {"type": ["string", "integer"]},
                "for": DURATION,
                "keep_firing_for": DURATION,
                "labels": STRING_MAP,
                "annotations": STRING_MAP,
            }, ("expr",)),
            "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
        }},
    }, ("name", "rules"))},
}))

SCHEMAS = {"ScaledObject": SCALED_OBJECT, "TriggerAuthentication": TRIGGER_AUTHENTICATION,
           "PodMonitor": POD_MONITOR, "PrometheusRule": PROMETHEUS_RULE}
KINDS = frozenset(SCHEMAS)


def _core(obj: dict, version: str) -> None:
    """The core types inside a custom resource, through kubernetes-validate."""
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": copy.deepcopy(obj["metadata"])}, version, strict=True)
    spec = obj["spec"]
    if obj["kind"] == "PodMonitor":
        kubernetes_validate.validate({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "x"},
            "spec": {"maxUnavailable": 1, "selector": copy.deepcopy(spec["selector"])}},
            version, strict=True)
    behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
    if behavior is not None:
        kubernetes_validate.validate({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
            "spec": {"scaleTargetRef": copy.deepcopy(spec["scaleTargetRef"]), "maxReplicas": 1,
                     "behavior": copy.deepcopy(behavior)}}, version, strict=True)


def validate(obj: dict, version: str) -> None:
    """Raise if `obj`, one of KINDS, is not a valid object of its kind."""
    jsonschema.validate(obj, SCHEMAS[obj["kind"]], cls=jsonschema.Draft202012Validator)
    _core(obj, version)
