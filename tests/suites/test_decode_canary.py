"""The decode step's canary on the CPU: the timed step against the torch reference step, planted
wrong step kernels (and a wrong GEMV) caught in the decode and throughput suites, the cache left
as it was found."""

from __future__ import annotations

import pytest
import torch

import kernels
from harness.errors import InvalidOutput
from harness.point import freeze
from suites import decode, throughput
from tests.suites.speed_points import TINY, _point


def test_a_compiled_step_does_not_claim_the_fused_kernels():
    """fused_decode's kernels run only in the eager/graph step; compiled, the torch ops run."""

    class Model:
        def kernel_backends(self):
            return {"attention": "math", "decode_fused": "triton", "decode_gemv": "triton"}

    compiled = decode.ran_backends(Model(), compiled=True)
    assert compiled["decode_fused"] == compiled["decode_gemv"] == "off: compiled step"
    assert decode.ran_backends(Model(), compiled=False)["decode_fused"] == "triton"
    assert decode.ran_backends(Model(), compiled=False)["decode_gemv"] == "triton"
    assert decode.ran_backends(Model(), False, batch=8)["decode_gemv"] == "off: batch > 1"


@pytest.mark.parametrize("model", ["transformer", "mamba2", "mamba1", "hybrid_1_7"])
def test_decode_canary_passes_and_leaves_the_cache_as_it_found_it(model):
    import models
    from models.cache import SSMState

    torch.manual_seed(0)
    m = models.create(model, **{**TINY, "n_layer": 4}).eval()
    cache = m.allocate_cache(1, 32)
    with torch.inference_mode():
        m.prefill(torch.randint(0, 256, (1, 12)), cache)
    states = [t.clone() for c in cache.layers if isinstance(c, SSMState) for t in (c.conv, c.ssm)]
    step = decode.Stepper(m, cache, torch.randint(0, 256, (1, 1)), graphs=False)
    out = decode.canary(m, step, cache, 12, "float32")
    assert out["passed"] and out["rel_err"] < 1e-5  # CPU: the same torch path twice
    after = [t for c in cache.layers if isinstance(c, SSMState) for t in (c.conv, c.ssm)]
    assert all(torch.equal(a, b) for a, b in zip(states, after, strict=True))
    assert int(cache.pos) == 12


def _off(op):
    """A planted decode-step kernel for `op` that is 10% off (the prefill kernels stay right)."""
    return lambda *args, **kwargs: 1.1 * kernels.get(op, "torch")(*args, **kwargs)


off_ssd_step, off_scan_step, off_conv_step = (
    _off(op) for op in ("ssd_step", "selective_scan_step", "conv1d_step")
)


@pytest.mark.parametrize(
    "model, family, planted_op",
    [
        ("mamba2", "ssm", "ssd_step"),
        ("mamba1", "ssm", "selective_scan_step"),
        ("mamba2", "conv", "conv1d_step"),
    ],
)
def test_planted_wrong_step_kernel_makes_the_decode_point_invalid(
    monkeypatch, model, family, planted_op
):
    fn = {"ssd_step": "off_ssd_step", "selective_scan_step": "off_scan_step",
          "conv1d_step": "off_conv_step"}[planted_op]  # fmt: skip
    for entries in kernels.REGISTRY.values():  # "planted": the torch kernels, but one
        if "torch" in entries:
            monkeypatch.setitem(entries, "planted", entries["torch"])
    monkeypatch.setitem(kernels.REGISTRY[planted_op], "planted", f"{__name__}:{fn}")
    backends = {"attention": "math", "ssm": "torch", "conv": "torch", family: "planted"}
    with pytest.raises(InvalidOutput, match="canary: the decode step"):
        decode.run(_point("decode", model, 64, backends=freeze(backends), gen_tokens=4,
                          cuda_graphs=False, min_samples=4))  # fmt: skip


