"""The local pool: one worker slot per visible GPU, each pinned with CUDA_VISIBLE_DEVICES; on a
CPU machine one slot. A group (a point minus its context length, the OOM-skip unit) is a chain:
its points run one at a time, shortest first, so an OOM at length L still skips the longer ones
whichever slot would have run them. Different groups run in parallel; a free slot takes the next
point of the group with the most expected seconds left (`expected_seconds`, from the cost model):
longest first, which for independent groups is the LPT rule (within 4/3 of the best finish
time). With one slot the plan's order is kept: the order cannot change the total.

A group whose next point another orchestrator holds (see `harness.leases`) is set aside and
tried again every `poll_s`; meanwhile its slot takes other groups.

Same sweep on two GPUs and on one, compared (content and wall times; see harness.compare_stores):

    python -m harness.compare_stores --sweep --gpus 0,1 --gpus 0 -- suite=scaling size=370m \
        'models=[transformer,mamba2]' 'sweep.context=[4k,16k]' 'suite.measure=[prefill,decode]'
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from harness.env import Hardware
from harness.plan import Planned
from harness.point import Point

if TYPE_CHECKING:
    from harness.runner import Runner


@dataclass(frozen=True)
class Slot:
    name: str  # cuda:0, cpu
    env: dict[str, str] = field(default_factory=dict)  # what the worker process is started with
    gpu: dict[str, Any] | None = None  # {index, name, uuid}: written into each record it runs


CPU_SLOT = Slot("cpu")
BLOCKED = "blocked"  # not a status: another orchestrator holds the point's lease
DEFERRED = "deferred"  # not a status either: predicted to end past run.time_limit_s, not run


def slots_for(hw: Hardware, visible: str | None = None) -> list[Slot]:
    """One slot per selected GPU. `visible`: the orchestrator's own CUDA_VISIBLE_DEVICES (set by
    SLURM or submitit for a job's allocation), which NVML does not apply: GPUs outside it are
    someone else's. Workers are pinned by NVML's index with CUDA_DEVICE_ORDER=PCI_BUS_ID, so
    CUDA, NVML (the worker's energy and memory counters: harness.nvml) and the record all name
    the same physical GPU; CUDA's default order (fastest first) can differ from NVML's."""
    if hw.device != "cuda" or not hw.gpus:
        return [CPU_SLOT]
    gpus = list(hw.gpus)
    if visible is not None and visible.strip():
        allowed = {v.strip() for v in visible.split(",") if v.strip()}
        gpus = [g for g in gpus if str(g.index) in allowed or (g.uuid and g.uuid in allowed)]
    return [
        Slot(
            f"cuda:{g.index}",
            {"CUDA_VISIBLE_DEVICES": str(g.index), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"},
            {"index": g.index, "name": g.name, "uuid": g.uuid},
        )
        for g in gpus
    ]


# ---- expected duration: only the order matters, so round figures of a current GPU do ------------

STARTUP_S = {"cuda": 10.0, "cpu": 2.0}  # spawn, import torch, CUDA context, model build
# sustained: a 370M Transformer's 64K prefill ran at 433 TFLOP/s on the H200
FLOPS = {"cuda": 400e12, "cpu": 5e10}
BYTES_PER_S = {"cuda": 2.0e12, "cpu": 1e10}


def point_timing(point: Point) -> Any:
    from harness.timing import TimingConfig

    return TimingConfig.from_pairs(point.timing) if point.timing else TimingConfig()


def one_prefill_seconds(point: Point, cost=None) -> float:
    """One prefill call of the point's prompt, from the cost model's FLOPs (`cost`: the point's
    cost model when the caller has built it)."""
    from suites.modelbench import model_config

    cost = cost or model_config(point).cost()
    return cost.prefill_flops(point.batch, point.context) / FLOPS.get(point.device, FLOPS["cpu"])


def _timed(point: Point, call_s: float, min_calls: int | None = None) -> float:
    """time_fn's loop: cold + warmup calls (none after a cold call slower than a quarter of the
    cap), then until min count and min time, capped."""
    t = point_timing(point)
    reps = max(min_calls or 0, t.min_reps) * call_s
    warmup = 0 if call_s > t.max_time_s / 4 else t.warmup
    return (1 + warmup) * call_s + min(max(reps, t.min_time_s), max(t.max_time_s, call_s))


def _model_seconds(point: Point) -> float:
    from suites.modelbench import model_config

    cfg = model_config(point)
    cost, dev = cfg.cost(), point.device
    prefill = one_prefill_seconds(point, cost)
    step = max(
        cost.decode_flops(point.batch, point.context) / FLOPS.get(dev, FLOPS["cpu"]),
        cost.decode_bytes(point.batch, point.context, point.dtype)
        / BYTES_PER_S.get(dev, BYTES_PER_S["cpu"]),
        20e-6,  # launch floor
    )
    if point.suite == "prefill":
        # the canary prefills L - 1 tokens again, unless the cache rewinds (attention only)
        recurrent = any(letter in "MS" for letter in cfg.pattern)
        canary = prefill if point.param("canary") and recurrent else 0.0
        from suites.prefill import cold_prompt_for

        if cold_prompt_for(point, prefill):
            # a short cold start, a layer of each kind at L (Model.pretune), one timed call
            return prefill * (1 + _pretune_share(cfg, cost, point)) + canary
        return _timed(point, prefill) + canary
    if point.suite == "decode":
        return _timed(point, step, point.param("min_samples"))
    if point.suite == "memory":  # a decode phase fills its cache with random values: no prefill
        phases = point.param("phases") or ["prefill", "decode"]
        decode = (1 + point.param("decode_steps", 4)) * step if "decode" in phases else 0.0
        return (prefill if "prefill" in phases else 0.0) + decode
    if point.suite == "throughput":
        return 12 * _timed(point, step)  # the batch search, then one timed decode
    raise KeyError(point.suite)


def _pretune_share(cfg, cost, point: Point) -> float:
    """Model.pretune's FLOPs (one layer of each kind at L) over the whole forward's: one
    attention layer is a quarter of a 1:7 hybrid's 1M prefill, not 1/48 of it."""
    from dataclasses import replace

    kinds = "".join(dict.fromkeys(cfg.pattern))
    one_each = replace(cfg, pattern=kinds, n_layer=len(kinds)).cost()
    L, B = point.context, point.batch
    return one_each.prefill_flops(B, L) / cost.prefill_flops(B, L)


