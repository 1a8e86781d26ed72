"""The benchmark (meta-step and ERM throughput against the anchors) arrives in portal-learning 0.2.0.

It times the training loops, which land with the encoders and meta-learning; this script says so.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="reports/portal-learning")
    parser.parse_args()
    print("portal-learning: the benchmark arrives in 0.2.0 (it times the training loops); nothing was run",
          file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
