"""Build the served widget from its readable source: ``python widget/build.py``.

``widget/src/portal-feeds.js`` (Vietnamese written as is, comments) becomes
``feeds/widget/portal-feeds.js``, the file portals serve:

- ASCII only: every other character as a ``\\uXXXX`` escape, so the script reads the same on a
  page in UTF-8, windows-1258 or ISO-8859-1, whatever charset the server sends (or none);
- line comments, indentation and blank lines removed (block comments stay: the ``/*pf-...*/``
  markers around the tables ``feeds/render.py`` reads, and the licence line).

Lines are kept as they are otherwise: no statement is joined to another, so the result runs
exactly as the source does.  ``tests/test_widget_files.py`` checks that the served file is the
build of the source.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "widget" / "src" / "portal-feeds.js"
SERVED = REPO / "feeds" / "widget" / "portal-feeds.js"


def build(source: str) -> str:
    lines = []
    for line in source.splitlines():
        text = line.strip()
        if not text or text.startswith("//"):
            continue
        lines.append(text)
    out = "\n".join(lines) + "\n"
    return "".join(c if ord(c) < 128 else f"\\u{ord(c):04x}" for c in out)


def main(argv: list[str]) -> int:
    served = build(SOURCE.read_text(encoding="utf-8"))
    if argv[1:] == ["--check"]:
        ok = SERVED.read_text(encoding="ascii") == served
        print("feeds/widget/portal-feeds.js is " + ("the build of the source" if ok else "NOT the build: run python widget/build.py"))
        return 0 if ok else 1
    SERVED.write_text(served, encoding="ascii")
    print(f"wrote {SERVED.relative_to(REPO)}: {len(served.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
