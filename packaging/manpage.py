"""Write portal-feeds.1 (troff) from the command line's own argparse help.

    python packaging/manpage.py > portal-feeds.1
"""

from __future__ import annotations

import argparse
import datetime
import os
import re

from feeds import __version__
from feeds.cli import EXIT_CODES, _parser


def _esc(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def manpage() -> str:
    p = _parser()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    when = datetime.datetime.fromtimestamp(epoch, datetime.UTC) if epoch else datetime.datetime.now(datetime.UTC)
    out = [f'.TH PORTAL\\-FEEDS 1 "{when:%Y-%m-%d}" "portal-feeds {__version__}" "User Commands"',
           ".SH NAME", "portal\\-feeds \\- " + _esc(p.description or ""),
           ".SH SYNOPSIS", ".B portal\\-feeds", "COMMAND [OPTIONS]", ".SH COMMANDS"]
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    for sp in sub.choices.values():
        out += [".SS " + _esc(sp.format_usage().removeprefix("usage: ").strip()), _esc(sp.description or "")]
        for action in sp._actions:
            if action.help in (None, argparse.SUPPRESS) or isinstance(action, argparse._HelpAction):
                continue
            flags = ", ".join(action.option_strings) or (action.metavar if isinstance(action.metavar, str) else action.dest)
            out += [".TP", "\\fB" + _esc(flags) + "\\fR", _esc(str(action.help).replace("%(default)s", str(action.default)))]
    out += [".SH EXIT STATUS"]
    for code, words in EXIT_CODES.items():
        out += [".TP", f"\\fB{code}\\fR", _esc(words)]
    out += [".SH FILES", ".TP", "/etc/portal\\-feeds/portal\\-feeds.toml", "the configuration (one file to edit)",
            ".TP", "/var/lib/portal\\-feeds/", "cache and snapshots",
            ".TP", "/usr/share/portal\\-feeds/", "the widget, demo pages and an nginx snippet",
            ".SH SEE ALSO", "systemctl(1), journalctl(1); /usr/share/doc/portal\\-feeds/"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(manpage(), end="")
