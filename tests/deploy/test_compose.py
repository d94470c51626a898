"""deploy/compose and deploy/Dockerfile, cross-checked against the code they run."""

from __future__ import annotations

import importlib.util
import inspect
import re
import shlex
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from collect_common.security.auth import ApiKeyRegistry
from collect_common.security.crypto import FieldCipher
from collect_common.settings import ServiceSettings
from collect_common.web.app import serve

SERVICES = ["case", "contact", "complaint", "qa"]
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")
LONG_RUNNING = {"kafka", "postgres", "prometheus", "grafana"} | {f"{s}-svc" for s in SERVICES}
# Read by the image or by serve(), not by the settings classes.
IMAGE_ENV = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "SERVICE", "HOST", "PORT"}


def _compose_text(root: Path) -> str:
    """compose.yaml without its comments (which mention ${NAME:?...} as an example)."""
    text = (root / "deploy/compose/compose.yaml").read_text(encoding="utf-8")
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def _env(container: dict[str, Any]) -> dict[str, str]:
    env = container.get("environment") or {}
    assert isinstance(env, dict), "environment is written as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def _load_make_env(root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_env", root / "deploy/compose/make_env.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _interpolate(value: str, variables: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in variables:
            return variables[name]
        default = re.match(r"\$\{[A-Z0-9_]+:-([^}]*)\}", m.group(0))
        assert default is not None, f"${{{name}}} has neither a value nor a default"
        return default.group(1)

    return INTERPOLATION.sub(one, value)


