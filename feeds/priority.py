"""A worker thread's scheduling priority, lowered below the event loop's (Linux, per thread).

A thread that works while the event loop waits (parsing big answers, making files ahead of a
write) must never hold up the loop when it wakes: the kernel runs the loop's thread first when
both are ready.  Nice, not idle: on a server whose CPUs other processes keep busy, the thread
still gets its share and the attempt ends within its deadline (issue 20).
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["lower_thread_priority"]


def lower_thread_priority(by: int) -> None:
    """The calling thread ``by`` nicer than it is, at most 19 (Linux: a thread's own nice
    value; elsewhere the call would renice the whole process, so nothing is done).  Never
    fails: at worst the thread keeps the process's priority."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))
    except OSError:
        pass