@pytest.mark.parametrize("model", ["mamba2", "transformer"])  # the MLP: the SwiGLU kernel
def test_planted_wrong_gemv_makes_the_decode_point_invalid(monkeypatch, model):
    """decode_gemv=triton: the canary's reference step runs F.linear, so a GEMV (or SwiGLU
    kernel) 10% off is caught, never timed."""
    import kernels.gemv as gemv_module
    import models.linear as linear

    monkeypatch.setattr(linear, "_on_kernel_device", lambda x: True)  # as on a GPU
    monkeypatch.setattr(gemv_module, "gemv", lambda x, w: 1.1 * gemv_module.gemv_ref(x, w))
    monkeypatch.setattr(
        gemv_module, "gemv_swiglu", lambda x, g, u: 1.1 * gemv_module.gemv_swiglu_ref(x, g, u)
    )
    p = _point("decode", model, 64, gen_tokens=4, cuda_graphs=False, min_samples=4,
               overrides={**TINY, "decode_gemv": "triton"})  # fmt: skip
    with pytest.raises(InvalidOutput, match="canary: the decode step"):
        decode.run(p)


def test_planted_wrong_step_kernel_makes_the_throughput_point_invalid(monkeypatch):
    """The largest batch's step is checked too (on its first sequences): a speed of a wrong step
    is never reported."""
    for entries in kernels.REGISTRY.values():
        if "torch" in entries:
            monkeypatch.setitem(entries, "planted", entries["torch"])
    monkeypatch.setitem(kernels.REGISTRY["ssd_step"], "planted", f"{__name__}:off_ssd_step")
    backends = {"attention": "math", "ssm": "planted", "conv": "torch"}
    p = _point("throughput", "mamba2", context=64, gen_tokens=4, max_batch=8, cuda_graphs=False,
               min_samples=4, backends=freeze(backends))  # fmt: skip
    with pytest.raises(InvalidOutput, match="canary: the decode step"):
        throughput.run(p)


def test_canary_on_the_first_rows_restores_them_and_compares_only_them():
    import models

    torch.manual_seed(0)
    m = models.create("mamba2", **{**TINY, "n_layer": 2}).eval()
    cache = m.allocate_cache(3, 32)
    with torch.inference_mode():
        m.prefill(torch.randint(0, 256, (3, 12)), cache)
    before = [t.clone() for t in cache.states()]
    step = decode.Stepper(m, cache, torch.randint(0, 256, (3, 1)), graphs=False)
    out = decode.canary(m, step, cache, 12, "float32", rows=2)
    assert out["passed"]
    after = cache.states()
    assert all(torch.equal(a[:2], b[:2]) for a, b in zip(before, after, strict=True))
    assert not all(torch.equal(a[2:], b[2:]) for a, b in zip(before, after, strict=True))


def test_torch_step_path_swaps_every_fast_choice_and_puts_them_back():
    import models
    from models.reference_step import STEP_OPS, torch_step_path

    for name in ("hybrid_1_7", "mamba1"):
        m = models.create(name, **{**TINY, "n_layer": 8}, fused_decode=True)
        mixers = [layer.mixer for layer in m.layers]
        for mixer in mixers:  # stand-ins for the GPU's fast kernels
            if hasattr(mixer, "decode"):
                mixer.decode = "triton"
            for attr in STEP_OPS:
                if hasattr(mixer, attr):
                    setattr(mixer, attr, object())
        before = [dict(vars(x)) for x in mixers]
        with torch_step_path(m):
            assert m.cfg.fused_decode is False
            for mixer in mixers:
                assert getattr(mixer, "fused", False) is False
                assert getattr(mixer, "decode", "matmul") == "matmul"
                for attr, op in STEP_OPS.items():
                    if hasattr(mixer, attr):
                        assert getattr(mixer, attr) is kernels.get(op, "torch")
        assert m.cfg.fused_decode is True
        assert [dict(vars(x)) for x in mixers] == before


def test_decode_record_carries_its_canary():
    out = decode.run(
        _point("decode", "hybrid_1_7", 64, gen_tokens=4, cuda_graphs=False, min_samples=4)
    )
    assert out["metrics"]["canary"]["passed"] and out["metrics"]["canary"]["rel_err"] < 1e-4
