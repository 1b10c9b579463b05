"""Rebuild a report from results alone:

python -m harness.report results/<run-id> [--out reports/<run-id>]
"""

import argparse
from pathlib import Path

from harness.report.render import render


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.report")
    parser.add_argument("run", help="results/<run-id> folder (holds manifest.json, records.jsonl)")
    parser.add_argument("--out", help="output folder (default: reports/<run-id>)")
    args = parser.parse_args()
    run = Path(args.run)
    if not (run / "manifest.json").exists():
        parser.error(f"{run} has no manifest.json: not a ctxbench results folder")
    out = Path(args.out) if args.out else Path("reports") / run.name
    print(render(run, out))


main()
