"""Keep benchmarks/RESULTS.md as named sections that each benchmark script replaces on its own.

A section runs from its `## Title` line to the next `## ` line. Scripts only ever replace their own
section, so running one benchmark never clobbers another's numbers.
"""

from __future__ import annotations

import fcntl
import os
import platform
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Measured numbers, not timed tests. Each section is written by the script named in it; rerun the\n"
    "command shown to refresh it. Machine: 2 cores, load generator and server on the same host.\n"
)


def machine() -> str:
    """One line describing where the numbers were taken."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=RESULTS.parent, check=False).stdout.strip()
    except OSError:
        commit = ""
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            f"commit {commit or 'unknown'}")


def replace_section(title: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section `## {title}` of `path` with `body`."""
    block = f"## {title}\n\n{body.strip()}\n"
    with open(path, "a+") as locked:  # the file itself is the lock: no stray lock files
        fcntl.flock(locked, fcntl.LOCK_EX)
        text = path.read_text() or HEADER
        lines = text.splitlines(keepends=True)
        start = next((i for i, line in enumerate(lines) if line.rstrip("\n") == f"## {title}"), None)
        if start is None:
            new = text.rstrip("\n") + "\n\n" + block
        else:
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            new = "".join(lines[:start]) + block + ("\n" + "".join(lines[end:]) if end < len(lines) else "")
        path.write_text(new)


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A markdown table."""
    def cell(v: object) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
        return str(v)

    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out)
