"""Upstream text made safe to publish: one normalisation for every name a source gives.

``clean_name``: Unicode NFC; control characters (C0, C1), format characters (bidi overrides
and isolates such as U+202E, zero-width spaces and joiners, the BOM) and ``<``/``>``
removed; line and paragraph separators (U+2028/U+2029) and every other whitespace collapsed
to one space; trimmed; at most ``MAX_NAME`` characters.  What it cannot do is decide what a
name means: widgets still escape it for HTML.
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_NAME", "clean_name"]

MAX_NAME = 64
#: Read at most this much of a name before normalising (a 100,000-character attribute).
_MAX_RAW = 4 * MAX_NAME


def clean_name(text: str | None, limit: int = MAX_NAME) -> str:
    """Return ``text`` normalised for publishing (possibly empty)."""
    if not text:
        return ""
    raw = unicodedata.normalize("NFC", text[:_MAX_RAW])
    out: list[str] = []
    for ch in raw:
        cat = unicodedata.category(ch)
        if ch.isspace() or cat in ("Zs", "Zl", "Zp"):
            out.append(" ")
        elif cat in ("Cc", "Cf", "Cs", "Co", "Cn") or ch in "<>":
            continue
        else:
            out.append(ch)
    return " ".join("".join(out).split())[:limit].rstrip()
