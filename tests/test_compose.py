"""docker-compose.yml is written for production and cannot run here (no Docker engine): parse it
and check what a broken file would get wrong — services, images, the dependency order and its
health conditions, healthchecks, and environment names against the settings the app reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.settings import Settings
from runtime.temporal_client import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SETTINGS = {name.upper() for name in Settings.model_fields}


def test_the_stack_has_every_part() -> None:
    assert set(SERVICES) == {
        "postgres",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "api",
        "worker",
    }
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert SERVICES["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert SERVICES["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert SERVICES["api"]["build"] == "."
    assert SERVICES["worker"]["image"] == SERVICES["api"]["image"]
    assert SERVICES["worker"]["command"] == ["python", "worker.py"]
    assert "postgres-data" in COMPOSE["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]


def test_images_are_pinned() -> None:
    ours = SERVICES["api"]["image"]  # built from the Dockerfile, tagged by us
    for name, service in SERVICES.items():
        if "image" in service and service["image"] != ours:
            tag = service["image"].rpartition(":")[2]
            assert tag and tag != "latest" and "/" not in tag, name


@pytest.mark.parametrize("name", ["postgres", "temporal", "temporal-ui", "api", "worker"])
def test_long_running_services_have_healthchecks(name: str) -> None:
    check = SERVICES[name]["healthcheck"]
    assert check["test"] and check["interval"] and check["retries"] >= 3


def test_start_order_waits_for_health() -> None:
    def waits(service: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in SERVICES[service]["depends_on"].items()}

    assert waits("temporal") == {"postgres": "service_healthy"}
    assert waits("api") == {
        "postgres": "service_healthy",
        "temporal": "service_healthy",
        "temporal-setup": "service_completed_successfully",
    }
    assert waits("worker") == {"api": "service_healthy"}  # after the API migrated the database


def _env_names(service: dict[str, Any]) -> set[str]:
    env = service["environment"]
    return set(env) if isinstance(env, dict) else {e.split("=", 1)[0] for e in env}


@pytest.mark.parametrize("name", ["api", "worker"])
def test_app_environment_names_are_settings(name: str) -> None:
    names = _env_names(SERVICES[name])
    assert names <= SETTINGS, sorted(names - SETTINGS)
    # What production refuses to start without (runtime/settings.py).
    assert {"DATABASE_URL", "ADMIN_API_KEY", "PAYLOAD_ENCRYPTION_KEYS", "TEMPORAL_ADDRESS"} <= names
    env = SERVICES[name]["environment"]
    assert env["ENVIRONMENT"] == "production"
    assert (
        env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
    )
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_secrets_have_no_defaults() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "ADMIN_API_KEY", "PAYLOAD_ENCRYPTION_KEYS"):
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses and all(u.startswith(":?") for u in uses), secret


def test_the_ui_reads_payloads_through_our_codec_server() -> None:
    env = SERVICES["temporal-ui"]["environment"]
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")


def test_the_search_attributes_are_registered() -> None:
    script = " ".join(SERVICES["temporal-setup"]["command"])
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert f"{name}={kind}" in script


def test_the_example_env_names_what_compose_needs() -> None:
    example = (ROOT / "deploy" / "compose.env.example").read_text()
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    given = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert required <= given


def test_the_image_builds_what_the_services_run() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11" in dockerfile
    assert "USER journeys" in dockerfile  # not root
    assert '"api.main:create_app", "--factory"' in dockerfile


def test_the_worker_serves_metrics_where_its_healthcheck_looks() -> None:
    worker = SERVICES["worker"]
    env = worker["environment"]
    host, _, port = env["WORKER_METRICS_ADDRESS"].rpartition(":")
    assert host == "0.0.0.0"  # reachable by the scraper from outside the container
    assert f"127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])
    assert port in [str(p) for p in worker["expose"]]
    Settings(_env_file=None, worker_metrics_address=env["WORKER_METRICS_ADDRESS"])  # valid
    # The grace given to in-flight activities fits inside compose's own stop grace period.
    grace = float(env["WORKER_GRACEFUL_SHUTDOWN_SECONDS"])
    assert grace < float(worker["stop_grace_period"].removesuffix("s"))
