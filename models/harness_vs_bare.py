"""The harness's prefill of a model against a bare timing of the same model, same call, same GPU
(issue 5: the harness's own figures agree with a direct measurement, within 10%).

    python -m models.bench_gpu --out DIR --transformer 16384 --llama-config DIR/llama  # bare
    python -m harness suite=standard suite.measure=[prefill] models=[hf] \\
        +suite.model_overrides.hf_source=DIR/llama sweep.context=[16k] run.id=llama-harness
    python -m models.harness_vs_bare --bench DIR/bench.jsonl --run RESULTS/llama-harness

The bare side is transformers' LlamaForCausalLM called as the harness's model=hf prefill calls
it (`hf_llama_sdpa_cache`: its cache kept, last logits only). The native Transformer is faster
than that model (models/README.md); this compares one model measured two ways.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TOLERANCE = 0.10
BARE_IMPL = "hf_llama_sdpa_cache"


def compare(bench: list[dict], records: list[dict], impl: str = BARE_IMPL) -> list[dict]:
    """One row per length both sides measured: the harness's median TTFT, the bare median, the
    ratio and whether it is within TOLERANCE."""
    bare = {r["L"]: r["median_ms"] for r in bench if r.get("impl") == impl and "median_ms" in r}
    rows = []
    for rec in records:
        p = rec.get("point", {})
        if p.get("suite") != "prefill" or p.get("model") != "hf" or rec.get("status") != "ok":
            continue
        L = p["context"]
        if L not in bare:
            continue
        harness_ms = rec["metrics"]["time"]["median"]
        ratio = harness_ms / bare[L]
        rows.append(
            {
                "L": L,
                "harness_ms": harness_ms,
                "bare_ms": bare[L],
                "ratio": ratio,
                "within": abs(ratio - 1) <= TOLERANCE,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", type=Path, required=True, help="models.bench_gpu's bench.jsonl")
    ap.add_argument("--run", type=Path, required=True, help="the harness run's folder")
    ap.add_argument("--impl", default=BARE_IMPL)
    args = ap.parse_args()
    from harness.store import read_records, read_run

    rows = compare(read_records(args.bench), read_run(args.run), args.impl)
    if not rows:
        raise SystemExit(f"no length measured both by the harness (model=hf) and as {args.impl}")
    for r in rows:
        print(json.dumps(r))
        print(
            f"L={r['L']}: harness {r['harness_ms']:.1f} ms, bare {r['bare_ms']:.1f} ms, "
            f"ratio {r['ratio']:.3f} ({'within' if r['within'] else 'NOT within'} "
            f"{TOLERANCE:.0%})"
        )


if __name__ == "__main__":
    main()
