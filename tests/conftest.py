"""Shared fixtures: schema validation of every snapshot, fake clock, configs on tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def snapshot_schema() -> dict[str, Any]:
    return json.loads(files("feeds").joinpath("schemas/snapshot-v1.schema.json").read_text())


@pytest.fixture
def validate_snapshot(snapshot_schema: dict[str, Any]) -> Callable[[Path | dict[str, Any]], dict[str, Any]]:
    """Validate a snapshot file (or document) against the shipped JSON Schema; return it."""
    validator = jsonschema.Draft202012Validator(snapshot_schema)

    def check(doc: Path | dict[str, Any]) -> dict[str, Any]:
        if isinstance(doc, Path):
            doc = json.loads(doc.read_text(encoding="utf-8"))
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
        return doc

    return check


def write_config(tmp_path: Path, body: str) -> Path:
    """Write a config file with paths inside tmp_path."""
    path = tmp_path / "portal-feeds.toml"
    path.write_text(
        '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n' + body, encoding="utf-8"
    )
    return path
