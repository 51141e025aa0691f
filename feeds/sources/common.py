"""Helpers shared by the JSON weather sources: reading numbers, bodies and coordinates."""

from __future__ import annotations

import json
from typing import Any

from feeds.errors import InvalidPayloadError

__all__ = ["coord", "load_json", "number"]


def number(value: Any) -> float | None:
    """A JSON number or null; anything else (a string, a boolean) is invalid_payload."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidPayloadError("a value is not a number", detail="bad_value")
    return value


def coord(x: float) -> str:
    """A coordinate with at most 4 decimals (MET Norway's terms; plenty for Open-Meteo)."""
    return f"{x:.4f}".rstrip("0").rstrip(".")


def load_json(body: bytes) -> Any:
    """Decode a JSON body, or raise invalid_payload (``empty`` / ``malformed``)."""
    if not body.strip():
        raise InvalidPayloadError("empty body", detail="empty")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidPayloadError("not JSON", detail="malformed") from None
