"""Generation throughput at the largest batch that fits at context L, found by search (doubling,
then bisection between the last batch that ran and the first that ran out of memory), then timed
like the decode suite: the setting of the "Mamba has 5x higher throughput" claim.

    make bench ARGS="suite=standard 'suite.measure=[throughput]' 'suite.throughput.context=[4k]'"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.point import Point
from suites import modelbench as mb
from suites.decode import ran_backends

USES_MODELS = True


@dataclass
class ThroughputConfig:
    context: list[Any] | None = field(default_factory=lambda: ["4k", "64k"])
    gen_tokens: int = 32
    # The search's largest batch. 1024 capped every SSM on the H200 (Mamba-1's 12.6 MB of state
    # a sequence: ~10K sequences in 141 GB); the step kernels index batch with 64-bit offsets
    # and put it in grid axes that take 65535, so this is the memory's call, not theirs.
    max_batch: int = 16384
    cuda_graphs: bool = True
    fused: bool = True  # the decode step with its small ops fused on a GPU, as suite.decode.fused


CONFIG = ThroughputConfig


def expand(ctx) -> list[Point]:
    cfg: ThroughputConfig = ctx.cfg.suite.throughput
    params = {
        "gen_tokens": cfg.gen_tokens,
        "max_batch": cfg.max_batch,
        "cuda_graphs": cfg.cuda_graphs,
        "min_samples": cfg.gen_tokens,
    } | mb.step_param(ctx, "fused_decode", cfg.fused)
    own = mb.lengths(cfg.context, "suite.throughput.context")
    return mb.model_points(ctx, "throughput", params, contexts=own, batches=[1])


def preflight(point: Point, ctx) -> str | None:
    if point.param("cuda_graphs") and point.device != "cuda":
        return "CUDA graphs need a CUDA GPU: set suite.throughput.cuda_graphs=false on CPU"
    return mb.memory_preflight(point, ctx, "decode")


def fits(bench, point: Point, batch: int) -> bool:
    """Whether a decode at this batch runs: cache + a few steps; OOM is caught and freed."""
    import torch

    from harness.errors import classify

    try:
        with torch.inference_mode():
            cache = bench.model.allocate_cache(batch, point.context + point.param("gen_tokens") + 1)
            mb.fill_cache_randomly(cache, point.context, point.seed)
            ids = torch.zeros(batch, 1, dtype=torch.long, device=point.device)
            for _ in range(2):
                bench.model.step(ids, cache)
        return True
    except Exception as exc:  # only an OOM means "does not fit"; anything else is a failure
        if classify(exc)[0] != "oom":
            raise
        return False
    finally:
        cache = ids = None
        free(point)


def largest_batch(bench, point: Point) -> tuple[int, list[dict[str, Any]]]:
    steps, ok, bad, b = [], 0, None, 1
    while b <= point.param("max_batch"):
        good = fits(bench, point, b)
        steps.append({"batch": b, "status": "ok" if good else "oom"})
        if not good:
            bad = b
            break
        ok, b = b, b * 2
    while bad is not None and bad - ok > max(1, ok // 16):  # bisect to within ~6%
        mid = (ok + bad) // 2
        good = fits(bench, point, mid)
        steps.append({"batch": mid, "status": "ok" if good else "oom"})
        ok, bad = (mid, bad) if good else (ok, mid)
    return ok, steps


def timed_decode(bench, at: Point):
    """Decode at the found batch, timed as the decode suite times it (graph captured), then the
    decode canary on its first sequences. -> (Samples, the canary's result)."""
    from harness.errors import classify
    from harness.timing import TimingConfig
    from suites.decode import Stepper, canary, time_tokens

    cache = bench.model.allocate_cache(at.batch, at.context + at.param("gen_tokens") + 1)
    mb.fill_cache_randomly(cache, at.context, at.seed)
    ids = mb.random_ids(at, bench.model.cfg.vocab_size, length=1)
    step = Stepper(bench.model, cache, ids, bool(at.param("cuda_graphs")))
    samples = time_tokens(
        step,
        cache,
        at.context,
        at.param("gen_tokens"),
        TimingConfig.from_pairs(at.timing),
        at.param("min_samples"),
        at.device,
    )
    try:
        checked = canary(bench.model, step, cache, at.context, at.dtype, rows=CANARY_ROWS)
    except Exception as exc:  # the reference step's eager intermediates at the edge of memory
        if classify(exc)[0] != "oom":
            raise
        checked = {"skipped": f"out of memory for the reference step at batch {at.batch}"}
    return samples, checked


CANARY_ROWS = 4  # sequences the canary compares at the largest batch (their state is copied)


def free(point: Point) -> None:
    if point.device == "cuda":
        import torch

        torch.cuda.empty_cache()


def run(point: Point) -> dict[str, Any]:
    from dataclasses import replace

    from harness.errors import classify

    bench = mb.build(point)
    batch, steps = largest_batch(bench, point)
    if batch == 0:
        import torch

        raise torch.OutOfMemoryError(f"even batch 1 does not fit at L={point.context}")
    while True:
        try:
            samples, checked = timed_decode(bench, replace(point, batch=batch))
            break
        except Exception as exc:  # an OOM only: the CUDA graph's pool is the search's last straw
            if classify(exc)[0] != "oom" or batch <= 1:
                raise
            steps.append({"batch": batch, "status": "oom at graph capture"})
        batch = batch * 15 // 16  # the search's resolution; the failed try's tensors went with
        free(point)  # its exception, at the end of the except clause
    summary = samples.summary()
    return {
        "metrics": {
            "batch": batch,
            "tokens_per_s": batch / (summary["median"] / 1e3),
            "time_ms": summary["median"],
            "time": summary,
            "search": steps,
            "canary": checked,
            "cuda_graphs": bool(point.param("cuda_graphs")),
        },
        "samples": {"time_ms": samples.samples_ms},
        "backends_ran": ran_backends(bench.model, False, batch),
    }
