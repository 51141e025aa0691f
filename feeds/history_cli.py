"""``portal-feeds history``: what was the rate on a day, from the archive (feeds.history).

    portal-feeds history FEED [CODE ...] [--days N] [--json]
    portal-feeds history import FILE... [--feed NAME]

The table an admin needs ("what was the dollar on 2 December?"): one row per archived day, the
table's own time, the three rates and the day's change of the selling rate.  ``import`` files
earlier Vietcombank XML tables (saved by a previous cron job, say) into the archive, each through
the same parser and gate as a fetched table: a portal starts with history.

Exit codes: 0; 1 some file refused by ``import``, or no day archived; 2 usage (an unknown feed,
a weather feed, an unknown code); 78 configuration error (the configuration file itself).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feeds import history
from feeds.clock import VIETNAM_TZ

if TYPE_CHECKING:
    from feeds.config import Config

__all__ = ["add_parser", "run"]

EX_USAGE = 2


def add_parser(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    h = add("history", "Rates history from the archive: the rate of each day, or import earlier XML tables.")
    h.add_argument("feed", metavar="FEED", help='a rates feed (e.g. exchange-rates), or "import" followed by files')
    h.add_argument("codes", nargs="*", metavar="CODE|FILE", help="currency codes to show (default: USD, EUR, JPY); after import: XML files")
    h.add_argument("--days", type=int, default=30, metavar="N", help="the last N archived days (default 30)")
    h.add_argument("--json", action="store_true", help="print JSON (the shape of <feed>.history.json, all three rates)")
    h.add_argument("--feed", dest="into", metavar="NAME", help="with import: the rates feed to file them under (default: the first)")


def _rates_feeds(config: Config) -> list[str]:
    return [n for n, f in config.feeds.items() if f.data_kind == "exchange_rates"]


def _money(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}"


def _signed(value: Decimal | None) -> str:
    if value is None:
        return ""
    return ("+" if value > 0 else "") + f"{value:,.2f}"


def run(args: argparse.Namespace, config: Config) -> int:
    from feeds.config import UsageError

    rates_feeds = _rates_feeds(config)
    if args.feed == "import":
        name = args.into or (rates_feeds[0] if rates_feeds else None)
        if name is None or name not in rates_feeds:
            raise UsageError(f"no rates feed named {name or '(none configured)'} to import into "
                             f"(rates feeds: {', '.join(rates_feeds) or 'none'})")
        return _import(config, name, [Path(p) for p in args.codes])
    if args.feed not in config.feeds:
        raise UsageError(f"no feed named {args.feed} (known: {', '.join(config.feeds)})")
    if args.feed not in rates_feeds:
        raise UsageError(f"{args.feed} is a weather feed: history is kept for rates feeds ({', '.join(rates_feeds) or 'none'})")
    if args.days < 1:
        print("portal-feeds: --days must be at least 1", file=sys.stderr)
        return EX_USAGE
    days = history.archived_days(config.snapshot_dir, args.feed)[-args.days:]
    held = [h for h in (history.read_day(config.snapshot_dir, args.feed, d) for d in days) if h]
    codes = [c.upper() for c in args.codes] or ["USD", "EUR", "JPY"]
    known = {c for h in held for c in h["rates"]}
    unknown = [c for c in codes if c not in known] if held else []
    if unknown and args.codes:
        print(f"portal-feeds: no archived rate for {', '.join(unknown)} (archived: {', '.join(sorted(known))})", file=sys.stderr)
        return EX_USAGE
    if args.json:
        out: dict[str, Any] = {"feed": args.feed, "days": [h["date"].isoformat() for h in held],
                               "as_of": [h["as_of"].isoformat() for h in held], "currencies": {}}
        for c in codes:
            out["currencies"][c] = {col: [_num(h["rates"].get(c, {}).get(col)) for h in held] for col in history.COLUMNS}
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0 if held else 1
    if not held:
        print(f"{args.feed}: no day archived yet in {history.archive_folder(config.snapshot_dir, args.feed)}")
        return 1
    print(f"{args.feed}: {len(held)} day(s) archived in {history.archive_folder(config.snapshot_dir, args.feed)}, "
          f"{held[0]['date']} .. {held[-1]['date']} (Vietnam days; the last table of each)")
    for c in codes:
        if c not in known:
            continue
        print(f"\n{c}")
        print(f"  {'DATE':<10}  {'TABLE TIME':<5}  {'BUY CASH':>12}  {'BUY TRANSFER':>12}  {'SELL':>12}  {'SELL CHANGE':>11}")
        before: Decimal | None = None
        for h in held:
            r = h["rates"].get(c)
            if r is None:
                continue
            change = r["sell"] - before if r["sell"] is not None and before is not None else None
            print(f"  {h['date'].isoformat():<10}  {h['as_of'].astimezone(VIETNAM_TZ):%H:%M}  "
                  f"{_money(r['buy_cash']):>12}  {_money(r['buy_transfer']):>12}  {_money(r['sell']):>12}  {_signed(change):>11}")
            before = r["sell"] if r["sell"] is not None else before
    return 0


def _num(value: Decimal | None) -> float | str | None:
    return None if value is None else str(value)


def _import(config: Config, feed: str, files: Sequence[Path]) -> int:
    """Each file through the bank's parser and gate; filed under its own day."""
    from feeds.errors import FeedError
    from feeds.sources import vietcombank
    from feeds.validate import check_rates

    if not files:
        print("portal-feeds: history import needs at least one XML file", file=sys.stderr)
        return EX_USAGE
    today = history.vietnam_day(datetime.now(UTC))
    refused = 0
    for path in files:
        try:
            body = path.read_bytes()
        except OSError as exc:
            print(f"refused {path}: cannot be read ({exc.strerror or type(exc).__name__})")
            refused += 1
            continue
        try:
            parsed = vietcombank.parse(body)
            check_rates(parsed, None)
        except FeedError as exc:
            print(f"refused {path}: {exc.kind}/{exc.detail or '-'}: {exc.message}")
            refused += 1
            continue
        if parsed.as_of is None:
            print(f"refused {path}: the table has no DateTime of its own")
            refused += 1
            continue
        try:
            added = history.record(config.snapshot_dir, feed, as_of=parsed.as_of, fetched_at=parsed.as_of,
                                   source="Vietcombank", data=parsed.to_data(), today=today)
        except OSError as exc:
            print(f"refused {path}: the archive cannot be written ({exc.strerror or type(exc).__name__})")
            refused += 1
            continue
        day = history.vietnam_day(parsed.as_of)
        if not added and day < today - timedelta(days=history.DEFAULT_KEEP_DAYS):
            print(f"skipped {path}: {day} is older than the archive keeps ({history.DEFAULT_KEEP_DAYS} days)")
            continue
        print(f"{'imported' if added else 'kept'} {path}: {day} (table of {parsed.as_of.isoformat()})"
              + ("" if added else ": the day already holds this table or a later one"))
    return 1 if refused else 0
