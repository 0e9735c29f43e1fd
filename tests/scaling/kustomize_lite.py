"""Just enough of `kustomize build` for k8s/ (the kustomize binary is not available here).

Supported, and nothing else (an unknown kustomization field fails loudly, so the manifests cannot
quietly outgrow this renderer): resources (files and directories), configMapGenerator (files,
literals, options.labels, disableNameSuffixHash), patches by path (strategic merge, matched by
kind and name, `$patch: delete`), namespace, nameSuffix (with the HPA scaleTargetRef reference
kustomize also updates), labels (pairs, includeSelectors).
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "configMapGenerator", "patches", "namespace", "nameSuffix",
             "labels"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
# Kubernetes' patchMergeKey for the lists the patches touch; any other list is replaced whole, as
# strategic merge does for lists without a merge key (tolerations, HPA metrics, args...).
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort", "imagePullSecrets": "name"}
ORIGIN = "__original_name__"


def merge(base, patch, key=None):
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = merge(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        mk = MERGE_KEYS[key]
        out = [copy.deepcopy(b) for b in base]
        for item in patch:
            match = next((i for i, b in enumerate(out) if b.get(mk) == item.get(mk)), None)
            if match is None:
                out.append(copy.deepcopy(item))
            else:
                out[match] = merge(out[match], item)
        return out
    return copy.deepcopy(patch)


def _load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _ident(obj):
    return obj["kind"], obj["metadata"]["name"]


def build(directory: str | Path) -> list[dict]:
    objs = _build(Path(directory))
    for o in objs:
        o["metadata"].pop(ORIGIN, None)
    return objs


def _build(d: Path) -> list[dict]:
    k = yaml.safe_load((d / "kustomization.yaml").read_text())
    unknown = set(k) - SUPPORTED
    if unknown:
        raise ValueError(f"{d}: kustomize_lite does not support {sorted(unknown)}")

    objs: list[dict] = []
    for r in k.get("resources", []):
        p = d / r
        objs += _build(p) if p.is_dir() else _load(p)
    for o in objs:
        o["metadata"].setdefault(ORIGIN, o["metadata"]["name"])

    for g in k.get("configMapGenerator", []):
        opts = g.get("options", {})
        if not opts.get("disableNameSuffixHash"):
            raise ValueError(f"{d}: generated names with hash suffixes are not supported")
        data = {}
        for f in g.get("files", []):
            data[Path(f).name] = (d / f).read_text()
        for lit in g.get("literals", []):
            key, _, value = lit.partition("=")
            data[key] = value
        meta = {"name": g["name"], ORIGIN: g["name"]}
        if opts.get("labels"):
            meta["labels"] = dict(opts["labels"])
        objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})

    for p in k.get("patches", []):
        if set(p) != {"path"}:
            raise ValueError(f"{d}: only `patches: - path:` is supported, got {p}")
        for patch in _load(d / p["path"]):
            kind, name = patch["kind"], patch["metadata"]["name"]
            targets = [i for i, o in enumerate(objs) if o["kind"] == kind
                       and name in (o["metadata"]["name"], o["metadata"][ORIGIN])]
            if len(targets) != 1:
                raise ValueError(f"{d}: patch {kind}/{name} matches {len(targets)} objects")
            if patch.get("$patch") == "delete":
                del objs[targets[0]]
            else:
                objs[targets[0]] = merge(objs[targets[0]], patch)

    if "nameSuffix" in k:
        renamed = {}
        for o in objs:
            if o["kind"] != "Namespace":
                old = o["metadata"]["name"]
                o["metadata"]["name"] = old + k["nameSuffix"]
                renamed[(o["kind"], old)] = o["metadata"]["name"]
        for o in objs:
            if o["kind"] == "HorizontalPodAutoscaler":
                ref = o["spec"]["scaleTargetRef"]
                ref["name"] = renamed.get((ref["kind"], ref["name"]), ref["name"])

    for group in k.get("labels", []):
        pairs = group["pairs"]
        for o in objs:
            o["metadata"].setdefault("labels", {}).update(pairs)
            if group.get("includeSelectors"):
                spec = o.get("spec", {})
                if "selector" in spec and "matchLabels" in spec["selector"]:
                    spec["selector"]["matchLabels"].update(pairs)
                if "template" in spec:
                    spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(pairs)

    if "namespace" in k:
        for o in objs:
            if o["kind"] not in CLUSTER_SCOPED:
                o["metadata"]["namespace"] = k["namespace"]
            for s in o.get("subjects", []) if o["kind"] == "RoleBinding" else []:
                if s["kind"] == "ServiceAccount":
                    s["namespace"] = k["namespace"]

    seen = set()
    for o in objs:
        ident = (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        if ident in seen:
            raise ValueError(f"{d}: duplicate object {ident}")
        seen.add(ident)
    return objs
