"""CPU priority for background work that shares a machine with live delivery.

The embedded projector (a child process) and the SQLite log's WAL checkpointer (a thread) do work
that can wait; the gateway's event loop cannot. Pinned to one CPU with the gateway, the projector
held the CPU for up to tens of milliseconds at a time and the gateway waited runnable behind it
(563 ms per 30 s run in /proc/PID/schedstat), which was most of the live-delivery latency tail.
SCHED_IDLE makes the scheduler preempt such work whenever a normal task (the gateway) wakes up;
it still gets the CPU the gateway leaves idle, and a low share when there is none.
"""

from __future__ import annotations

import contextlib
import logging
import os

log = logging.getLogger(__name__)


def yield_to_live_work() -> str:
    """Give the calling thread the lowest CPU priority (SCHED_IDLE where there is one, else nice 19);
    return which. On Linux this is per thread: call it from the thread (or process) it is for."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: the calling thread
            return "SCHED_IDLE"
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 19)  # also per thread on Linux (0: the caller)
        return "nice 19"
    except (OSError, AttributeError) as exc:
        log.debug("could not lower the priority of background work: %s", exc)
        return "unchanged"
