"""How our processes are launched: shared by `make run` (scripts/devstack.py), the benchmark and
the tests, so a change to a flag happens in one place."""

from __future__ import annotations

import sys

from runtime.temporal_client import SEARCH_ATTRIBUTES


def search_attribute_args() -> list[str]:
    """`--search-attribute Name=Type` for each custom attribute, for `temporal server start-dev`."""
    args: list[str] = []
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    return args


def worker_command() -> list[str]:
    return [sys.executable, "worker.py"]


def api_command(host: str, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        *extra,
    ]
