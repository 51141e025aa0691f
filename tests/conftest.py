"""Shared fixtures: schema validation of every snapshot, fake clock, configs on tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def shipped_schema() -> dict[str, Any]:
    """The schema as shipped: open, so a consumer does not break when a field is added."""
    doc: dict[str, Any] = json.loads(files("feeds").joinpath("schemas/snapshot-v1.schema.json").read_text())
    return doc


def strict_schema(schema: Any) -> Any:
    """The shipped schema closed: every object schema refuses properties it does not list.

    Our own output is held to this, so a field we add without documenting it in the schema
    fails the suite; consumers get the open form (docs/snapshots.md).  Only schemas that
    declare ``"type": "object"`` are closed, never the ``if``/``then`` branches, which list a
    few properties of an object described elsewhere.
    """
    if isinstance(schema, list):
        return [strict_schema(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    if out.get("type") == "object" and "properties" in out:
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="session")
def snapshot_schema() -> dict[str, Any]:
    """The strict variant of the shipped schema (see ``strict_schema``)."""
    closed: dict[str, Any] = strict_schema(shipped_schema())
    return closed


@pytest.fixture
def validate_snapshot(snapshot_schema: dict[str, Any]) -> Callable[[Path | dict[str, Any]], dict[str, Any]]:
    """Validate a snapshot file (or document) against the strict variant of the schema; return it."""
    validator = jsonschema.Draft202012Validator(snapshot_schema)

    def check(doc: Path | dict[str, Any]) -> dict[str, Any]:
        if isinstance(doc, Path):
            doc = json.loads(doc.read_text(encoding="utf-8"))
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
        return doc

    return check


@pytest.fixture(autouse=True)
def every_snapshot_matches_the_schema(
    request: pytest.FixtureRequest, snapshot_schema: dict[str, Any]
) -> Iterator[None]:
    """After each test that used tmp_path: every snapshot file left there validates.

    A snapshot is any JSON object with ``schema_version`` (the metrics file, cached bodies
    and test payloads are not). Tests check their own snapshots' contents; this makes the
    schema check cover every snapshot the suite writes, not only the ones a test looked at.
    """
    if "tmp_path" not in request.fixturenames:
        yield
        return
    tmp_path: Path = request.getfixturevalue("tmp_path")  # set up now: torn down after us
    yield
    validator = jsonschema.Draft202012Validator(snapshot_schema)
    # Rates history (issue 21): the archive's day files and <feed>.history.json, each its own schema.
    day_validator = jsonschema.Draft202012Validator(strict_schema(history_schema("history-day-v1")))
    history_validator = jsonschema.Draft202012Validator(history_schema("history-v1"))
    for path in sorted(tmp_path.rglob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(doc, dict) and "schema_version" in doc:
            if path.name.endswith(".history.json"):
                check = history_validator
            elif path.parent.parent.name == "history" and "date" in doc:
                check = day_validator
            else:
                check = validator
            errors = [f"{list(e.path)}: {e.message}" for e in check.iter_errors(doc)]
            assert not errors, (path, errors)


def history_schema(name: str) -> Any:
    """A shipped history schema (feeds/schemas/<name>.schema.json)."""
    from importlib.resources import files

    return json.loads(files("feeds").joinpath(f"schemas/{name}.schema.json").read_text(encoding="utf-8"))


def write_config(tmp_path: Path, body: str) -> Path:
    """Write a config file with paths inside tmp_path."""
    path = tmp_path / "portal-feeds.toml"
    path.write_text(
        '[paths]\ncache_dir = "cache"\nsnapshot_dir = "snapshots"\n\n' + body, encoding="utf-8"
    )
    return path
