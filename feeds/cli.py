"""The ``portal-feeds`` command line.

Exit codes: 0 all feeds fresh / OK, 1 a feed was published degraded or a folder cannot be
written (a local fault), 2 usage error, 3 ``status`` could not read the feed health, 75
(EX_TEMPFAIL) the daemon or another fetch holds the cache (or its lock cannot be created),
78 (EX_CONFIG) configuration error (docs/cli.md).  A folder that exists but cannot be written
is a local fault, never 78: ``run`` starts anyway and retries (``feeds.folders``).  ``check`` follows the Nagios plugin conventions
(0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).  No traceback is printed for an expected failure.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from feeds import __version__

if TYPE_CHECKING:
    # The configuration (and asyncio, the store under it) is imported by ``main`` once the
    # command is known: ``run`` imports it with the cyclic garbage collector off (issue 20).
    from feeds.config import Config
    from feeds.folders import FolderCheck

__all__ = ["main"]

EX_OK = 0
EX_DEGRADED = 1
#: A usage error: an unknown option, command or feed name (argparse's own code).
EX_USAGE = 2
#: ``status``: the feed health cannot be read; ``check``: UNKNOWN.
EX_CANNOT_READ = 3
#: Another process (the daemon, or another fetch) holds the cache: try again later.
EX_TEMPFAIL = 75
#: A configuration error (``feeds.config.EX_CONFIG``, sysexits' EX_CONFIG).
EX_CONFIG = 78
#: Interrupted by Ctrl-C.
EX_INTERRUPTED = 130

#: Every exit code and what it means (docs/cli.md "Exit codes" lists exactly these).
EXIT_CODES: dict[int, str] = {
    EX_OK: "OK",
    EX_DEGRADED: "degraded or a local fault; check: WARNING",
    EX_USAGE: "usage error; check: CRITICAL",
    EX_CANNOT_READ: "status cannot read the feed health; check: UNKNOWN",
    EX_TEMPFAIL: "another process holds the cache",
    EX_CONFIG: "configuration error",
    EX_INTERRUPTED: "interrupted",
}
#: The exit codes of each command (the README's command table lists exactly these; 130, an
#: interruption, is left out there).
COMMAND_EXITS: dict[str, tuple[int, ...]] = {
    "fetch": (EX_OK, EX_DEGRADED, EX_USAGE, EX_TEMPFAIL, EX_CONFIG),
    "run": (EX_OK, EX_USAGE, EX_TEMPFAIL, EX_CONFIG),
    "status": (EX_OK, EX_DEGRADED, EX_USAGE, EX_CANNOT_READ, EX_CONFIG),
    "check": (EX_OK, EX_DEGRADED, EX_USAGE, EX_CANNOT_READ),
    "check-config": (EX_OK, EX_USAGE, EX_CONFIG),
    "install-widget": (EX_OK, EX_DEGRADED, EX_USAGE),
    "demo": (EX_OK, EX_USAGE),
    "history": (EX_OK, EX_DEGRADED, EX_USAGE, EX_CONFIG),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="portal-feeds",
        description="Fetch exchange rates and weather for public portals and publish JSON snapshots.",
    )
    p.add_argument("--version", action="version", version=f"portal-feeds {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--config", metavar="PATH", help="configuration file (default: config/portal-feeds.toml, else /etc/portal-feeds/portal-feeds.toml, else built-in defaults)")
        sp.add_argument("-v", "--verbose", action="store_true", help="log every step")
        return sp

    f = add("fetch", "Make one attempt at each feed and publish its snapshot.")
    f.add_argument("feeds", nargs="*", metavar="NAME", help="feeds to fetch (default: all)")
    f.add_argument(
        "--force", action="store_true",
        help="ask the named feeds' upstreams now, once: one request each, ignoring the politeness "
             "window (min_interval, Retry-After) and an open circuit breaker",
    )
    add("check-config", "Validate the configuration without fetching.")
    add("run", "Run the daemon: scheduled fetches, warm start, systemd notify.")
    s = add("status", "Show every feed's health.")
    s.add_argument("--json", action="store_true", help="print a JSON object (docs/cli.md)")
    c = add("check", "Nagios/Icinga plugin: one status line, exit 0/1/2/3.")
    c.add_argument("feeds", nargs="*", metavar="NAME", help="feeds to check (default: all)")
    w = sub.add_parser(
        "install-widget",
        help="Copy the widget files and demo pages into a web root; print the two lines to paste.",
        description="Copy portal-feeds.js/.css to DIR/widget/ and the demo pages to DIR/demo/, "
                    "then print the two lines a portal page needs.",
    )
    w.add_argument("dir", metavar="DIR", help="the web root (created if missing)")
    w.add_argument("--url", default="/widget/", metavar="PREFIX",
                   help="the URL DIR/widget/ is served at (default /widget/)")
    d = add("demo", "Offline demo: a local upstream simulator, the daemon and a scripted outage.")
    d.add_argument("--seconds", type=float, default=40.0, help="how long the story runs (default 40, at most 85)")
    d.add_argument("--keep", action="store_true", help="keep the temporary folder (snapshots, cache)")
    from feeds.history_cli import add_parser as add_history

    add_history(add)
    return p


def install_widget(target: str, url: str) -> int:
    """``install-widget``: copy the packaged widget files and demo pages; 0, or 1 and one sentence."""
    from importlib.resources import files
    from importlib.resources.abc import Traversable
    from pathlib import Path

    pkg = files("feeds")
    copies: list[tuple[Traversable, tuple[str, ...], Path]] = [(pkg.joinpath("widget"), ("portal-feeds.js", "portal-feeds.css"), Path(target) / "widget")]
    demo = pkg.joinpath("data/widget-demo")
    copies.append((demo, tuple(sorted(e.name for e in demo.iterdir() if e.is_file())), Path(target) / "demo"))
    try:
        for src, names, dest in copies:
            for folder in [*reversed(dest.parents[:2]), dest]:
                if not folder.exists():
                    folder.mkdir()
                    folder.chmod(0o755)  # a web server reads it, whatever the umask
            for name in names:
                out = dest / name
                out.write_bytes(src.joinpath(name).read_bytes())
                out.chmod(0o644)
    except OSError as exc:
        from feeds.config import _os_words

        print(f"portal-feeds: cannot install the widget into {target}: {_os_words(exc)}"
              f"{' (' + str(exc.filename) + ')' if exc.filename else ''}.", file=sys.stderr)
        return EX_DEGRADED
    prefix = url if url.endswith("/") else url + "/"
    print(f"portal-feeds: widget in {Path(target) / 'widget'}, demo pages in {Path(target) / 'demo'} "
          "(they read /feeds/<feed>.json). Paste into the page's <head>:")
    print(f'<link rel="stylesheet" href="{prefix}portal-feeds.css">')
    print(f'<script src="{prefix}portal-feeds.js" defer></script>')
    return EX_OK


def _setup_logging(verbose: bool) -> None:
    from feeds.logs import setup_logging

    # One-shot commands keep stdout for their own output; logs go to stderr.
    setup_logging(logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr)


def _select(config: Config, names: Sequence[str]) -> list[str]:
    from feeds.config import UsageError

    unknown = [n for n in names if n not in config.feeds]
    if unknown:
        raise UsageError(f"no feed named {', '.join(unknown)} (known: {', '.join(config.feeds)})")
    return list(names) or list(config.feeds)


def _short_time(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.isoformat(timespec="minutes")


def _in(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s}s" if s < 120 else (f"{s // 60}m{s % 60:02d}s" if s < 7200 else f"{s // 3600}h{(s % 3600) // 60:02d}m")


def _start_faults(checks: Sequence[FolderCheck]) -> list[FolderCheck]:
    """Folders that exist but cannot be written now (local faults, not configuration)."""
    return [c for c in checks if not c.ok and c.local]


def _fault_sentence(faults: Sequence[FolderCheck]) -> str:
    from feeds.folders import current_user

    what = "; ".join(f"{c.key} {c.path} {c.state}" for c in faults)
    return f"{what} (as {current_user()}): a local fault, not a configuration error"


async def _fetch(config: Config, names: list[str], *, force: bool = False, degraded: bool = False) -> int:
    import asyncio
    from datetime import UTC, timedelta

    from feeds.app import open_runtime

    code = EX_DEGRADED if degraded else EX_OK
    async with open_runtime(config) as rt:
        # Feeds run concurrently: a slow upstream never delays another feed's publish.
        results = await asyncio.gather(*(rt.coordinator.refresh(config.feeds[n], force=force) for n in names))
    width = max(len(n) for n in names)
    now = datetime.now(UTC)
    for r in results:
        line = f"{r.feed:<{width}}  {r.status:<11}  {r.summary}"
        if r.snapshot.get("as_of"):
            line += f"  as_of {_short_time(r.snapshot['as_of'])}"
        if r.outcome not in ("ok",):
            line += f"  ({r.outcome}{': ' + r.detail if r.detail else ''})"
        if r.retry_in is not None:
            at = (now + timedelta(seconds=r.retry_in)).astimezone().isoformat(timespec="seconds")
            line += (f"; next request allowed in {_in(r.retry_in)}, at {at}"
                     f" (portal-feeds fetch --force {r.feed} asks now)")
        if r.forced:
            line += "  [forced: one request now, politeness window and circuit breaker ignored once]"
        print(line)
        if r.error is not None and r.error.kind == "local":
            print(f"portal-feeds: {r.feed}: {r.error.message}", file=sys.stderr)
        if r.status != "fresh" or r.outcome == "local":
            code = EX_DEGRADED
    return code


def _check_config_report(config: Config, checks: Sequence[FolderCheck]) -> int:
    from feeds.folders import current_user, outside_unit

    print(f"configuration OK: {len(config.feeds)} feeds ({', '.join(config.feeds)}); "
          f"read from {config.path or 'the built-in defaults'}; "
          f"cache {config.cache_dir}, snapshots {config.snapshot_dir}")
    user = current_user()
    for c in checks:
        if not c.ok:
            # A disk fault, not the file's: exit 0 so `systemctl reload` still applies it.
            print(f"  warning: {c.line()} (checked as {user}): a local fault; the daemon starts "
                  "anyway and retries until it can write there")
            continue
        print(f"  {c.line()} (checked as {user})")
        if outside_unit(c.path) and os.environ.get("INVOCATION_ID") is None:
            print(f"  note: the shipped unit lets the service write only under /var/lib/portal-feeds: "
                  f"{c.path} would be read-only for it (docs/deploy.md)")
    return EX_OK


def _run_args(argv: Sequence[str]) -> argparse.Namespace | None:
    """``run [--config PATH] [-v]`` (the unit's ExecStart) read without building the whole
    parser (nine subcommands, their help texts looked up by gettext: ~4 ms of a start, issue
    20): the same namespace ``_parser().parse_args`` gives.  Anything else (``-h``, an
    abbreviated option, a PATH that looks like an option, a repeated option): None, and the
    parser reads it."""
    if not argv or argv[0] != "run":
        return None
    config: str | None = None
    verbose = False
    seen: set[str] = set()
    rest = list(argv[1:])
    while rest:
        word = rest.pop(0)
        if word in ("-v", "--verbose") and "verbose" not in seen:
            verbose = True
            seen.add("verbose")
        elif word == "--config" and "config" not in seen and rest and rest[0] and not rest[0].startswith("-"):
            config = rest.pop(0)
            seen.add("config")
        elif word.startswith("--config=") and "config" not in seen:
            config = word[len("--config="):]
            seen.add("config")
        else:
            return None
    return argparse.Namespace(command="run", config=config, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    # The daemon's start imports some 300 modules and frees little: the cyclic garbage
    # collector's ~45 passes before READY=1 found nothing and cost ~8 ms of it (issue 20).  Off
    # while the parser (its subcommands import the clock, asyncio) and, for ``run``, the start
    # are loaded; the daemon turns it on as soon as READY=1 is sent (feeds.daemon), any other
    # command once parsed; restored on every way out.
    collecting = gc.isenabled()
    gc.disable()
    try:
        args = _run_args(sys.argv[1:] if argv is None else argv) or _parser().parse_args(argv)
        if args.command != "run" and collecting:
            gc.enable()
        if not args.command:
            _parser().print_help()
            return 2
        if args.command == "install-widget":
            return install_widget(args.dir, args.url)
        return _command(args)
    finally:
        if collecting:
            gc.enable()


def _command(args: argparse.Namespace) -> int:
    """Every command but ``install-widget``, its configuration loaded."""
    from feeds.config import ConfigError, UsageError, load_config

    _setup_logging(args.verbose)
    try:
        config = load_config(args.config)
        if args.command in ("check-config", "fetch", "run"):
            from feeds.folders import require_folders

            checks = require_folders(config)
        if args.command == "check-config":
            return _check_config_report(config, checks)
        if args.command in ("fetch", "run"):
            from feeds.instance import AlreadyRunning, InstanceLock

            names = _select(config, args.feeds) if args.command == "fetch" else []
            if args.command == "fetch" and args.force and not args.feeds:
                print("portal-feeds: fetch --force needs the feed NAMEs to ask now "
                      f"(known: {', '.join(config.feeds)})", file=sys.stderr)
                return 2
            from feeds.instance import LockUnavailable

            faults = _start_faults(checks)
            try:
                lock = InstanceLock(config.cache_dir, args.command, config.path).acquire()
            except LockUnavailable as exc:
                # Not a configuration error: systemd restarts on 75 (a runtime folder comes back).
                print(f"portal-feeds: {exc}.", file=sys.stderr)
                return EX_TEMPFAIL
            except AlreadyRunning as exc:
                hint = (
                    " The daemon fetches on its schedule; `systemctl reload portal-feeds` applies a changed"
                    " configuration and attempts changed feeds at once, or stop it to use `fetch`."
                    if args.command == "fetch"
                    else ""
                )
                print(f"portal-feeds: {exc}.{hint}", file=sys.stderr)
                return EX_TEMPFAIL
            try:
                if args.command == "fetch":
                    if faults:
                        print(f"portal-feeds: {_fault_sentence(faults)}; fetching anyway, what cannot be "
                              "written is reported below.", file=sys.stderr)
                    from contextlib import suppress

                    from feeds.folders import ensure_published_folders

                    with suppress(OSError):  # a disk fault is reported per feed below
                        ensure_published_folders(config)
                    import asyncio

                    return asyncio.run(_fetch(config, names, force=args.force, degraded=bool(faults)))
                from feeds.daemon import run_daemon
                from feeds.folders import folder_faults

                # The daemon's own view of its folders, in its heartbeat record: status and
                # check read it even when the cache cannot be written.
                lock.notes = lambda: folder_faults(config)
                if faults:
                    from feeds.logs import setup_logging

                    setup_logging(logging.INFO)
                    logging.getLogger("feeds.cli").error(
                        "start with a local fault: %s; starting anyway: republishing what can be "
                        "written and retrying at every attempt", _fault_sentence(faults),
                    )
                return run_daemon(args.config, config, instance=lock)
            finally:
                lock.release()
        if args.command == "status":
            from feeds.health import print_status

            return print_status(config, as_json=args.json)
        if args.command == "check":
            from feeds.health import run_check

            return run_check(config, _select(config, args.feeds))
        if args.command == "history":
            from feeds.history_cli import run as run_history

            return run_history(args, config)
        if args.command == "demo":
            from feeds.demo import run_demo

            return run_demo(seconds=args.seconds, keep=args.keep)
    except UsageError as exc:
        if args.command == "check":  # a monitoring plugin answers UNKNOWN, on stdout
            print(f"PORTAL-FEEDS UNKNOWN - {exc}")
            return EX_CANNOT_READ
        print(f"portal-feeds: {exc}", file=sys.stderr)
        return EX_USAGE
    except ConfigError as exc:
        if args.command == "check":  # a monitoring plugin answers UNKNOWN, on stdout
            print(f"PORTAL-FEEDS UNKNOWN - configuration error: {exc}")
            return 3
        print(f"portal-feeds: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return EX_INTERRUPTED
    return EX_USAGE
