"""The offline demo tells its whole story and cleans up."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_story() -> None:
    """At its default length, the story reaches every phase, including back to fresh."""
    p = subprocess.run(
        [sys.executable, "-m", "feeds", "demo"],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for phase in ("1/4 healthy", "2/4 DNS", "3/4 Vietcombank down", "4/4 back"):
        assert phase in out
    assert re.search(r"exchange-rates\s+fresh .*ok \[stale dns\]", out), out
    assert re.search(r"exchange-rates\s+stale .*http_status \(503\)", out), out
    back = out.split("=== 4/4 back")[1]
    assert re.search(r"^exchange-rates\s+fresh .*\sok\b", back, re.M), back  # the story's end is shown
    assert out.rstrip().splitlines()[-1].startswith("cleaned up ")
    folder = Path(out.rstrip().splitlines()[-1].split(" ", 2)[2])
    assert not folder.exists()
    assert "Traceback" not in p.stderr