def _frontier_seconds(point: Point, implied: int = 0) -> float:
    """The doubling probes the search would run: up to max_context, or to the first one
    predicted past its time limit (suites.frontier stops there), none at or below `implied` (the
    longest length the run's own sweep is expected to run). Where memory ends first, fewer run,
    plus `resolution` bisection probes below that length: not knowable here."""
    from suites.frontier import doublings, probe_point

    limit, total = point.param("probe_timeout_s"), 0.0
    for L in doublings(point):
        if L <= implied:
            continue
        seconds = expected_seconds(probe_point(point, L))
        if seconds > limit:
            break
        total += seconds
    return total


def _kernel_seconds(point: Point) -> float:
    from suites.kernels import io_bytes

    p, dev = dict(point.params), point.device
    call = io_bytes(point) / BYTES_PER_S.get(dev, BYTES_PER_S["cpu"])
    if point.model == "attention":
        flops = 2 * point.batch * p["attn_heads"] * point.context**2 * p["attn_headdim"]
        call = max(call, flops / FLOPS.get(dev, FLOPS["cpu"]))
    return 2 * call + _timed(point, call)  # + the correctness check against the reference


# Suites whose duration the cost model predicts; the others (training suites) get a guess that
# only keeps the order sensible, not a number to plan with.
ESTIMATED = ("kernels", "selftest", "prefill", "decode", "memory", "throughput", "frontier")


def expected_seconds(point: Point, implied: int = 0) -> float:
    """Predicted wall time of one point, from the cost model where there is one. Never raises:
    an unknown measurement gets a guess that still grows with the context length. `implied`: a
    frontier point's longest length its sweep covers (see _frontier_seconds)."""
    startup = STARTUP_S.get(point.device, 2.0)
    try:
        if point.suite == "frontier":
            return startup + _frontier_seconds(point, implied)
        if point.suite == "kernels":
            return startup + _kernel_seconds(point)
        if point.suite == "selftest":
            slow = point.param("slow_s", 0.0) if point.model == "slow" else 0.0
            return startup + float(slow) + point.context * 1e-7
        return startup + _model_seconds(point)
    except Exception:  # noqa: BLE001 - a scheduling hint must not stop a sweep
        return startup + 1.0 + point.context * 1e-6


# ---- the pool --------------------------------------------------------------------------------


def chain_key(point: Point) -> tuple:
    """The point's group, less the parameters its suite lists as `EVAL_ONLY_PARAMS` (they change
    what is evaluated, not what is trained): points that share a trained model form one chain,
    so one slot trains it and the others reuse it, instead of two GPUs training it at once."""
    from suites import REGISTRY, get

    drop = getattr(get(point.suite), "EVAL_ONLY_PARAMS", ()) if point.suite in REGISTRY else ()
    if not drop:
        return point.group()
    kept = tuple((k, v) for k, v in point.params if k not in drop)
    return replace(point, params=kept).group()


def waits(chains: dict[tuple, Any]) -> dict[tuple, list[tuple]]:
    """The chains each chain must see finished before it starts: its suite's
    `waits_for(point, other)` (the frontier waits for the same model's sweep, whose lengths it
    then need not probe again)."""
    from suites import REGISTRY, get

    out = {}
    for key, chain in chains.items():
        head = chain[0].point
        fn = getattr(get(head.suite), "waits_for", None) if head.suite in REGISTRY else None
        deps = [k for k, c in chains.items() if fn and k != key and fn(head, c[0].point)]
        if deps:
            out[key] = deps
    return out


