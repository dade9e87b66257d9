"""Run one benchmark and print its result as one JSON object: python bench/run.py customers_api"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", help="benchmark module in bench/, e.g. customers_api")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    args = parser.parse_args()
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    module = importlib.import_module(f"bench.{args.name}")
    result = module.run(args.rest)
    print(json.dumps(result, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
