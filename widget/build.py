"""Build the served widget from its readable source: ``python widget/build.py``.

``widget/src/portal-feeds.js`` (Vietnamese written as is, comments) becomes
``feeds/widget/portal-feeds.js``, the file portals serve:

- ASCII only: every other character as a ``\\uXXXX`` escape, so the script reads the same on a
  page in UTF-8, windows-1258 or ISO-8859-1, whatever charset the server sends (or none);
- line comments, indentation, blank lines and the spaces between tokens removed (block
  comments stay: the ``/*pf-...*/`` markers around the tables ``feeds/render.py`` reads, and
  the licence line); strings and regular expressions are copied as they are.

A line is joined to the next only where it cannot end a statement (it ends with ``{``, ``(``,
``,``, ``;``, an operator): no automatic semicolon is lost, so the result runs exactly as the
source does (the browser tests run the built file).  ``tests/test_widget_files.py`` checks that the served file is the
build of the source.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "widget" / "src" / "portal-feeds.js"
SERVED = REPO / "feeds" / "widget" / "portal-feeds.js"


_WORD = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
#: After these (or at the start), a ``/`` begins a regular expression, not a division.
_BEFORE_REGEX = set("(,=:[!&|?{};+-*%<>~^")


def _squeeze(line: str) -> str:
    """One line without the spaces between tokens; strings and regexes copied as they are."""
    out: list[str] = []
    i, n = 0, len(line)
    pending_space = False
    while i < n:
        c = line[i]
        if c in " \t":
            pending_space = True
            i += 1
            continue
        prev = out[-1][-1] if out and out[-1] else ""
        if pending_space and prev in _WORD and c in _WORD:
            out.append(" ")
        pending_space = False
        if c in "\"'" or (c == "/" and line[i + 1:i + 2] not in ("/", "*") and
                           (prev == "" or prev in _BEFORE_REGEX or "".join(out).rstrip().endswith(("return", "typeof")))):
            j = i + 1
            in_class = False
            while j < n:
                if line[j] == "\\":
                    j += 2
                    continue
                if c == "/" and line[j] == "[":
                    in_class = True
                elif c == "/" and line[j] == "]":
                    in_class = False
                elif line[j] == c and not in_class:
                    break
                j += 1
            if c == "/":
                j += 1
                while j < n and line[j] in _WORD:  # flags
                    j += 1
                out.append(line[i:j])
            else:
                out.append(line[i:j + 1])
                j += 1
            i = j
            continue
        if c == "/" and line[i + 1:i + 2] == "*":  # a block comment: kept whole
            j = line.index("*/", i + 2) + 2
            out.append(line[i:j])
            i = j
            continue
        out.append(c)
        i += 1
    return "".join(out)


def build(source: str) -> str:
    lines = []
    for line in source.splitlines():
        text = line.strip()
        if not text or text.startswith("//"):
            continue
        lines.append(text if text.startswith("/*!") else _squeeze(text))
    # A line that cannot end a statement (it ends with an opening bracket, an operator, a comma
    # or a semicolon) is joined to the next: no automatic semicolon can be lost there.
    joined: list[str] = []
    for text in lines:
        if joined and joined[-1].endswith(("{", "(", "[", ",", ";", "&&", "||", "?", ":", "+", "=")) \
                and not joined[-1].startswith("/*!"):
            joined[-1] += text
        else:
            joined.append(text)
    out = "\n".join(joined) + "\n"
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
