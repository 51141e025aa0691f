"""The invariant suite (issue 16, item 9): a real ``portal-feeds run`` against the upstream
simulator through seeded random steps (faults, hostile dates/numbers/validators, reloads,
wall-clock steps, cache deletion and damage, snapshot damage, a second instance), with the
invariants a portal relies on checked after every step; see ``tests/invariants_support.py``.

``INVARIANTS_SECONDS`` (default 60) is the budget, ``INVARIANTS_SEED`` (default 16) the seed;
``bench/invariants.py`` runs the same for longer.  The wall-clock steps need libfaketime
(Debian's ``libfaketime``); without it they are not drawn, and under ``CI`` the suite fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.invariants_support import (
    draw_sequence,
    ecma_regex,
    ecma_validator,
    faketime_available,
    faketime_env,
    run_suite,
)

TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$"


@pytest.mark.parametrize(
    ("pattern", "text", "ecma"),
    [
        (TIMESTAMP, "2026-12-06T11:00:00+07:00", True),
        (TIMESTAMP, "2026-12-06T11:00:00+07:00\n", False),  # Python's $ matches before a final \n
        (TIMESTAMP, "２０２６-12-06T11:00:00+07:00", False),  # Python's \d matches full-width digits
        (TIMESTAMP, "1905-06-15T10:00:00+07:06:30", False),  # a sub-minute LMT offset
        (r"^[A-Za-z0-9][A-Za-z0-9_.-]*$(?![\s\S])", "rates", True),
        (r"^[A-Za-z0-9][A-Za-z0-9_.-]*$(?![\s\S])", "rates\n", False),
        (r"^[a-z_]+$", "clear_sky", True),
        (r"^\w+$", "mưa", False),  # ECMA's \w is ASCII
        (r"^a.b$", "a\rb", False),  # ECMA's . excludes line terminators
        (r"^\s$", "\ufeff", True),  # ...and its \s includes U+FEFF
    ],
)
def test_ecma_regex_semantics(pattern: str, text: str, ecma: bool) -> None:
    assert bool(ecma_regex(pattern).search(text)) is ecma


def test_ecma_validator_refuses_what_python_re_lets_through() -> None:
    doc = {
        "schema_version": 1, "feed": "rates", "kind": "exchange_rates", "status": "unavailable",
        "generated_at": "2026-12-06T11:00:00+07:00\n", "fetched_at": None, "as_of": None,
        "stale_since": "2026-12-06T11:00:00+07:00", "next_update_at": None, "source": None, "data": None,
    }
    errors = list(ecma_validator().iter_errors(doc))
    assert [list(e.path) for e in errors] == [["generated_at"]]
    doc["generated_at"] = "2026-12-06T11:00:00+07:00"
    assert not list(ecma_validator().iter_errors(doc))


def test_draws_are_deterministic_in_the_seed() -> None:
    a = [str(s) for s in draw_sequence(16, 0, clock_steps=True)]
    assert a == [str(s) for s in draw_sequence(16, 0, clock_steps=True)]
    assert a != [str(s) for s in draw_sequence(17, 0, clock_steps=True)]


def _require_faketime() -> None:
    if not faketime_available():
        if os.environ.get("CI"):
            pytest.fail("libfaketime is missing under CI (apt-get install faketime libfaketime)")
        pytest.skip("libfaketime not installed: the wall-clock steps cannot be made")


def test_faketime_steps_the_wall_clock_only(tmp_path: Path) -> None:
    """The clock seam the suite relies on: time.time and datetime.now follow the timestamp
    file at once, time.monotonic does not, and time.sleep still works."""
    _require_faketime()
    env, stamp = faketime_env(tmp_path)
    script = (
        "import sys, time, datetime\n"
        "stamp = sys.argv[1]\n"
        "w0, d0, m0 = time.time(), datetime.datetime.now(datetime.UTC).timestamp(), time.monotonic()\n"
        "open(stamp, 'w').write('-3600\\n')\n"
        "time.sleep(0.2)\n"
        "w1, d1, m1 = time.time(), datetime.datetime.now(datetime.UTC).timestamp(), time.monotonic()\n"
        "open(stamp, 'w').write('+86400\\n')\n"
        "w2, m2 = time.time(), time.monotonic()\n"
        "print(w1 - w0, d1 - d0, m1 - m0, w2 - w1, m2 - m1)\n"
    )
    p = subprocess.run([sys.executable, "-c", script, str(stamp)], env={**os.environ, **env},
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    dw, dd, dm, dw2, dm2 = (float(x) for x in p.stdout.split())
    assert -3600 - 5 < dw < -3600 + 5 and -3600 - 5 < dd < -3600 + 5
    assert 0.15 < dm < 5  # the monotonic clock saw only the real 0.2 s sleep
    assert 86400 + 3600 - 5 < dw2 < 86400 + 3600 + 5 and 0 <= dm2 < 5


def test_invariants_hold_through_random_sequences(tmp_path: Path) -> None:
    """Every invariant holds after every step of the seeded sequences within the budget."""
    if os.environ.get("CI") and not faketime_available():
        pytest.fail("libfaketime is missing under CI: the suite would run without wall-clock steps")
    seconds = float(os.environ.get("INVARIANTS_SECONDS", "60"))
    seed = os.environ.get("INVARIANTS_SEED", "16")
    lines: list[str] = []
    t0 = time.monotonic()
    outcome = run_suite(tmp_path, seed=seed, seconds=seconds, log=lines.append)
    print(outcome.summary(), f"elapsed={time.monotonic() - t0:.0f}s")
    print("\n".join(lines))
    assert outcome.sequences >= 1 and outcome.steps >= 1, "\n".join(lines)
    assert not outcome.violations, "\n\n".join(
        [outcome.summary(), *(str(v) for v in outcome.violations)]
    )


def test_simulator_hostile_extensions() -> None:
    """The simulator's additions the suite relies on: rewritten answers, the answer log, a 400
    for an oversized head, non-Latin-1 header values sent as UTF-8 bytes."""
    import socket

    import httpx

    from feeds.testing.upstream import UpstreamSimulator

    with UpstreamSimulator() as sim:
        url = sim.url("vietcombank")
        assert httpx.get(url).status_code == 200
        sim.set_rewrite("vietcombank", lambda body: body.replace(b"<DateTime>", b"<DateTime>X"))
        assert b"<DateTime>X" in httpx.get(url).content
        sim.set_rewrite("vietcombank", None)
        assert httpx.get(url, headers={"If-None-Match": '"' + "e" * 9000 + '"'}).status_code == 400
        sim.set_validators("vietcombank", last_modified="Thứ Hai, 07 Dec 2026 08:00:00 GMT")
        with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
            s.sendall(b"GET /Usercontrols/TVPortal.TyGia/pXML.aspx?b=10 HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
        assert "Last-Modified: Thứ Hai".encode() in head
        kinds = [(a.status, a.kind) for a in sim.answers("vietcombank")]
        assert kinds == [(200, "normal"), (200, "rewritten"), (400, "too_large"), (200, "normal")]
        assert sim.answers("vietcombank")[0].query == {"b": "10"}
