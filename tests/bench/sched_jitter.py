#!/usr/bin/env python3
"""Measures the machine's own scheduling hiccups: sleeps 5 ms in a loop for SECONDS and prints
every gap over 30 ms. Run it beside tests/bench/fleet_load.sh to tell a stall of the machine
from one of the coordinator (docs/performance.md). Prints figures; asserts nothing.

    tests/bench/sched_jitter.py SECONDS
"""
import sys
import time


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    end = time.monotonic() + float(sys.argv[1])
    previous = time.monotonic()
    gaps = []
    while previous < end:
        time.sleep(0.005)
        now = time.monotonic()
        if now - previous > 0.030:
            gaps.append((time.strftime("%H:%M:%S"), round((now - previous) * 1000, 1)))
        previous = now
    print(f"sched_jitter: {len(gaps)} gaps over 30 ms in {sys.argv[1]} s of 5 ms sleeps")
    for at, milliseconds in gaps:
        print(f"  {at} {milliseconds} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