def _dockerfile(root: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = (root / "deploy/Dockerfile").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_compose_starts_each_service_after_its_migrations_and_the_topics(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in SERVICES:
        svc, migrate = services[f"{name}-svc"], services[f"{name}-svc-migrate"]
        deps = svc["depends_on"]
        assert deps[f"{name}-svc-migrate"]["condition"] == "service_completed_successfully"
        assert deps["kafka-topics"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["kafka"]["condition"] == "service_healthy"
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert migrate["restart"] == "no"
    topics = services["kafka-topics"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics["command"][:3] == ["python", "-m", "collect_common.bus.topics"]
    assert topics["command"][3:] == ["--bootstrap", "kafka:9092"]
    assert importlib.util.find_spec("collect_common.bus.topics") is not None


def test_every_long_running_container_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == LONG_RUNNING | {f"{s}-svc-migrate" for s in SERVICES} | {"kafka-topics"}
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    for name in SERVICES:
        probe = " ".join(services[f"{name}-svc"]["healthcheck"]["test"])
        assert "http://127.0.0.1:8000/readyz" in probe
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    # one-shot steps are awaited through their exit code, not a healthcheck
    for name in {f"{s}-svc-migrate" for s in SERVICES} | {"kafka-topics"}:
        assert services[name]["restart"] == "no"


def test_compose_environment_names_are_settings_fields(
    compose: dict[str, Any], env_names: dict[str, set[str]]
) -> None:
    services = compose["services"]
    for name in SERVICES:
        unknown = set(_env(services[f"{name}-svc"])) - env_names[name]
        assert not unknown, f"{name}-svc: no settings field reads {sorted(unknown)}"
        # migrations/env.py of every service reads DATABASE_URL only
        assert set(_env(services[f"{name}-svc-migrate"])) == {"DATABASE_URL"}
        env_py = Path(__file__).resolve().parents[2] / f"services/{name}-svc/migrations/env.py"
        assert 'os.environ.get("DATABASE_URL")' in env_py.read_text(encoding="utf-8")


def test_image_build_and_commands_are_consistent(compose: dict[str, Any], root: Path) -> None:
    services = compose["services"]
    for name in SERVICES:
        migrate, svc = services[f"{name}-svc-migrate"], services[f"{name}-svc"]
        build = migrate["build"]
        assert (root / "deploy/compose" / build["context"]).resolve() == root
        assert (root / build["dockerfile"]).is_file()
        assert build["args"] == {"SERVICE": name}
        image = f"collect/{name}-svc:${{TAG:-dev}}"
        assert migrate["image"] == image and svc["image"] == image
        assert "build" not in svc and svc["pull_policy"] == "never"
        command = migrate["command"]
        assert command[:3] == ["alembic", "-c", f"services/{name}-svc/alembic.ini"]
        assert command[3:] == ["upgrade", "head"]
        ini = (root / command[2]).read_text(encoding="utf-8")
        assert "script_location = %(here)s/migrations" in ini
        assert (root / f"services/{name}-svc/migrations/versions").is_dir()
        # the image's default command is the service's console script
        project = tomllib.loads((root / f"services/{name}-svc/pyproject.toml").read_text())
        assert project["project"]["scripts"][f"{name}-svc"] == f"{name}_svc.main:run"
        assert svc["ports"] == [f"{8001 + SERVICES.index(name)}:8000"]
    built = {s["image"] for s in services.values() if "build" in s}
    for name, spec in services.items():
        if str(spec.get("image", "")).startswith("collect/"):
            assert spec["image"] in built, f"{name}: nothing builds {spec['image']}"


def test_dockerfile_pins_python_and_installs_with_the_constraints(
    root: Path, env_names: dict[str, set[str]]
) -> None:
    instructions = _dockerfile(root)
    args = dict(rest.split("=", 1) for word, rest in instructions if word == "ARG" and "=" in rest)
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", args["PYTHON_IMAGE"]), (
        "the base image is python:3.11-slim pinned to a patch release"
    )
    assert [rest for word, rest in instructions if word == "FROM"] == [
        "${PYTHON_IMAGE} AS build",
        "${PYTHON_IMAGE}",
    ]
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "pip install -c requirements/constraints.txt" in runs
    assert "./libs/common" in runs and '"./services/${SERVICE}-svc"' in runs
    env: dict[str, str] = {}  # of the final stage: what the containers run with
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    for word, rest in instructions[last_from:]:
        if word == "ENV":
            env.update(item.partition("=")[::2] for item in shlex.split(rest))
    every_service = set.intersection(*env_names.values())
    unknown = set(env) - every_service - IMAGE_ENV
    assert not unknown, f"Dockerfile ENV names no settings field: {sorted(unknown)}"
    assert env["ENVIRONMENT"] == "production" and env["MIGRATE_ON_START"] == "false"
    assert env["MIGRATIONS_DIR"] == "/app/services/${SERVICE}-svc/migrations"
    assert env["PORT"] == "8000" and env["HOST"] == "0.0.0.0"  # noqa: S104
    serve_source = inspect.getsource(serve)
    assert 'os.environ.get("HOST"' in serve_source and 'os.environ.get("PORT"' in serve_source
    cmd = [rest for word, rest in instructions if word == "CMD"]
    assert cmd == ['["sh", "-c", "exec \\"${SERVICE}-svc\\""]']
    copies = [rest for word, rest in instructions if word == "COPY"]
    assert "services/${SERVICE}-svc/migrations services/${SERVICE}-svc/migrations" in copies


def test_secrets_come_from_the_env_file_and_each_is_documented(
    compose: dict[str, Any], root: Path, settings_classes: dict[str, type[ServiceSettings]]
) -> None:
    text = _compose_text(root)
    used = set(INTERPOLATION.findall(text))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    example = (root / "deploy/compose/.env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert used == documented, (
        f"undocumented: {sorted(used - documented)}; unused: {sorted(documented - used)}"
    )
    empty = set(re.findall(r"^([A-Z][A-Z0-9_]+)=$", example, re.MULTILINE))
    assert required == empty, "required variables are listed in .env.example without values"
    assert ".env" in (root / "deploy/compose/.gitignore").read_text().splitlines()
    # every secret setting a service receives is interpolated, never written here
    for name in SERVICES:
        fields = settings_classes[name].model_fields
        for key, value in _env(compose["services"][f"{name}-svc"]).items():
            annotation = str(fields[key.lower()].annotation)
            if "SecretStr" in annotation or key == "DATABASE_URL":
                assert INTERPOLATION.search(value), f"{name}-svc {key} is written in compose"


def test_generated_env_gives_every_service_valid_production_settings(
    compose: dict[str, Any],
    root: Path,
    settings_classes: dict[str, type[ServiceSettings]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """make_env.py's values, through compose's interpolation, pass each service's settings
    validation in production (dev secrets refused, PostgreSQL required) and parse."""
    make_env = _load_make_env(root)
    variables, keys = make_env.generate()
    text = _compose_text(root)
    assert set(re.findall(r"\$\{([A-Z0-9_]+):\?", text)) == set(variables)
    for name in SERVICES:
        env = {
            k: _interpolate(v, variables)
            for k, v in _env(compose["services"][f"{name}-svc"]).items()
        }
        for key in list(settings_classes[name].model_fields):
            monkeypatch.delenv(key.upper(), raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = settings_classes[name]()
        assert settings.environment == "production"
        assert settings.database_url.startswith(f"postgresql+asyncpg://{name}_svc:")
        assert settings.database_url.endswith(f"@postgres:5432/{name}_svc")
        FieldCipher.from_config(
            settings.field_keys.get_secret_value(), settings.blind_index_key.get_secret_value()
        )
        registry = ApiKeyRegistry.parse(settings.api_keys.get_secret_value())
        principal = registry.authenticate(keys["ops-dashboard"])
        assert principal is not None and principal.subject == "ops-dashboard"
        assert isinstance(settings.webhook_secrets, SecretStr)
    # each service has its own field keys
    assert len({variables[f"{s.upper()}_FIELD_KEYS"] for s in SERVICES}) == len(SERVICES)


def test_postgres_init_creates_the_database_and_role_of_each_service(
    compose: dict[str, Any], root: Path
) -> None:
    pg = compose["services"]["postgres"]
    mount = next(v for v in pg["volumes"] if "init-databases.sh" in v)
    source, target = mount.split(":")[:2]
    assert target.startswith("/docker-entrypoint-initdb.d/")
    script = (root / "deploy/compose" / source).read_text(encoding="utf-8")
    loop = re.search(r"^for service in ([a-z ]+); do$", script, re.MULTILINE)
    assert loop is not None and loop.group(1).split() == SERVICES
    for name in SERVICES:
        url = _env(compose["services"][f"{name}-svc"])["DATABASE_URL"]
        assert re.fullmatch(
            rf"postgresql\+asyncpg://{name}_svc:\$\{{{name.upper()}_DB_PASSWORD:\?[^}}]*\}}"
            rf"@postgres:5432/{name}_svc",
            url,
        ), url
        assert f"{name.upper()}_DB_PASSWORD" in pg["environment"]
    assert pg["image"] == "postgres:15"


def test_compose_kafka_is_the_version_the_project_tests_with(
    compose: dict[str, Any], root: Path
) -> None:
    pom = (root / "deploy/kafka/pom.xml").read_text(encoding="utf-8")
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version is not None
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{version.group(1)}"
    env = _env(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, one node
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # kafka-topics creates them
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    for name in SERVICES:
        assert _env(compose["services"][f"{name}-svc"])["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_prometheus_scrapes_the_four_services_and_grafana_is_provisioned(
    compose: dict[str, Any], root: Path
) -> None:
    prom_service = compose["services"]["prometheus"]
    mount = next(v for v in prom_service["volumes"] if "prometheus.yml" in v)
    prom = yaml.safe_load((root / "deploy/compose" / mount.split(":")[0]).read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in prom["scrape_configs"]
    }
    assert targets == {f"{s}-svc": [f"{s}-svc:8000"] for s in SERVICES}
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in prom["scrape_configs"])

    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("../"))
    provisioning = (
        root
        / "deploy/compose"
        / next(k for k, v in mounts.items() if v == "/etc/grafana/provisioning")
    )
    datasource = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    [ds] = datasource["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards/platform.yml").read_text())
    [prov] = provider["providers"]
    dash_dir = next(k for k, v in mounts.items() if v == prov["options"]["path"])
    assert (root / "deploy/compose" / dash_dir / "platform.json").is_file()
    dashboard = (root / "deploy/compose" / dash_dir / "platform.json").read_text()
    uids = set(re.findall(r'"uid": "([^"]+)"', dashboard)) - {"collect-platform"}
    assert uids == {ds["uid"]}
