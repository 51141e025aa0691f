"""The invariant suite's machinery (issue 16, item 9): a real ``portal-feeds run`` against the
upstream simulator, driven through seeded random sequences of steps, with the invariants a
portal relies on checked after every step.

Used by ``tests/test_invariants.py`` (about 60 s in CI) and ``bench/invariants.py`` (longer).

A *sequence* is one daemon process from a cold start to SIGTERM, against its own simulator,
cache and snapshot folders.  Its steps are drawn up front from ``random.Random(f"{seed}:{n}")``
(the budget decides how many of them run, never what they are):

- upstream faults on one endpoint: 5xx, 429 with ``Retry-After`` (0, a past date, 1 s,
  2 s), garbage 200, truncated body, connection reset, latency past the timeout;
- hostile payloads, one real answer rewritten: Vietcombank ``<DateTime>`` in 9999, 0001,
  1905, 2100 (or a drawn year before 1911 / after 2100), a 400-digit rate; Open-Meteo
  ``current.time`` "9999-12-31T23:00" (and the other years), a 400-digit coordinate; each
  optionally followed by the bank or Open-Meteo answering 503 only;
- hostile validators on one answer, then plain answers: ``ETag: "v1\\xff"``, a non-ASCII
  ``Last-Modified``, a 9 KB ``ETag``;
- reloads (SIGHUP): the same file; only one feed's table changed; a feed added or removed;
- wall-clock steps with libfaketime (``FAKETIME_TIMESTAMP_FILE`` rewritten during the run,
  the monotonic clock untouched): -1 h, +1 day, back, small steps;
- the cache folder deleted (``rm -rf``) or random bytes written into its database;
- a published snapshot deleted or replaced by garbage;
- a second ``portal-feeds run`` on the same configuration (it must not run beside the first);
- a restart (SIGTERM, then ``run`` again on the same folders: the warm start republishes).

Invariants, checked after every step (``Harness.check``) and, for files, by a poller
reading them every 0.25 s:

1. every published JSON file (snapshots, per-location files) validates against the shipped
   schema with ECMA-262 regular-expression semantics (``ecma_regex``);
2. no file's ``fetched_at`` goes backwards (a backward wall-clock step of D lowers the bar by
   D: data fetched after it is stamped on the stepped clock);
3. every configured feed is attempted: its upstream saw a request within ``2*every +
   deadline`` plus the breaker cool-down, the capped Retry-After and slack; and ``status
   --json`` shows ``last_attempt_at`` no older than ``2*every + deadline`` (plus slack) and
   never in the future;
4. a file says ``fresh`` only if its data is young: ``fetched_at`` within the freshness
   window on the machine's clock, and the simulator really served that feed a good answer
   (200 as recorded, or 304) within the window of real time;
5. ``portal-feeds check`` is CRITICAL whenever a feed's file has not been rewritten
   (``generated_at``) for ``2*every + deadline`` plus slack; no negative durations in
   ``status``/``check``;
6. no ``Traceback`` in the daemon's log (nor in ``status``/``check``/a second instance);
7. never two requests to one host less than ``min_interval`` apart, never a request before
   the ``Retry-After`` the host asked for (capped by ``retry_after_max``) has passed;
8. one instance: a second ``run`` exits (non-zero) instead of running beside the first;
   SIGTERM ends the daemon with exit code 0;
9. never silently frozen: a feed whose upstream has answered normally (no fault, rewrite or
   validator of a step) for ``2*every + deadline`` plus cool-down, Retry-After and slack says
   ``fresh`` again.

Timing: assertions are on invariants with generous slack, never on exact counts; clock-based
checks wait a full liveness bound after a wall-clock step.

libfaketime: ``FAKETIME_DONT_FAKE_MONOTONIC=1`` keeps ``time.monotonic`` real, but then
libfaketime 0.9.10's ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`` fails with EINVAL,
which is how Python's ``time.sleep`` waits; a ``sitecustomize`` put on ``PYTHONPATH`` for the
faked processes only makes ``time.sleep`` wait on ``select()`` instead (same semantics).
Without libfaketime the wall-clock steps are not drawn (and under ``CI`` the test fails).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema

from feeds.testing.upstream import Fault, UpstreamSimulator

__all__ = [
    "FAKETIME_LIB",
    "Harness",
    "Outcome",
    "DECK",
    "draw_sequence",
    "parse_plan",
    "ecma_regex",
    "ecma_validator",
    "faketime_available",
    "run_suite",
]

FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")

# -- ECMA-262 regular expressions ------------------------------------------------------------
#: ECMA-262 WhiteSpace and LineTerminator (what ``\s`` means there).
_ECMA_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_CLASS_SETS = {"d": "0-9", "w": "A-Za-z0-9_", "s": _ECMA_SPACE}


def _translate_class(body: str) -> str:
    """A ``[...]`` body (without brackets) in ECMA terms, as a Python pattern."""
    negated = body.startswith("^")
    if negated:
        body = body[1:]
    pos: list[str] = []
    neg_sets: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            e = body[i + 1]
            if e in _CLASS_SETS:
                pos.append(_CLASS_SETS[e])
            elif e.lower() in _CLASS_SETS and e.isupper():
                neg_sets.append(_CLASS_SETS[e.lower()])
            else:
                pos.append(body[i : i + 2])
            i += 2
            continue
        if c == "[":
            pos.append("\\[")  # literal in ECMA; Python would warn of a nested set
        else:
            pos.append(c)
        i += 1
    inner = "".join(pos)
    if negated:
        if neg_sets:
            raise NotImplementedError("a negated class with \\D, \\W or \\S")
        return f"[^{inner}]"
    alts = ([f"[{inner}]"] if inner else []) + [f"[^{s}]" for s in neg_sets]
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def ecma_regex(pattern: str) -> re.Pattern[str]:
    """Compile a JSON Schema ``pattern`` with ECMA-262 semantics (no ``u``/``m`` flags).

    Python's ``re`` differs where it matters for a schema: ``\\d`` and ``\\w`` match any
    Unicode digit or letter (full-width ``２０２６`` passes ``\\d{4}``), ``$`` also matches
    before a final newline, ``.`` matches ``\\r``.  Translated: ``\\d`` -> ``[0-9]``, ``\\w`` ->
    ``[A-Za-z0-9_]``, ``\\s`` -> ECMA's whitespace, ``$`` -> ``\\Z``, ``.`` -> not a line
    terminator; ``\\b`` is ASCII (``re.ASCII``).
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            e = pattern[i + 1]
            if e in _CLASS_SETS:
                out.append(f"[{_CLASS_SETS[e]}]")
            elif e.lower() in _CLASS_SETS and e.isupper():
                out.append(f"[^{_CLASS_SETS[e.lower()]}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1  # ECMA: "[]" is an empty class; treat a leading "]" as Python does
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append(_translate_class(pattern[i + 1 : j]))
            i = j + 1
            continue
        if c == "$":
            out.append(r"\Z")
        elif c == ".":
            out.append("[^\n\r\u2028\u2029]")
        else:
            out.append(c)
        i += 1
    return re.compile("".join(out), re.ASCII)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _ecma_pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[jsonschema.ValidationError]:
    if not isinstance(instance, str):
        return
    rx = _PATTERNS.get(patrn)
    if rx is None:
        rx = _PATTERNS[patrn] = ecma_regex(patrn)
    if not rx.search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r} (ECMA-262)")


