"""deploy/k8s, cross-checked against the services' settings, policies and topics."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from collect_common.bus.topics import platform_topics
from collect_common.policy import Policy, PolicyBook
from collect_common.settings import ServiceSettings

SERVICES = ["case", "contact", "complaint", "qa"]
POLICIES = {
    "case": ("case_svc.domain.policy", "CasePolicy"),
    "contact": ("contact_svc.domain.policy", "ContactPolicy"),
    "complaint": ("complaint_svc.domain.policy", "ComplaintPolicy"),
    "qa": ("qa_svc.domain.policy", "QaPolicy"),
}


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    [container] = workload["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _env_of(container: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Every variable the container gets: from envFrom ConfigMaps, then its env list."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        cm = _one(objects, "ConfigMap", source["configMapRef"]["name"])
        env.update(
            {k: {"value": v, "configMap": cm["metadata"]["name"]} for k, v in cm["data"].items()}
        )
    for item in container.get("env", []):
        env[item["name"]] = item.get("valueFrom", {"value": item.get("value")})
    return env


def _partition_bound(name: str) -> int:
    """Members of the service's consumer group that can be given a partition: the largest
    partition count among the topics it subscribes to."""
    subscribe = importlib.import_module(f"{name}_svc.entrypoints.consumer").SUBSCRIBE
    partitions = {t.name: t.partitions for t in platform_topics()}
    assert subscribe, f"{name}-svc subscribes to no topic"
    return max(partitions[topic] for topic in subscribe)


def test_each_service_has_deployment_service_autoscaler_and_migration_job(
    k8s_objects: list[dict[str, Any]],
) -> None:
    for name in SERVICES:
        svc = f"{name}-svc"
        deployment = _one(k8s_objects, "Deployment", svc)
        service = _one(k8s_objects, "Service", svc)
        hpa = _one(k8s_objects, "HorizontalPodAutoscaler", svc)
        job = _one(k8s_objects, "Job", f"{svc}-migrate")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": svc,
        }
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        migrate = _container(job)
        assert migrate["image"] == _container(deployment)["image"] == f"collect/{svc}:dev"
        assert migrate["command"] == [
            "alembic",
            "-c",
            f"services/{svc}/alembic.ini",
            "upgrade",
            "head",
        ]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert [e["name"] for e in migrate["env"]] == ["DATABASE_URL"]


def test_probes_point_at_readyz_and_healthz_and_resources_are_bounded(
    k8s_objects: list[dict[str, Any]],
) -> None:
    for name in SERVICES:
        container = _container(_one(k8s_objects, "Deployment", f"{name}-svc"))
        assert container["ports"] == [{"name": "http", "containerPort": 8000}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)


def test_environment_names_are_settings_fields_and_secrets_come_from_secrets(
    k8s_objects: list[dict[str, Any]],
    env_names: dict[str, set[str]],
    settings_classes: dict[str, type[ServiceSettings]],
    root: Path,
) -> None:
    readme = (root / "deploy/k8s/README.md").read_text(encoding="utf-8")
    for name in SERVICES:
        container = _container(_one(k8s_objects, "Deployment", f"{name}-svc"))
        env = _env_of(container, k8s_objects)
        unknown = set(env) - env_names[name]
        assert not unknown, f"{name}-svc: no settings field reads {sorted(unknown)}"
        fields = settings_classes[name].model_fields
        for key, source in env.items():
            secret = "SecretStr" in str(fields[key.lower()].annotation)
            if secret or key == "DATABASE_URL":
                ref = source.get("secretKeyRef")
                assert ref, f"{name}-svc {key} must come from a Secret"
                # each referenced Secret and key is documented for the operator
                row = re.search(rf"^\| `{re.escape(ref['name'])}` \| (.+) \|$", readme, re.M)
                assert row and f"`{ref['key']}`" in row.group(1), (ref, "not in README.md")
        # production, no migrations at start, the shared bus address
        assert {"ENVIRONMENT", "MIGRATE_ON_START", "KAFKA_BOOTSTRAP_SERVERS"} <= set(env)
        platform = _one(k8s_objects, "ConfigMap", "platform-env")["data"]
        assert platform["ENVIRONMENT"] == "production"
        assert platform["MIGRATE_ON_START"] == "false"


def test_policy_configmaps_load_as_each_services_policy_book(
    k8s_objects: list[dict[str, Any]],
) -> None:
    for name in SERVICES:
        deployment = _one(k8s_objects, "Deployment", f"{name}-svc")
        container = _container(deployment)
        settings_cm = _one(k8s_objects, "ConfigMap", f"{name}-svc-env")["data"]
        policy_file = Path(settings_cm["POLICY_FILE"])
        mount = next(
            m for m in container["volumeMounts"] if policy_file.parent == Path(m["mountPath"])
        )
        volume = next(
            v
            for v in deployment["spec"]["template"]["spec"]["volumes"]
            if v["name"] == mount["name"]
        )
        policy_cm = _one(k8s_objects, "ConfigMap", volume["configMap"]["name"])
        module, cls_name = POLICIES[name]
        policy_type: type[Policy] = getattr(importlib.import_module(module), cls_name)
        book = PolicyBook.parse(policy_type, tomllib.loads(policy_cm["data"][policy_file.name]))
        assert "default" in book.contracts()


def test_hpa_max_replicas_do_not_exceed_the_partitions_a_consumer_group_can_use(
    k8s_objects: list[dict[str, Any]],
) -> None:
    over = []
    for name in SERVICES:
        deployment = _one(k8s_objects, "Deployment", f"{name}-svc")
        env = _env_of(_container(deployment), k8s_objects)
        consumes = env.get("CONSUMER_ENABLED", {}).get("value", "true") != "false"
        hpa = _one(k8s_objects, "HorizontalPodAutoscaler", f"{name}-svc")
        bound = _partition_bound(name)
        if consumes and hpa["spec"]["maxReplicas"] > bound:
            over.append(f"{name}-svc maxReplicas {hpa['spec']['maxReplicas']} > {bound} partitions")
    assert not over, "; ".join(over)


def test_readme_table_of_replicas_matches_topics_and_autoscalers(
    k8s_objects: list[dict[str, Any]], root: Path
) -> None:
    readme = (root / "deploy/k8s/README.md").read_text(encoding="utf-8")
    for name in SERVICES:
        hpa = _one(k8s_objects, "HorizontalPodAutoscaler", f"{name}-svc")
        row = re.search(rf"^\| {name}-svc \| (.+) \| (.+) \| (\d+) \|$", readme, re.M)
        assert row, f"README.md has no scaling row for {name}-svc"
        subscribe = importlib.import_module(f"{name}_svc.entrypoints.consumer").SUBSCRIBE
        assert row.group(1) == ", ".join(f"`{t}`" for t in subscribe)
        partitions = {t.name: t.partitions for t in platform_topics()}
        assert row.group(2) == ", ".join(str(partitions[t]) for t in subscribe)
        assert int(row.group(3)) == hpa["spec"]["maxReplicas"]


def test_kustomizations_list_every_manifest(root: Path) -> None:
    k8s = root / "deploy/k8s"
    for kustomization in k8s.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        listed = {(kustomization.parent / r).resolve() for r in spec["resources"]}
        for path in listed:
            assert path.exists(), f"{kustomization}: {path} does not exist"
        here = {p.resolve() for p in kustomization.parent.glob("*.yaml")} - {
            kustomization.resolve()
        }
        assert here <= listed, f"{kustomization}: not listed {sorted(map(str, here - listed))}"
        for image in spec.get("images", []):
            assert re.fullmatch(r"collect/(case|contact|complaint|qa)-svc", image["name"])


def test_prometheus_k8s_scrapes_the_pods_the_deployments_label(
    k8s_objects: list[dict[str, Any]], root: Path
) -> None:
    prom = yaml.safe_load((root / "deploy/prometheus/prometheus-k8s.yml").read_text())
    [job] = prom["scrape_configs"]
    keep = {
        tuple(r["source_labels"]): r["regex"]
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    part_of = keep[("__meta_kubernetes_pod_label_app_kubernetes_io_part_of",)]
    scrape = keep[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)]
    namespaces = job["kubernetes_sd_configs"][0]["namespaces"]["names"]
    for name in SERVICES:
        template = _one(k8s_objects, "Deployment", f"{name}-svc")["spec"]["template"]
        assert re.fullmatch(part_of, template["metadata"]["labels"]["app.kubernetes.io/part-of"])
        notes = template["metadata"]["annotations"]
        assert re.fullmatch(scrape, notes["prometheus.io/scrape"])
        assert notes["prometheus.io/path"] == "/metrics"
        assert (
            int(notes["prometheus.io/port"])
            == _container(_one(k8s_objects, "Deployment", f"{name}-svc"))["ports"][0][
                "containerPort"
            ]
        )
    kustomization = yaml.safe_load((root / "deploy/k8s/kustomization.yaml").read_text())
    assert namespaces == [kustomization["namespace"]]


def test_kustomize_builds_both_kustomizations_into_the_collect_namespace(root: Path) -> None:
    """`kubectl kustomize` (local, no cluster): the overlays resolve, every object lands
    in the platform's namespace and the Jobs run the images the Deployments run."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built: dict[str, list[dict[str, Any]]] = {}
    for part in ("", "migrations"):
        result = subprocess.run(
            [kubectl, "kustomize", str(root / "deploy/k8s" / part)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        built[part] = [d for d in yaml.safe_load_all(result.stdout) if d]
    for objects in built.values():
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"].get("namespace") == "collect", obj["metadata"]["name"]
    kinds = sorted({o["kind"] for o in built[""]})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Namespace",
        "PodDisruptionBudget",
        "Service",
    ]
    images = {
        c["image"]
        for o in built[""]
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    job_images = {
        c["image"]
        for o in built["migrations"]
        if o["kind"] == "Job"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert job_images == images == {f"collect/{s}-svc:dev" for s in SERVICES}
