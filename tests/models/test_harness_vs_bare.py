"""The harness-against-bare comparison's bookkeeping (the timings themselves need a GPU)."""

from models.harness_vs_bare import BARE_IMPL, compare


def _record(model, L, ms, status="ok", suite="prefill"):
    point = {"suite": suite, "model": model, "context": L}
    return {"point": point, "status": status, "metrics": {"time": {"median": ms}}}


def test_pairs_lengths_and_judges_the_ratio():
    bench = [
        {"impl": BARE_IMPL, "L": 16384, "median_ms": 100.0},
        {"impl": BARE_IMPL, "L": 65536, "median_ms": 1000.0},
        {"impl": "native_cudnn", "L": 16384, "median_ms": 50.0},  # another model: not paired
        {"env": {}},
    ]
    records = [
        _record("hf", 16384, 108.0),
        _record("hf", 65536, 1150.0),
        _record("transformer", 16384, 90.0),  # the native model: not the same model
        _record("hf", 4096, 20.0),  # no bare timing at this length
        _record("hf", 16384, 1.0, status="oom"),
        _record("hf", 16384, 1.0, suite="decode"),
    ]
    rows = compare(bench, records)
    assert [(r["L"], r["within"]) for r in rows] == [(16384, True), (65536, False)]
    assert rows[0]["ratio"] == 108.0 / 100.0


def test_saved_llama_config_builds_the_native_presets_shape_as_model_hf(tmp_path):
    """bench_gpu --llama-config: the harness's model=hf from that folder is the native 1.3B
    Transformer's shape, parameter for parameter (meta device: no memory)."""
    import pytest

    pytest.importorskip("transformers")
    import models
    from models.gpu_checks import llama_config

    llama_config("1.3b", 16384).save_pretrained(tmp_path)
    hf = models.config("hf", hf_source=str(tmp_path)).build(meta=True)
    native = models.config("transformer", "1.3b").build(meta=True)
    assert hf.num_params() == native.num_params()
