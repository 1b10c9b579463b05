"""Rebuild a report from results alone, optionally beside a second run:

python -m harness.report results/<run-id> [--out reports/<run-id>]
python -m harness.report results/<a> --compare results/<b>      # -> reports/<a>-vs-<b>/index.html
python -m harness.report results/<run-id> --claims my-claims.yaml   # more claims for the ledger
python -m harness.report results/<run-id> --png reports/<run-id>/figures  # each figure as PNG too
python -m harness.report results/examples/h200   # a folder of runs of one machine: one report
"""

import argparse
import os
from pathlib import Path

from harness.report.data import is_results
from harness.report.render import render


def default_out(run: Path, name: str) -> Path:
    """reports/<name>; a run kept below a results/ folder keeps its sub-path (results/examples/h200
    -> reports/examples/h200), so published examples render where they are committed."""
    parts = run.parts
    if "results" in parts[:-1]:
        below = parts[len(parts) - 1 - parts[::-1].index("results") + 1 : -1]
        return Path("reports", *below, name)
    return Path("reports") / name


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.report")
    parser.add_argument(
        "run",
        help="results/<run-id> folder (holds manifest.json, records.jsonl), or a folder of run "
        "folders made on one machine (one report over all of them)",
    )
    parser.add_argument(
        "--out",
        help="output folder (default: reports/<run-id>, or reports/<a>-vs-<b>; a run below "
        "results/ keeps its sub-path there)",
    )
    parser.add_argument(
        "--compare", metavar="RUN_B", help="a second results folder to compare with"
    )
    parser.add_argument(
        "--claims",
        action="append",
        default=[],
        metavar="FILE",
        help="a claims YAML added to conf/claims.yaml (repeatable; same id replaces)",
    )
    parser.add_argument(
        "--png",
        metavar="DIR",
        help="also write each figure as DIR/<figure id>.png (for a README; the page is unchanged)",
    )
    args = parser.parse_args(argv)
    runs = [Path(args.run)] + ([Path(args.compare)] if args.compare else [])
    for run in runs:
        if not is_results(run):
            parser.error(
                f"{run} has no manifest.json (nor run folders that have one): "
                "not a ctxbench results folder"
            )
    for f in args.claims:
        if not Path(f).exists():
            parser.error(f"claims file {f} does not exist")
    name = runs[0].name + (f"-vs-{runs[1].name}" if args.compare else "")
    out = Path(args.out) if args.out else default_out(runs[0], name)
    if args.png:
        from harness.report.figures.base import PNG_ENV

        Path(args.png).mkdir(parents=True, exist_ok=True)
        os.environ[PNG_ENV] = str(Path(args.png).resolve())
    print(render(runs[0], out, compare=runs[1] if args.compare else None, claims=args.claims))


if __name__ == "__main__":
    main()
