"""Start-up time of the ``isosched`` command: ``--help`` and ``models list``.

Runs each command ``--repeat`` times in a fresh interpreter and prints the median wall time and
the median CPU time (user + system of the child, less sensitive to other load on the machine),
plus the total import time that ``python -X importtime`` reports. Run it from a checkout::

    python bench/cli_startup.py --repeat 7

The budget (issue 19) is 0.3 s for both commands on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"--help": ["--help"], "models list": ["models", "list"]}


def _once(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``python -m isosched ARGS``."""
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "isosched", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def _import_ms(args: list[str]) -> float:
    """Sum of the top-level cumulative import times reported by ``-X importtime``, ms."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "isosched", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    total = 0
    for line in out.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            total += int(m.group(1))
    return total / 1e3


def main() -> None:
    """Print one row per command."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    n = ap.parse_args().repeat
    print(f"{'command':<14} {'wall s (median)':>16} {'cpu s (median)':>15} {'imports ms':>11}")
    for name, args in COMMANDS.items():
        _once(args)  # warm the file cache
        runs = [_once(args) for _ in range(n)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{name:<14} {wall:>16.3f} {cpu:>15.3f} {_import_ms(args):>11.0f}")
    print(f"load average: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