def ecma_validator() -> Any:
    """A Draft 2020-12 validator of the shipped snapshot schema, ``pattern`` in ECMA terms."""
    schema = json.loads(files("feeds").joinpath("schemas/snapshot-v1.schema.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern})
    return cls(schema)


# -- libfaketime -----------------------------------------------------------------------------
_SITECUSTOMIZE = '''"""Only for processes run under libfaketime by tests/invariants_support.py.

libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 fails clock_nanosleep(CLOCK_MONOTONIC,
TIMER_ABSTIME) with EINVAL, which is how time.sleep waits: wait on select() instead.
"""
import select as _select
import time as _time


def _sleep(seconds):
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    end = _time.monotonic() + seconds
    while True:
        left = end - _time.monotonic()
        if left <= 0:
            return
        _select.select([], [], [], left)


_time.sleep = _sleep
'''


def faketime_available() -> bool:
    return FAKETIME_LIB.exists()


def faketime_env(workdir: Path) -> tuple[dict[str, str], Path]:
    """Environment entries that put a process under libfaketime; and the timestamp file."""
    shim = workdir / "faketime-shim"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
    stamp = workdir / "faketime.txt"
    stamp.write_text("+0\n", encoding="utf-8")
    env = {
        "LD_PRELOAD": str(FAKETIME_LIB),
        "FAKETIME_TIMESTAMP_FILE": str(stamp),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "PYTHONPATH": os.pathsep.join([str(shim), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    return env, stamp


# -- configuration ---------------------------------------------------------------------------
EVERY = 3.0
MIN_INTERVAL = 0.5
DEADLINE = 2.0
TIMEOUT = 1.0
BREAKER_COOLDOWN = 1.0
RETRY_AFTER_MAX = 2.0
#: Slack for a loaded machine (2 cores shared): scheduling and subprocess start-up lag.
SLACK = 3.0
#: A feed must have been attempted within this (invariant 3, status) ...
ATTEMPT_BOUND = 2 * EVERY + DEADLINE + SLACK
#: ... and its upstream asked within this (breaker cool-down and Retry-After may hold it back).
REQUEST_BOUND = 2 * EVERY + DEADLINE + BREAKER_COOLDOWN + RETRY_AFTER_MAX + SLACK
#: A ``fresh`` file's data is at most this old: two intervals held back, one more interval
#: and a deadline until the failing attempt republishes, slack.
FRESH_BOUND = 2 * max(EVERY, MIN_INTERVAL) + EVERY + DEADLINE + SLACK
#: Request times are taken in the simulator's thread of the test process, which shares the GIL
#: with the poller: a request's time may be late by tens of milliseconds (a burst is ~ms apart).
HOST_TOLERANCE = 0.15
#: An upstream answering normally for this long has its feed ``fresh`` again (invariant 9).
RECOVER_BOUND = 2 * EVERY + DEADLINE + BREAKER_COOLDOWN + RETRY_AFTER_MAX + SLACK
#: A file not rewritten for this long means the feed stopped being refreshed (invariant 5).
REWRITE_BOUND = 2 * EVERY + DEADLINE + SLACK


@dataclass(frozen=True)
class FeedSpec:
    name: str
    endpoint: str
    lats: tuple[float, ...] = ()
    #: Per-location files the feed publishes (``<feed>/<id>.json``).
    location_ids: tuple[str, ...] = ()


RATES = FeedSpec("rates", "vietcombank")
WEATHER = FeedSpec("weather", "open-meteo", (21.03, 10.82, 16.05), ("ha-noi", "ho-chi-minh", "da-nang"))
WEATHER_B = FeedSpec("weather-b", "open-meteo", (12.24,))


def config_text(sim: UpstreamSimulator, workdir: Path, *, weather_max_stale: str, with_b: bool) -> str:
    common = (f'every = "{EVERY:g}s"\nmin_interval = "{MIN_INTERVAL:g}s"\ntimeout = "{TIMEOUT:g}s"\n'
              f'deadline = "{DEADLINE:g}s"\n')
    text = f"""[http]
breaker_cooldown = "{BREAKER_COOLDOWN:g}s"
retry_after_max = "{RETRY_AFTER_MAX:g}s"

[paths]
cache_dir = "{workdir / 'cache'}"
snapshot_dir = "{workdir / 'snapshots'}"

[feeds.rates]
kind = "vietcombank"
url = "{sim.url('vietcombank')}"
max_stale = "30s"
{common}
[feeds.weather]
kind = "open-meteo"
url = "{sim.url('open-meteo')}"
max_stale = "{weather_max_stale}"
per_location_files = true
{common}locations = [
  {{ id = "ha-noi", name = "Hà Nội", lat = 21.03, lon = 105.85 }},
  {{ id = "ho-chi-minh", name = "Hồ Chí Minh", lat = 10.82, lon = 106.63 }},
  {{ id = "da-nang", name = "Đà Nẵng", lat = 16.05, lon = 108.22 }},
]
"""
    if with_b:
        text += f"""
[feeds.weather-b]
kind = "open-meteo"
url = "{sim.url('open-meteo')}"
max_stale = "30s"
{common}locations = [{{ id = "nha-trang", name = "Nha Trang", lat = 12.24, lon = 109.19 }}]
"""
    return text


# -- hostile payloads ------------------------------------------------------------------------
VCB_DATES = ["12/31/9999 11:59:59 PM", "1/1/0001 1:00:00 AM", "6/15/1905 10:00:00 AM", "1/1/2100 9:00:00 AM",
             "1/1/1970 7:00:00 AM"]
OM_TIMES = ["9999-12-31T23:00", "0001-01-01T00:00", "1905-06-15T10:00", "2100-01-01T00:00"]
HUGE = "9" * 400


def _vcb_date(text: str) -> Callable[[bytes], bytes]:
    return lambda body: re.sub(rb"<DateTime>[^<]*</DateTime>", f"<DateTime>{text}</DateTime>".encode(), body, count=1)


def _vcb_huge_rate(body: bytes) -> bytes:
    return re.sub(rb'Transfer="[^"]*"', f'Transfer="{HUGE}"'.encode(), body, count=1)


def _om_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def rewrite(body: bytes) -> bytes:
        doc = json.loads(body)
        for item in doc if isinstance(doc, list) else [doc]:
            edit(item)
        # Numbers written as the upstream would: json writes a Python int digit by digit.
        return json.dumps(doc, ensure_ascii=False).replace(f'"{HUGE}"', HUGE).encode()

    return rewrite


def _om_time(text: str) -> Callable[[bytes], bytes]:
    return _om_edit(lambda item: item["current"].__setitem__("time", text))


def _om_huge(key: str) -> Callable[[bytes], bytes]:
    def edit(item: dict[str, Any]) -> None:
        if key == "latitude":
            item["latitude"] = HUGE
        else:
            item["current"][key] = HUGE

    return _om_edit(edit)


# -- steps -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One drawn step: ``kind`` and its parameters (all plain data, so a trail is printable)."""

    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params)
        return f"{self.kind}({args})"


def _years(rng: Any) -> int:
    return rng.choice([rng.randint(1, 1910), rng.randint(2101, 9999)])


def draw_step(rng: Any, *, clock_steps: bool) -> Step:
    """One step, drawn from ``rng`` (a ``random.Random``)."""
    kinds = ["fault", "fault", "fault", "hostile_date", "hostile_number", "validator", "reload_same",
             "reload_changed", "cache_rm", "cache_damage", "snapshot_damage", "second_instance", "restart",
             "quiet"]
    if clock_steps:
        kinds += ["clock", "clock"]
    kind = rng.choice(kinds)
    ep = rng.choice(["vietcombank", "open-meteo"])
    if kind == "fault":
        f = rng.choice(["503", "500", "429", "garbage", "truncated", "reset", "latency"])
        p: dict[str, Any] = {"endpoint": ep, "fault": f, "count": rng.choice([1, 3, 0])}  # 0: all step
        if f == "429":
            p["retry_after"] = rng.choice(["0", "1", "2", "past"])
        return Step(kind, tuple(p.items()))
    if kind == "hostile_date":
        if ep == "vietcombank":
            value = rng.choice(VCB_DATES + ["drawn"])
            if value == "drawn":
                y = _years(rng)
                value = f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{y:04d} {rng.randint(1, 12)}:00:00 AM"
        else:
            value = rng.choice(OM_TIMES + ["drawn"])
            if value == "drawn":
                value = f"{_years(rng):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00"
        return Step(kind, (("endpoint", ep), ("value", value), ("then_503", rng.random() < 0.5)))
    if kind == "hostile_number":
        where = "rate" if ep == "vietcombank" else rng.choice(["latitude", "temperature_2m"])
        return Step(kind, (("endpoint", ep), ("where", where), ("then_503", rng.random() < 0.5)))
    if kind == "validator":
        v = rng.choice(["etag_ff", "lm_non_ascii", "etag_9k"])
        return Step(kind, (("endpoint", ep), ("validator", v)))
    if kind == "reload_changed":
        return Step(kind, (("change", rng.choice(["weather_table", "toggle_b"])),))
    if kind == "cache_damage":
        return Step(kind, (("offsets", tuple(rng.randint(0, 200_000) for _ in range(4))),
                           ("seed", rng.randint(0, 2**31))))
    if kind == "snapshot_damage":
        return Step(kind, (("feed", rng.choice(["rates", "weather", "weather/ha-noi"])),
                           ("how", rng.choice(["delete", "garbage"]))))
    if kind == "clock":
        return Step(kind, (("offset", rng.choice([-3600, 86400, 0, -300, 600, -86400])),))
    return Step(kind)


#: The issue's reproductions, one step each: every seed deals them out first (in its own
#: order, over its first sequences), so a short budget still meets as many as it has time for.
DECK: tuple[Step, ...] = (
    Step("reload_same"),
    Step("reload_changed", (("change", "weather_table"),)),
    Step("clock", (("offset", -3600),)),
    Step("clock_roundtrip", (("offset", 86400),)),
    Step("hostile_date", (("endpoint", "vietcombank"), ("value", "12/31/9999 11:59:59 PM"), ("then_503", True))),
    Step("hostile_date", (("endpoint", "vietcombank"), ("value", "1/1/0001 1:00:00 AM"), ("then_503", False))),
    Step("hostile_date", (("endpoint", "vietcombank"), ("value", "6/15/1905 10:00:00 AM"), ("then_503", False))),
    Step("hostile_date", (("endpoint", "open-meteo"), ("value", "9999-12-31T23:00"), ("then_503", True))),
    Step("hostile_number", (("endpoint", "open-meteo"), ("where", "latitude"), ("then_503", False))),
    Step("validator", (("endpoint", "vietcombank"), ("validator", "etag_ff"))),
    Step("validator", (("endpoint", "vietcombank"), ("validator", "etag_9k"))),
    Step("validator", (("endpoint", "vietcombank"), ("validator", "lm_non_ascii"))),
    Step("fault", (("endpoint", "vietcombank"), ("fault", "429"), ("count", 0), ("retry_after", "0"))),
    Step("cache_rm_second"),
    Step("restart"),
    Step("snapshot_damage", (("feed", "rates"), ("how", "garbage"))),
    Step("cache_damage", (("offsets", (4096, 8192, 40000, 100000)), ("seed", 16))),
)


def draw_sequence(seed: int | str, index: int, *, clock_steps: bool, max_steps: int = 10) -> list[Step]:
    """The steps of sequence ``index`` (deterministic in ``seed``): the seed's shuffled
    ``DECK`` dealt out over the first sequences, then random draws."""
    import random

    deck = [s for s in DECK if clock_steps or not s.kind.startswith("clock")]
    random.Random(f"{seed}:deck").shuffle(deck)
    dealt = 0
    for i in range(index + 1):
        rng = random.Random(f"{seed}:{i}")
        n = rng.randint(max_steps // 2, max_steps)
        mine = deck[dealt : dealt + n]
        dealt += len(mine)
        steps = mine + [draw_step(rng, clock_steps=clock_steps) for _ in range(n - len(mine))]
    return steps


def parse_plan(text: str) -> list[Step]:
    """``kind[:key=value,...];...`` (values as Python literals, else strings) -> steps."""
    import ast

    out = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        kind, _, args = part.partition(":")
        params = []
        for kv in filter(None, args.split(",")):
            k, _, v = kv.partition("=")
            try:
                value: Any = ast.literal_eval(v)
            except (ValueError, SyntaxError):
                value = v
            params.append((k.strip(), value))
        out.append(Step(kind.strip(), tuple(params)))
    return out


# -- the harness -----------------------------------------------------------------------------
@dataclass
class Violation:
    sequence: int
    step: int
    trail: list[str]
    what: str
    repeats: int = 0

    def __str__(self) -> str:
        again = f" (seen again at {self.repeats} later checks)" if self.repeats else ""
        return f"seq {self.sequence} step {self.step} [{' -> '.join(self.trail[-8:])}]: {self.what}{again}"


@dataclass
class Outcome:
    seed: int | str
    seconds: float
    sequences: int = 0
    steps: int = 0
    checks: int = 0
    violations: list[Violation] = field(default_factory=list)
    clock_steps: bool = False

    def summary(self) -> str:
        return (f"invariants: seed={self.seed} budget={self.seconds:g}s sequences={self.sequences} "
                f"steps={self.steps} checks={self.checks} violations={len(self.violations)} "
                f"clock_steps={'on' if self.clock_steps else 'off (no libfaketime)'}")


def _parse_ts(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError):
        return None


class Harness:
    """One sequence: simulator, daemon, poller, steps, checks."""

    def __init__(self, workdir: Path, *, seq: int, use_faketime: bool, log: Callable[[str], None]) -> None:
        self.workdir = workdir
        self.seq = seq
        self.log = log
        self.validator = ecma_validator()
        self.sim = UpstreamSimulator().start()
        self.use_faketime = use_faketime
        self.offset = 0.0
        self.last_clock_step = -1e9
        #: The daemon's clock at the last backward step (the bar for a time stamped before it).
        self.back_step_wall = -1e18
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")}
        self.stamp: Path | None = None
        if use_faketime:
            extra, self.stamp = faketime_env(workdir)
            self.env.update(extra)
        self.weather_max_stale = "30s"
        self.with_b = False
        #: Real (monotonic) time since which each feed has been configured.
        self.configured_since: dict[str, float] = {}
        self.cfg = workdir / "portal-feeds.toml"
        self.snapshots = workdir / "snapshots"
        self.cache = workdir / "cache"
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = workdir / "daemon.log"
        self.trail: list[str] = []
        self.violations: list[Violation] = []
        self.step_no = 0
        self.seen_violation: dict[str, Violation] = {}
        # poller state
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.fetched: dict[str, float] = {}  # path -> highest fetched_at seen (bar lowered on back steps)
        self.generated: dict[str, tuple[str, float]] = {}  # feed -> (generated_at text, real t of change)
        self._traceback_seen = 0
        self.host_checked = 0.0
        #: Garbage we wrote over a file, so the poller does not judge it before the daemon can.
        self._garbage: dict[str, bytes] = {}
        self.checks_run = 0
        #: Endpoints the current step disturbs, and when each was last disturbed (invariant 9).
        self.disturbing: set[str] = set()
        self.disturbed: dict[str, float] = {}
        self.started = time.monotonic()

    # -- plumbing --------------------------------------------------------------------------
    def feeds(self) -> list[FeedSpec]:
        return [RATES, WEATHER] + ([WEATHER_B] if self.with_b else [])

    def violate(self, what: str, key: str | None = None) -> None:
        """Record a violation; the same ``key`` again only counts (the first one has the trail)."""
        key = key or what
        with self._lock:
            first = self.seen_violation.get(key)
            if first is not None:
                first.repeats += 1
                return
            v = Violation(self.seq, self.step_no, list(self.trail), what)
            self.seen_violation[key] = v
            self.violations.append(v)
        self.log(f"VIOLATION {v}")

    def write_config(self) -> None:
        text = config_text(self.sim, self.workdir, weather_max_stale=self.weather_max_stale, with_b=self.with_b)
        tmp = self.cfg.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.cfg)
        now = time.monotonic()
        for f in self.feeds():
            self.configured_since.setdefault(f.name, now)
        for name in list(self.configured_since):
            if name not in {f.name for f in self.feeds()}:
                del self.configured_since[name]

    def wall_now(self) -> float:
        """What the daemon's machine clock says (real time plus the libfaketime offset)."""
        return time.time() + self.offset

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "feeds", *args, "--config", str(self.cfg)],
                              cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=timeout)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> bool:
        self.write_config()
        self.started = time.monotonic()
        out = self.logfile.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "feeds", "run", "--config", str(self.cfg)],
                                     cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.trail.append("start")
        end = time.monotonic() + 40
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.violate(f"daemon exited at start with {self.proc.returncode}: {self.log_tail()}")
                return False
            if all((self.snapshots / f"{f.name}.json").exists() for f in self.feeds()) and all(
                self.feed_requests(f) for f in self.feeds()
            ):
                break
            time.sleep(0.2)
        else:
            self.violate("no snapshot or no first request within 40 s of the start")
            return False
        self.started = time.monotonic()  # bounds count from a running daemon
        for f in self.feeds():
            self.configured_since[f.name] = self.started
        self._poller = threading.Thread(target=self._poll, name="invariants-poller", daemon=True)
        self._poller.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=20)
                if code != 0:
                    self.violate(f"SIGTERM ended the daemon with exit code {code}")
            except subprocess.TimeoutExpired:
                self.violate("the daemon did not stop within 20 s of SIGTERM")
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.check_log()
        self.sim.stop()

    def log_tail(self, n: int = 20) -> str:
        try:
            lines = self.logfile.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    # -- the poller (invariants 1-2 between checks, and the rewrite times for 5) --------------
    def _poll(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.scan_files(strict=False)
            except Exception as exc:  # the poller must not die silently
                self.violate(f"poller error {type(exc).__name__}: {exc}", key="poller")

    def snapshot_files(self) -> list[Path]:
        names = {f.name for f in self.feeds()}
        out = []
        for p in sorted(self.snapshots.rglob("*.json")):
            rel = p.relative_to(self.snapshots)
            top = rel.parts[0].removesuffix(".json")
            if top in names and not p.name.startswith("."):
                out.append(p)
        return out

    def scan_files(self, *, strict: bool) -> None:
        """Read every published file; ``strict``: also require each feed's file to be there."""
        for f in self.feeds():
            for rel in [f"{f.name}.json", *(f"{f.name}/{i}.json" for i in f.location_ids)]:
                if strict and not (self.snapshots / rel).exists():
                    self.violate(f"{rel} missing", key=f"missing:{rel}")
        for p in self.snapshot_files():
            rel = str(p.relative_to(self.snapshots))
            try:
                raw = p.read_bytes()
            except FileNotFoundError:
                continue
            if raw == self._garbage.get(rel):
                continue  # our own garbage, not yet rewritten (judged by the strict scan)
            try:
                doc = json.loads(raw)
            except ValueError:
                if strict:
                    self.violate(f"{rel} is not JSON: {raw[:80]!r}", key=f"json:{rel}")
                continue
            errors = sorted(self.validator.iter_errors(doc), key=lambda e: list(e.path))
            if errors:
                msgs = "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:3])
                self.violate(f"{rel} fails the schema: {msgs}", key=f"schema:{rel}:{msgs[:60]}")
            if not isinstance(doc, dict):
                continue
            fetched = _parse_ts(doc.get("fetched_at"))
            back = 0.0
            with self._lock:
                prev = self.fetched.get(rel)
                if fetched is not None:
                    if prev is not None and fetched < prev - 0.001:
                        back = prev - fetched
                    if prev is None or fetched != prev:
                        # A time ahead of the daemon's clock was stamped before a backward
                        # step (the poller may read such a file only after the step): its
                        # bar is the stepped clock at the step, as for the files read before.
                        if fetched > self.wall_now() + 2.0:
                            fetched = min(fetched, self.back_step_wall)
                        self.fetched[rel] = fetched
                if "/" not in rel:
                    gen = doc.get("generated_at")
                    name = rel.removesuffix(".json")
                    old = self.generated.get(name)
                    if isinstance(gen, str) and (old is None or old[0] != gen):
                        self.generated[name] = (gen, time.monotonic())
            if back:
                self.violate(f"{rel} fetched_at went backwards by {back:.0f}s (now {doc.get('fetched_at')})",
                             key=f"back:{rel}")

    # -- requests --------------------------------------------------------------------------
    def feed_requests(self, f: FeedSpec) -> list[float]:
        return [r.at for r in self.sim.requests(f.endpoint) if self._is_of(f, r.query)]

    def _is_of(self, f: FeedSpec, query: dict[str, str]) -> bool:
        if not f.lats:
            return True
        try:
            lats = {round(float(x), 4) for x in query.get("latitude", "").split(",") if x}
        except ValueError:
            return False
        return bool(lats & {round(x, 4) for x in f.lats})

    # -- checks ----------------------------------------------------------------------------
    def check(self) -> None:
        """Every invariant, now."""
        now = time.monotonic()
        self.scan_files(strict=True)
        since_clock = now - self.last_clock_step
        # 3. attempted: the upstream saw the feed's requests.
        for f in self.feeds():
            up_for = now - max(self.configured_since.get(f.name, now), self.started)
            if up_for < REQUEST_BOUND:
                continue
            reqs = self.feed_requests(f)
            last = max(reqs) if reqs else None
            if last is None or now - last > REQUEST_BOUND:
                ago = "never" if last is None else f"{now - last:.1f}s ago"
                self.violate(f"{f.name}: no request for {up_for if last is None else now - last:.1f}s "
                             f"(bound {REQUEST_BOUND:g}s; last {ago})", key=f"norequest:{f.name}")
        # 4. fresh only if young (ground truth from the simulator's answers, and the clock).
        good_at: dict[str, float] = {}
        for f in self.feeds():
            ok = [a.at for a in self.sim.answers(f.endpoint)
                  if a.kind in ("normal", "not_modified") and self._is_of(f, a.query)]
            good_at[f.name] = max(ok) if ok else -1e9
        for p in self.snapshot_files():
            rel = str(p.relative_to(self.snapshots))
            name = rel.split("/")[0].removesuffix(".json")
            try:
                doc = json.loads(p.read_bytes())
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict) or doc.get("status") != "fresh":
                continue
            truth_age = time.monotonic() - good_at.get(name, -1e9)
            if truth_age > FRESH_BOUND:
                self.violate(f"{rel} says fresh, but the upstream served no good answer for {truth_age:.0f}s "
                             f"(bound {FRESH_BOUND:g}s; fetched_at {doc.get('fetched_at')})",
                             key=f"freshtruth:{rel}")
            fetched = _parse_ts(doc.get("fetched_at"))
            if since_clock >= REWRITE_BOUND and fetched is not None:
                age = self.wall_now() - fetched
                if age > FRESH_BOUND or age < -SLACK:
                    self.violate(f"{rel} says fresh with data age {age:.0f}s on the machine's clock "
                                 f"(window {FRESH_BOUND:g}s; fetched_at {doc.get('fetched_at')})",
                                 key=f"freshclock:{rel}")
        # 9. recovery: an upstream answering normally again has its feeds fresh again.
        for f in self.feeds():
            calm = now - max(self.disturbed.get(f.endpoint, -1e9), self.configured_since.get(f.name, now),
                             self.started, self.last_clock_step)
            if calm < RECOVER_BOUND:
                continue
            try:
                doc = json.loads((self.snapshots / f"{f.name}.json").read_bytes())
            except (OSError, ValueError):
                continue  # judged by invariant 1
            if isinstance(doc, dict) and doc.get("status") != "fresh":
                self.violate(f"{f.name}.json says {doc.get('status')!r} although its upstream has answered "
                             f"normally for {calm:.0f}s (bound {RECOVER_BOUND:g}s)", key=f"recover:{f.name}")
        # 3 (status) and 5 (check).
        stalled = []
        t_check = time.monotonic()
        with self._lock:
            for f in self.feeds():
                g = self.generated.get(f.name)
                since = max(self.configured_since.get(f.name, t_check), self.started, g[1] if g else -1e9)
                if t_check - since > REWRITE_BOUND:
                    stalled.append(f"{f.name} (not rewritten for {t_check - since:.0f}s)")
        st = self.cli("status", "--json")
        ck = self.cli("check")
        self.checks_run += 1
        for label, proc in (("status", st), ("check", ck)):
            if "Traceback" in proc.stdout + proc.stderr:
                self.violate(f"`{label}` printed a traceback: {(proc.stdout + proc.stderr)[-600:]}",
                             key=f"tb:{label}")
        if stalled and ck.returncode != 2:
            self.violate(f"check exited {ck.returncode}, not CRITICAL, while {', '.join(stalled)}: "
                         f"{ck.stdout.strip()[:300]}", key="check")
        if re.search(r"(?<![\w'])-\d+(\.\d+)?s\b", ck.stdout.split(" | ")[0]):
            self.violate(f"check shows a negative duration: {ck.stdout.strip()[:300]}", key="negcheck")
        try:
            rows = {r["feed"]: r for r in json.loads(st.stdout)["feeds"]}
        except (ValueError, KeyError, TypeError):
            # Not an invariant by itself (a cache being rebuilt reads as UNKNOWN); the status
            # checks wait for the next step.
            self.log(f"    note: status --json unreadable (exit {st.returncode}): {(st.stdout + st.stderr)[:200]}")
            rows = {}
        for f in self.feeds():
            r = rows.get(f.name)
            if r is None:
                continue
            age = r.get("data_age_s")
            if isinstance(age, (int, float)) and age < 0:
                self.violate(f"status shows {f.name} data_age_s={age}", key=f"negage:{f.name}")
            up_for = t_check - max(self.configured_since.get(f.name, t_check), self.started)
            last = _parse_ts(r.get("last_attempt_at"))
            if up_for >= ATTEMPT_BOUND and since_clock >= ATTEMPT_BOUND:
                lag = None if last is None else self.wall_now() - last
                if lag is None or lag > ATTEMPT_BOUND or lag < -SLACK:
                    self.violate(f"status: {f.name} last_attempt_at={r.get('last_attempt_at')} "
                                 f"({'never' if lag is None else f'{lag:.0f}s ago'}; bound {ATTEMPT_BOUND:g}s)",
                                 key=f"attempt:{f.name}")
        # 6. traceback; 7. politeness.
        self.check_log()
        self.check_host()

    def check_log(self) -> None:
        try:
            text = self.logfile.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        n = text.count("Traceback")
        if n > self._traceback_seen:
            i = -1
            for _ in range(self._traceback_seen + 1):
                i = text.find("Traceback", i + 1)
            self._traceback_seen = n
            lines = text[i:].splitlines()
            # The exception line: the first one after the traceback's indented frames.
            exc = next((ln for ln in lines[1:] if ln and not ln.startswith(" ")), "?")
            before = text[:i].splitlines()[-1:] or [""]
            self.violate(f"Traceback in the daemon's log after {before[0][:160]!r}: {exc[:300]}",
                         key=f"traceback:{exc[:200]}")

    def check_host(self) -> None:
        events = []
        for ep in ("vietcombank", "open-meteo"):
            events += [(r.at, "req", ep) for r in self.sim.requests(ep)]
            events += [(a.at, "ra", a.retry_after) for a in self.sim.answers(ep) if a.retry_after]
        events.sort(key=lambda e: e[0])
        last_req: float | None = None
        hold_until = -1e9
        hold_from = ""
        for at, kind, what in events:
            if kind == "ra":
                try:
                    secs = float(what)
                except ValueError:
                    secs = 0.0  # an HTTP date: ours are in the past
                secs = min(secs, RETRY_AFTER_MAX)
                if secs > 0:
                    hold_until, hold_from = at + secs, str(what)
                continue
            if at < self.host_checked:
                last_req = at
                continue
            if last_req is not None and at - last_req < MIN_INTERVAL - HOST_TOLERANCE:
                self.violate(f"two requests to 127.0.0.1 {1000 * (at - last_req):.0f} ms apart "
                             f"(min_interval {MIN_INTERVAL:g}s; the second to {what})",
                             key="host")
            if at < hold_until - 0.1:
                self.violate(f"a request to 127.0.0.1 {hold_until - at:.2f}s before the Retry-After: {hold_from} "
                             f"it was asked to wait (capped at {RETRY_AFTER_MAX:g}s) had passed",
                             key="retryafter")
            last_req = at
        if events:
            self.host_checked = events[-1][0] - 5.0  # re-read a margin: answers are logged after requests

    # -- steps -----------------------------------------------------------------------------
    def clear(self) -> None:
        now = time.monotonic()
        for ep in ("vietcombank", "open-meteo"):
            if ep in self.disturbing:
                self.disturbed[ep] = now
        self.disturbing = set()
        for ep in ("vietcombank", "open-meteo"):
            self.sim.clear_faults(ep)
            self.sim.set_rewrite(ep, None)
            self.sim.set_validators(ep)

    def run_step(self, step: Step, *, dwell: float) -> None:
        """Apply ``step``, let the daemon live with it for ``dwell`` seconds."""
        self.step_no += 1
        self.trail.append(str(step))
        self.clear()
        k = step.kind
        ep = step.get("endpoint")
        if ep is not None:
            self.disturbing.add(ep)
            self.disturbed[ep] = time.monotonic()
        t0 = time.monotonic()
        if k == "fault":
            faults = {
                "503": lambda: Fault.status(503), "500": lambda: Fault.status(500),
                "garbage": Fault.garbage, "truncated": lambda: Fault.truncated(0.5), "reset": Fault.reset,
                "latency": lambda: Fault.latency(TIMEOUT + 0.5),
                "429": lambda: Fault.status(429, retry_after=self._retry_after(str(step.get("retry_after")))),
            }
            make = faults[str(step.get("fault"))]
            n = step.get("count")
            if n == 0:
                self.sim.set_faults(ep, [make()], repeat_last=True)
            else:
                self.sim.set_faults(ep, [make() for _ in range(n)])
        elif k in ("hostile_date", "hostile_number"):
            if k == "hostile_date":
                rw = _vcb_date(step.get("value")) if ep == "vietcombank" else _om_time(step.get("value"))
            else:
                rw = _vcb_huge_rate if ep == "vietcombank" else _om_huge(step.get("where"))
            self.sim.set_rewrite(ep, rw)
            if step.get("then_503"):
                self._sleep(dwell / 2)
                self.sim.set_rewrite(ep, None)
                self.sim.set_faults(ep, [Fault.status(503)], repeat_last=True)
        elif k == "validator":
            n0 = len(self.sim.answers(ep))
            v = step.get("validator")
            if v == "etag_ff":
                self.sim.set_validators(ep, etag='"v1\xff"')
            elif v == "lm_non_ascii":
                self.sim.set_validators(ep, last_modified="Thứ Hai, 07 Dec 2026 08:00:00 GMT")
            else:
                self.sim.set_validators(ep, etag='"' + "e" * 9000 + '"')
            # One answer with it, then plain answers (the validator is gone upstream).
            self._until(lambda: self._validator_sent(ep, n0), dwell / 2)
            self.sim.set_validators(ep)
        elif k == "reload_same":
            self._hup()
        elif k == "reload_changed":
            if step.get("change") == "weather_table":
                self.weather_max_stale = "40s" if self.weather_max_stale == "30s" else "30s"
            else:
                self.with_b = not self.with_b
            self.write_config()
            self._hup()
        elif k == "clock":
            self.set_offset(float(step.get("offset")))
        elif k == "clock_roundtrip":
            back_to = self.offset
            self.set_offset(float(step.get("offset")))
            self._sleep(dwell / 2)
            self.set_offset(back_to)
        elif k == "cache_rm":
            shutil.rmtree(self.cache, ignore_errors=True)
        elif k == "cache_rm_second":
            shutil.rmtree(self.cache, ignore_errors=True)
            self._second_instance()
        elif k == "cache_damage":
            self._damage_cache(step.get("offsets"), step.get("seed"))
        elif k == "snapshot_damage":
            p = self.snapshots / f"{step.get('feed')}.json"
            if step.get("how") == "delete":
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            elif p.parent.exists():
                junk = b"\x00garbage{" + bytes(range(256))
                self._garbage[str(p.relative_to(self.snapshots))] = junk
                p.write_bytes(junk)
        elif k == "second_instance":
            self._second_instance()
        elif k == "restart":
            self._restart()
        self._sleep(max(0.0, dwell - (time.monotonic() - t0)))

    def _retry_after(self, value: str) -> str:
        if value == "past":
            return email.utils.formatdate(time.time() - 3600, usegmt=True)
        return value

    def _validator_sent(self, ep: str, n0: int) -> bool:
        sent = [(k, v) for a in self.sim.answers(ep)[n0:] if a.status == 200 for k, v in a.headers]
        return any(k in ("ETag", "Last-Modified") and ("\xff" in v or len(v) > 1000 or not v.isascii())
                   for k, v in sent)

    def _until(self, pred: Callable[[], bool], timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not pred():
            time.sleep(0.1)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(0.25, max(0.0, end - time.monotonic())))
            if self.proc is not None and self.proc.poll() is not None:
                self.violate(f"the daemon exited with {self.proc.returncode}: {self.log_tail()}", key="exited")
                return

    def _hup(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def set_offset(self, offset: float) -> None:
        assert self.stamp is not None
        back = self.offset - offset
        self.stamp.write_text(f"{offset:+.0f}\n", encoding="utf-8")
        with self._lock:
            if back > 0:
                # Data fetched after a backward step is stamped on the stepped clock.
                for rel in self.fetched:
                    self.fetched[rel] -= back
                # Whole seconds: snapshot times are written to the second (truncated).
                self.back_step_wall = float(math.floor(time.time() + offset))
            self.offset = offset
            self.last_clock_step = time.monotonic()

    def _damage_cache(self, offsets: tuple[int, ...], seed: int) -> None:
        import random

        from feeds.store import DB_NAME

        db = self.cache / DB_NAME
        rng = random.Random(seed)
        with contextlib.suppress(OSError), db.open("r+b") as fh:
            size = db.stat().st_size
            for off in offsets:
                fh.seek(off % max(1, size))
                fh.write(rng.randbytes(64))

    def _restart(self) -> None:
        """SIGTERM (exit 0 expected), then a new ``run`` on the same folders (warm start)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.violate("the daemon did not stop within 20 s of SIGTERM", key="sigterm")
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        if code != 0:
            self.violate(f"SIGTERM ended the daemon with exit code {code}: {self.log_tail()}", key="sigterm")
        with self.logfile.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "feeds", "run", "--config", str(self.cfg)],
                                         cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def _second_instance(self) -> None:
        out = self.workdir / "second.log"
        with out.open("wb") as fh:
            p = subprocess.Popen([sys.executable, "-m", "feeds", "run", "--config", str(self.cfg)],
                                 cwd=self.workdir, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        try:
            code = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)
            if p.poll() is None:
                p.kill()
                p.wait()
            self.violate("a second `portal-feeds run` on the same configuration ran beside the first "
                         "for 10 s (one instance)", key="second")
            return
        text = out.read_text(encoding="utf-8", errors="replace")
        if code == 0 or "Traceback" in text:
            self.violate(f"a second `portal-feeds run` exited {code}: {text[-400:]}", key="second")


def run_suite(workdir: Path, *, seed: int | str, seconds: float, log: Callable[[str], None] = print,
              dwell: float = 3.5, use_faketime: bool | None = None, max_sequences: int | None = None,
              plan: list[Step] | None = None) -> Outcome:
    """Run sequences until ``seconds`` are spent; return what was run and seen."""
    use_faketime = faketime_available() if use_faketime is None else use_faketime
    out = Outcome(seed=seed, seconds=seconds, clock_steps=use_faketime)
    t_end = time.monotonic() + seconds
    index = 0
    while time.monotonic() < t_end - 15 and (max_sequences is None or index < max_sequences):
        steps = plan if plan is not None else draw_sequence(seed, index, clock_steps=use_faketime)
        d = workdir / f"seq{index}"
        d.mkdir(parents=True, exist_ok=True)
        h = Harness(d, seq=index, use_faketime=use_faketime, log=log)
        log(f"sequence {index}: {len(steps)} steps drawn")
        try:
            if h.start():
                out.sequences += 1
                for step in steps:
                    # A step: dwell (two dwells for a hostile answer then 503s), then checks (~3 s).
                    long = step.kind.startswith("hostile") or step.kind == "clock_roundtrip"
                    need = dwell * (2 if long else 1) + 4
                    if time.monotonic() + need > t_end - 3:
                        break
                    log(f"  step {h.step_no + 1}: {step}")
                    h.run_step(step, dwell=dwell * (2 if long else 1))
                    h.check()
                    out.steps += 1
        finally:
            h.stop()
            out.checks += h.checks_run
            out.violations += h.violations
        index += 1
    return out
