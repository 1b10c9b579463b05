"""The lm-eval wrapper against a tiny model's own log-probabilities, long inputs (error or exact
with carried state), greedy generation, and local tasks through simple_evaluate offline."""

from __future__ import annotations

import pytest
import torch

import models
from suites.lmeval import tasks as T
from suites.lmeval.model import ByteTokenizer, CtxbenchLM


class Req:
    """What lm-eval hands a model: an object with .args."""

    def __init__(self, *args):
        self.args = args


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return {
        name: models.create(
            name,
            d_model=32,
            n_layer=2,
            vocab_size=256,
            heads=2,
            kv_heads=2,
            headdim=16,
            d_state=8,
            chunk_size=16,
        ).eval()
        for name in ("transformer", "mamba2")
    }


def own_logprob(model, ids: list[int], start: int) -> float:
    """sum_t log p(ids[t] | ids[:t]) for t >= start, straight from model.forward."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids]))[0].float(), -1)
    return float(sum(logp[t - 1, ids[t]] for t in range(start, len(ids))))


@pytest.mark.parametrize("name", ["transformer", "mamba2"])
def test_loglikelihood_equals_the_models_summed_logprobs(tiny, name):
    lm = CtxbenchLM(tiny[name], ByteTokenizer(), max_length=256)
    ctx, cont = "The cat sat on the", " mat."
    ids = list(ctx.encode()) + list(cont.encode())
    (ll, greedy), (empty, _) = lm.loglikelihood([Req(ctx, cont), Req("", "hi")])
    assert ll == pytest.approx(own_logprob(tiny[name], ids, len(ctx)), abs=1e-4)
    assert empty == pytest.approx(own_logprob(tiny[name], [10, *b"hi"], 1), abs=1e-4)
    assert isinstance(greedy, bool)
    rolling = lm.loglikelihood_rolling([Req("abc def")])[0]
    assert rolling == pytest.approx(own_logprob(tiny[name], [10, *b"abc def"], 1), abs=1e-4)


@pytest.mark.parametrize("name", ["transformer", "mamba2"])
def test_long_inputs_error_or_exact_with_carried_state(tiny, name):
    text = "It was the best of times, it was the worst of times. " * 3  # 159 bytes
    full = CtxbenchLM(tiny[name], ByteTokenizer(), max_length=1024)
    carried = CtxbenchLM(tiny[name], ByteTokenizer(), max_length=48)
    strict = CtxbenchLM(tiny[name], ByteTokenizer(), max_length=48, long_inputs="error")
    a = full.loglikelihood_rolling([Req(text)])[0]
    b = carried.loglikelihood_rolling([Req(text)])[0]
    assert b == pytest.approx(a, abs=1e-3)  # every token still sees all before it
    assert carried.stats["carried_state"] == 1 and full.stats["carried_state"] == 0
    with pytest.raises(ValueError, match="longer than max_length"):
        strict.loglikelihood_rolling([Req(text)])
    with pytest.raises(ValueError, match="long_inputs"):
        CtxbenchLM(tiny[name], ByteTokenizer(), long_inputs="truncate")


def test_generate_until_is_greedy_and_stops(tiny):
    model = tiny["transformer"]
    lm = CtxbenchLM(model, ByteTokenizer(), max_length=256)
    prompt = "Once upon a time"
    out = lm.generate_until([Req(prompt, {"until": [], "max_gen_toks": 5})])[0]
    ids = list(prompt.encode())
    with torch.no_grad():  # greedy by hand with the full forward
        for _ in range(5):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    assert out.encode("utf-8", errors="replace") == ByteTokenizer().decode(
        ids[len(prompt) :]
    ).encode("utf-8", errors="replace")
    first = out[0] if out else "x"
    stopped = lm.generate_until([Req(prompt, {"until": [first], "max_gen_toks": 5})])[0]
    assert stopped == ""  # the stop string is cut, with everything after it


@pytest.mark.parametrize("name", ["transformer", "mamba2"])
def test_fp32_weights_under_bf16_autocast_generate_and_carry_state(tiny, name):
    """How a GPU runs the trained models (fp32 weights, bf16 autocast), here with CPU autocast:
    the decode caches must take the bf16 K/V the layers produce (on the H200 the Transformer's
    generate_until failed in index_copy_ with an fp32 cache)."""
    lm = CtxbenchLM(tiny[name], ByteTokenizer(), max_length=24)
    lm.compute_dtype = torch.bfloat16
    out = lm.generate_until([Req("Once upon a time", {"until": [], "max_gen_toks": 4})])[0]
    assert len(out.encode("utf-8", errors="replace")) >= 1
    text = "It was the best of times, it was the worst of times."
    carried = lm.loglikelihood_rolling([Req(text)])[0]  # 53 tokens > 24: chunked, then steps
    whole = CtxbenchLM(tiny[name], ByteTokenizer(), max_length=256).loglikelihood_rolling(
        [Req(text)]
    )[0]
    assert lm.stats["carried_state"] == 1
    assert carried == pytest.approx(whole, rel=0.05)  # bf16 against fp32


def test_passkey_prompts_hold_the_key_at_the_asked_length():
    docs = T.passkey_docs(600, 5, seed=0)
    assert docs == T.passkey_docs(600, 5, seed=0)
    for d in docs:
        assert 580 <= len(d["context"]) <= 620
        assert f"The pass key is {d['answer']}." in d["context"]
        assert d["context"].endswith("The pass key is")
    assert len({d["answer"] for d in docs}) > 1


def test_simple_evaluate_runs_local_tasks_offline(tiny, tmp_path):
    import lm_eval

    lm = CtxbenchLM(tiny["transformer"], ByteTokenizer(), max_length=128)
    tasks = [
        T.passkey_task(tmp_path, 200, 2, seed=0),
        T.rolling_task(tmp_path, [b"Some held-out text.\n" * 12], max_bytes=0),
    ]
    res = lm_eval.simple_evaluate(model=lm, tasks=tasks, log_samples=False, bootstrap_iters=0)
    r = res["results"]
    assert r["ctxbench_passkey_200"]["exact_match,none"] == 0.0  # random weights
    bpb = r["ctxbench_rolling_ppl"]["bits_per_byte,none"]
    assert 7.0 < bpb < 9.0  # an untrained byte model is near uniform: 8 bits per byte
    assert lm.stats["carried_state"] == 1  # the 240-byte document exceeded max_length=128


def _plan(suite: str):
    from hydra import compose, initialize_config_dir

    from harness import config as C
    from harness import plan as P
    from harness.env import detect
    from tests.harness.conftest import REPO

    C.register()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose(config_name="config", overrides=[f"suite={suite}", "hardware.device=cpu"])
    return P.plan(P.context(C.to_object(cfg), detect("cpu", "all"), "1.3b"))


@pytest.mark.parametrize("suite", ["quality_smoke", "recall", "perplexity"])
def test_quality_suites_plan_and_lm_eval_reuses_the_perplexity_model(suite):
    from suites import lmeval
    from suites import perplexity as P

    planned = _plan(suite)
    assert planned and not [p.skip_reason for p in planned if p.skip_reason]
    by = {}
    for item in planned:
        by.setdefault(item.point.suite, []).append(item.point)
    for point in by.get("lm_eval", []):
        same = [p for p in by["perplexity"] if p.model == point.model]
        assert same, point.model
        assert P._train_key(lmeval._lm_point(point)) == P._train_key(same[0])
