"""Attention decode step (kernels.decode_attention) against its torch spec, through Triton's CPU
interpreter: GQA groups, lengths that are not a multiple of the block, several splits merged,
positions at the start, middle and end of the buffer, strided queries."""

from __future__ import annotations

import pytest
import torch

from kernels.decode_attention import DecodeAttnConfig, decode_attention, decode_attention_ref
from tests.kernels.conftest import assert_close

TOL = {torch.float32: 1e-5, torch.float16: 3e-3}
SMALL = DecodeAttnConfig(block_n=16, split_len=32, num_stages=1)


def _inputs(B, Hkv, G, S, D, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Hkv, G, D, generator=g).to(dtype)
    k = torch.randn(B, Hkv, S, D, generator=g).to(dtype)
    v = torch.randn(B, Hkv, S, D, generator=g).to(dtype)
    return q, k, v


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(
    "B,Hkv,G,S,D,pos",
    [
        (1, 1, 1, 1, 16, 0),  # one cached token
        (1, 2, 4, 100, 32, 99),  # full buffer, S not a multiple of the block
        (2, 2, 4, 100, 32, 40),  # mid-buffer: later splits must do nothing
        (1, 1, 8, 257, 16, 0),  # only the first position is valid
        (2, 1, 3, 63, 16, 62),  # G not a power of two
    ],
)
def test_matches_reference(B, Hkv, G, S, D, pos, dtype):
    q, k, v = _inputs(B, Hkv, G, S, D, dtype)
    p = torch.tensor([pos])
    out = decode_attention(q, k, v, p, config=SMALL)
    assert_close("decode_attention", out, decode_attention_ref(q, k, v, p), TOL[dtype])


def test_positions_past_pos_are_never_read():
    """Cache slots after pos hold NaN: any read of them poisons the output."""
    q, k, v = _inputs(1, 2, 4, 96, 16, torch.float32)
    pos = 37
    k[:, :, pos + 1 :] = float("nan")
    v[:, :, pos + 1 :] = float("nan")
    out = decode_attention(q, k, v, torch.tensor([pos]), config=SMALL)
    ref = decode_attention_ref(q, k[:, :, : pos + 1], v[:, :, : pos + 1], torch.tensor([pos]))
    assert_close("prefix only", out, ref, 1e-5)


def test_auto_split_and_strided_query():
    """The default config (auto split length) and a query that is a view into a wider tensor,
    as the model's fused QKV projection hands it over."""
    B, Hkv, G, S, D = 2, 2, 4, 300, 32
    q, k, v = _inputs(B, Hkv, G, S, D, torch.float32, seed=1)
    wide = torch.randn(B, Hkv * G * D + 64)
    wide[:, : Hkv * G * D] = q.reshape(B, -1)
    q_view = wide[:, : Hkv * G * D].view(B, Hkv, G, D)
    assert not q_view.is_contiguous()
    p = torch.tensor([S - 1])
    out = decode_attention(q_view, k, v, p, config=DecodeAttnConfig(block_n=16, num_stages=1))
    assert_close("auto split", out, decode_attention_ref(q, k, v, p), 1e-5)


def test_scale_is_applied():
    q, k, v = _inputs(1, 1, 2, 40, 16, torch.float32, seed=2)
    p = torch.tensor([39])
    out = decode_attention(q, k, v, p, scale=0.3, config=SMALL)
    assert_close("scale", out, decode_attention_ref(q, k, v, p, scale=0.3), 1e-5)
    assert (out - decode_attention_ref(q, k, v, p)).abs().max() > 1e-3


def test_bad_inputs_name_the_problem():
    q, k, v = _inputs(1, 2, 4, 32, 16, torch.float32)
    with pytest.raises(ValueError, match="pos must be one int64"):
        decode_attention(q, k, v, torch.tensor([3], dtype=torch.int32))
    with pytest.raises(ValueError, match="does not match"):
        decode_attention(q, k[:, :1], v[:, :1], torch.tensor([3]))
    with pytest.raises(ValueError, match="power of two"):
        q2, k2, v2 = _inputs(1, 1, 1, 8, 24, torch.float32)
        decode_attention(q2, k2, v2, torch.tensor([3]))
    with pytest.raises(ValueError, match="multiple of block_n"):
        decode_attention(q, k, v, torch.tensor([3]), config=DecodeAttnConfig(split_len=40))
    with pytest.raises(ValueError, match="merge_block must be a power of two, got 12"):
        decode_attention(q, k, v, torch.tensor([3]), config=DecodeAttnConfig(merge_block=12))


def test_model_decoding_with_the_kernel_reproduces_its_forward():
    """decode_attention=triton in a Transformer: step-by-step decoding equals the forward, and
    the record names the path (auto resolves to matmul on the CPU)."""
    import models
    from tests.models.conftest import TINY

    cfg = {**TINY, "d_model": 64, "n_layer": 4, "decode_attention": "triton"}  # head dim 16
    model = models.create("transformer", **cfg)
    model.eval()
    ids = torch.randint(0, TINY["vocab_size"], (2, 9))
    with torch.no_grad():
        full = model(ids)
        cache = model.allocate_cache(2, 12)  # longer than used: slots past pos stay unread
        steps = torch.cat([model.step(ids[:, t : t + 1], cache) for t in range(9)], dim=1)
    assert_close("triton decode vs forward", steps, full, 1e-4)
    assert model.kernel_backends()["attention_decode"] == "triton"
    auto = models.create("transformer", **{**TINY, "n_layer": 2})
    assert auto.kernel_backends()["attention_decode"] == "matmul"


def test_registered_operator_runs_the_kernel_and_has_a_shape_only_fake():
    """torch.ops.ctxbench.decode_attention (what a compiled step calls) equals the launcher; its
    fake gives torch.compile the output's shape and dtype without running anything."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from kernels.decode_attention import decode_attention_op

    q, k, v = _inputs(1, 2, 4, 40, 16, torch.float32)
    p = torch.tensor([39])
    got = torch.ops.ctxbench.decode_attention(q, k, v, p, 0.25)
    assert_close("operator", got, decode_attention_ref(q, k, v, p, scale=0.25), 1e-5)
    with FakeTensorMode() as mode:
        fake = decode_attention_op(*(mode.from_tensor(t) for t in (q, k, v, p)), 0.25)
    assert fake.shape == q.shape and fake.dtype == q.dtype


@pytest.mark.parametrize("pos", [0, 200, 599])
def test_merge_reads_its_splits_in_blocks(pos):
    """38 splits merged 4 at a time: partial blocks at the end of the valid splits, and blocks
    wholly past them (pos 0: one valid split)."""
    q, k, v = _inputs(1, 2, 3, 600, 16, torch.float32, seed=3)
    p = torch.tensor([pos])
    cfg = DecodeAttnConfig(block_n=16, split_len=16, num_stages=1, merge_block=4)
    out = decode_attention(q, k, v, p, config=cfg)
    assert_close("blocked merge", out, decode_attention_ref(q, k, v, p), 1e-5)