def by_group(items: list[Planned]) -> dict[tuple, list[Planned]]:
    """Chains in order of first appearance; within one, ascending context."""
    groups: dict[tuple, list[Planned]] = {}
    for item in items:
        groups.setdefault(chain_key(item.point), []).append(item)
    return {k: sorted(g, key=lambda x: x.point.context) for k, g in groups.items()}


class _Locked:
    """Progress output from several slot threads, one line at a time."""

    def __init__(self, progress: Any):
        self._p, self._lock = progress, threading.Lock()

    def point(self, *args: Any) -> None:
        with self._lock:
            self._p.point(*args)

    def message(self, text: str) -> None:
        with self._lock:
            self._p.message(text)


class Pool:
    """List scheduling of chains: a free slot takes the head of the chain with the most expected
    seconds left (ties and the one-slot case: plan order) among chains with nothing running and
    none they wait for (`waits`) unfinished."""

    def __init__(self, runner: Runner, slots: list[Slot], poll_s: float = 1.0, cost=None):
        self.runner, self.slots, self.poll_s = runner, list(slots), poll_s
        self.cost = cost or expected_seconds
        self._cond = threading.Condition()
        self._chains: dict[tuple, deque[Planned]] = {}
        self._left: dict[tuple, float] = {}  # expected seconds left in each chain
        self._order: dict[str, int] = {}  # plan index of each point
        self._busy: set[tuple] = set()  # chains with a point on a slot
        self._later: dict[tuple, float] = {}  # blocked chains: when to try their head again
        self._after: dict[tuple, list[tuple]] = {}  # chains that must finish first
        self._error: BaseException | None = None
        self.counts: Counter[str] = Counter()

    def run(self, todo: list[Planned], progress: Any) -> dict[str, int]:
        self._order = {x.point.hash: i for i, x in enumerate(todo)}
        for key, chain in by_group(todo).items():
            self._chains[key] = deque(chain)
            self._left[key] = sum(self._cost(x) for x in chain) if len(self.slots) > 1 else 0.0
        self._after = waits(self._chains)
        out = _Locked(progress)
        if len(self.slots) == 1:  # in this thread: plain tracebacks, Ctrl-C as before
            self._work(self.slots[0], out)
        else:
            threads = [
                threading.Thread(target=self._work, args=(s, out), name=s.name, daemon=True)
                for s in self.slots
            ]
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.5)  # a timed join keeps the main thread responsive to Ctrl-C
        if self._error is not None:
            raise self._error
        return dict(self.counts)

    def _cost(self, item: Planned) -> float:
        return 0.0 if item.skip_reason else self.cost(item.point)

    def _past_deadline(self, item: Planned) -> float | None:
        """The point's predicted seconds when they would end past the run's time limit."""
        deadline = self.runner.deadline
        if deadline is None or self.runner.skip_reason(item):
            return None  # a skip is recorded at once (a plan skip, or past a failed length)
        seconds = self.cost(item.point)
        return seconds if time.monotonic() + seconds > deadline else None

    def _work(self, slot: Slot, progress: _Locked) -> None:
        while (taken := self._take()) is not None:
            key, item = taken
            try:
                if (seconds := self._past_deadline(item)) is not None:
                    # not recorded: a later run with the same arguments measures it
                    status = DEFERRED
                    progress.point(item.point.label(), DEFERRED, f"~{seconds:.0f} s predicted, "
                                   "past run.time_limit_s")  # fmt: skip
                else:
                    status = self.runner.run_point(item, slot, progress)
            except BaseException as exc:  # noqa: BLE001 - stop every slot, re-raise in run()
                with self._cond:
                    self._error = self._error or exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._busy.discard(key)
                if status == BLOCKED:  # its holder decides what the rest of the chain does
                    self._later[key] = time.monotonic() + self.poll_s
                else:
                    self._chains[key].popleft()
                    self._left[key] -= self._cost(item) if len(self.slots) > 1 else 0.0
                    self.counts[status] += 1
                self._cond.notify_all()

    def _take(self) -> tuple[tuple, Planned] | None:
        with self._cond:
            while self._error is None:
                now, best, wake = time.monotonic(), None, None
                for key, chain in self._chains.items():
                    if not chain or key in self._busy:
                        continue
                    if any(self._chains[d] for d in self._after.get(key, ())):
                        continue  # a chain it waits for is not done (its points leave when done)
                    due = self._later.get(key, now)
                    if due > now:
                        wake = due if wake is None else min(wake, due)
                        continue
                    rank = (-self._left[key], self._order[chain[0].point.hash])
                    if best is None or rank < best[0]:
                        best = (rank, key)
                if best is not None:
                    key = best[1]
                    self._busy.add(key)
                    self._later.pop(key, None)
                    return key, self._chains[key][0]
                if wake is None and not self._busy:
                    return None  # every chain is done
                self._cond.wait(None if wake is None else wake - now)
            return None
