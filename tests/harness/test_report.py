"""The report: from results alone, self-contained, deterministic; every point tabled (failed ones
with their reason), raw records embedded and downloadable; partial runs say what is missing."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report import render
from harness.report.render import CSP, env_line
from harness.store import Store
from tests.report import synth
from tests.report.htmlq import Page

REPO = Path(__file__).resolve().parents[2]


def kernels_run(tmp_path, name="r1", planned=None, measure=("kernels",), **kw) -> Path:
    b = synth.Builder(0)
    b.kernels(contexts=[1024, 4096, 16384, 65536])
    return synth.write(
        tmp_path / "results" / name, b.records, planned=planned, measure=list(measure), **kw
    )


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The full synthetic run (every suite) rendered once: (results dir, html, parsed page)."""
    tmp = tmp_path_factory.mktemp("full")
    run = synth.full_run(tmp / "results" / "full")
    html = render(run, tmp / "reports" / "full").read_text()
    return run, html, Page(html)


def test_every_point_is_a_row_with_status_and_reason(full):
    run, _, page = full
    n = len(Store(run).latest_by_hash())
    rows = page.rows("points-table")
    assert len(rows) == n
    statuses = [r[7] for r in rows]
    assert {"ok", "oom", "skipped", "invalid_output", "timeout"} <= set(statuses)
    oom_reasons = [r[-1] for r in rows if r[7] == "oom"]
    assert any("out of memory" in r for r in oom_reasons)  # the reason travels with the failure


def test_every_figure_kind_the_issue_asks_for_is_drawn(full):
    _, html, page = full
    wanted = [
        "fig-prefill-",
        "fig-decode-",
        "fig-throughput-",
        "fig-memory-",
        "fig-utilization-",
        "fig-energy-",
        "fig-mqar",
        "fig-niah",
        "fig-perplexity",
        "fig-kernels-",
        "fig-frontier-",
    ]
    for prefix in wanted:
        assert any(i.startswith(prefix) for i in page.ids), prefix
    figures = re.findall(r'<figure id="([^"]+)"[^>]*><svg', html)
    assert len(figures) >= len(wanted)


def test_failed_points_are_marked_in_figures_not_dropped(full):
    _, html, _ = full
    decode = html[html.index('<figure id="fig-decode-') :]
    decode = decode[: decode.index("</figure>")]
    assert "oom (not a result)" in decode  # the Transformer's 1M decode OOM is drawn and named
    ssd = html[html.index('<figure id="fig-kernels-b1-bfloat16-ssd"') :]
    assert "invalid_output (not a result)" in ssd[: ssd.index("</figure>")]


def test_legends_name_the_kernel_backend(full):
    _, html, _ = full
    prefill = html[html.index('<figure id="fig-prefill-') :]
    prefill = prefill[: prefill.index("</figure>")]
    assert "Transformer [attention=cudnn]" in prefill
    assert "Mamba-2 [conv=triton ssm=triton]" in prefill


def test_self_contained_no_network_reference(full):
    _, html, page = full
    csp = [m["content"] for m in page.metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp == [CSP] and "default-src 'none'" in CSP and "connect-src" not in CSP
    for tag, attr, value in page.sources:
        assert value.startswith(("#", "data:")), (tag, attr, value[:80])
    assert not re.search(r"url\((?!#)", html)  # CSS/SVG url() only to in-page fragments
    assert "<link" not in html and "@import" not in html


def test_internal_links_land_on_an_element(full):
    _, _, page = full
    ids = set(page.ids)
    assert len(ids) == len(page.ids), "duplicate ids"
    targets = [h[1:] for h in page.hrefs if h.startswith("#")]
    assert targets and all(t in ids for t in targets), sorted(set(targets) - ids)


def test_csv_download_holds_every_point(full):
    run, _, page = full
    uri = next(h for h in page.hrefs if h.startswith("data:text/csv"))
    text = base64.b64decode(uri.split(",", 1)[1]).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    latest = Store(run).latest_by_hash()
    assert len(rows) == len(latest)
    assert {r["hash"] for r in rows} == set(latest)
    assert {"suite", "model", "context", "status", "reason", "time_ms"} <= set(rows[0])


def test_raw_records_are_embedded_as_json(full):
    run, _, page = full
    records = json.loads(page.scripts["records"])
    assert sorted(r["hash"] for r in records) == sorted(Store(run).latest_by_hash())
    assert any(r.get("samples", {}).get("time_ms") for r in records)  # raw samples included


def test_summary_is_generated_from_the_data(full):
    _, _, page = full
    text = page.texts["summary"]
    assert "Mamba-2 overtakes Transformer at" in text and "95% CI" in text
    assert "runs out of memory from 1M" in text
    assert re.search(r"Claims ledger \(26 claims\)", text)
    # a frontier search that stopped at a probe predicted past its time limit is no failure
    assert "the Transformer up to 2M (not tried at 2304K: time limit)" in text
    assert "the Transformer up to 768K (fails at 1M)" in text


def test_latest_attempt_of_a_point_wins(tmp_path):
    b = synth.Builder(0)
    first = b.add("kernels", "ssd", 4096, "timeout", backends={"ssm": "triton"})
    retry = dict(first, status="ok", reason="", metrics={"time_ms": 1.5, "time": {"count": 3}})
    run = synth.write(tmp_path / "results" / "retry", [first, retry])
    page = Page(render(run, tmp_path / "out", workers=1).read_text())
    rows = page.rows("points-table")
    assert len(rows) == 1 and rows[0][7] == "ok"


def test_two_renders_are_byte_identical_across_processes(tmp_path):
    """Different hash seeds and worker counts: the bytes must not move (sets, dict order, figure
    ids and bootstraps are all pinned)."""
    run = kernels_run(tmp_path)
    outs = []
    for seed, workers in (("1", "1"), ("2", "2")):
        out = tmp_path / f"out{seed}"
        code = "from harness.report import render; "
        code += f"render({str(run)!r}, {str(out)!r}, workers={workers})"
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        outs.append((out / "index.html").read_bytes())
    assert outs[0] == outs[1]
    assert b"svg" in outs[0]


def test_partial_run_renders_and_says_what_is_missing(tmp_path):
    run = kernels_run(tmp_path, planned=200, measure=("kernels", "decode"))
    html = render(run, tmp_path / "p", workers=1).read_text()
    page = Page(html)
    n = len(page.rows("points-table"))
    assert f"{200 - n} planned point(s) have no record yet" in page.texts["partial"]
    assert "Measurements with no record yet: decode" in page.texts["partial"]
    assert f"This run is partial: {200 - n} of 200" in page.texts["summary"]


def test_torn_lines_are_reported_not_counted(tmp_path):
    run = kernels_run(tmp_path)
    (run / "records.torn.jsonl").write_text('{"hash": "x", "poi\n')
    html = render(run, tmp_path / "t", workers=1).read_text()
    assert "1 torn record line(s)" in html


def test_empty_run_renders(tmp_path):
    run = synth.write(tmp_path / "results" / "empty", [], planned=3, measure=["prefill"])
    page = Page(render(run, tmp_path / "e", workers=1).read_text())
    assert "No figure" in page.texts["sec-figures"]
    assert "3 planned point(s) have no record yet" in page.texts["partial"]
    assert page.rows("points-table") == []
    assert len(page.rows("ledger-table")) == 26  # every claim still listed (untestable here)


def test_env_line_names_gpu_driver_packages_and_git():
    env = synth.manifest(sha="abcdef1234567", dirty=True)["env"]
    line = env_line(env)
    for part in (
        "NVIDIA H100 80GB HBM3",
        "80.00 GB",
        "driver 580.65",
        "CUDA 12.8",
        "torch 2.9.0",
        "triton 3.5.0",
        "flash-attn 2.8.3",
        "git abcdef1234 (dirty)",
    ):
        assert part in line
    assert "mamba-ssm" not in line  # absent peers are not listed as present
    assert "no CUDA" in env_line({"device_name": "cpu", "packages": {"torch": "2.13"}})


def test_cli_renders_compare_and_extra_claims(tmp_path):
    a, b = kernels_run(tmp_path, "a"), kernels_run(tmp_path, "b", sha="fedcba9876")
    claims = tmp_path / "mine.yaml"
    claims.write_text(
        "claims:\n  - id: my-claim\n    text: SSD is slower\n    expect: {ratio_min: 1}\n"
        "    measure: {kind: ratio, suite: kernels, metric: time_ms, num: ssd, den: attention}\n"
    )
    out = tmp_path / "cmp"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.report",
            str(a),
            "--compare",
            str(b),
            "--claims",
            str(claims),
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    page = Page((out / "index.html").read_text())
    assert "compare" in page.ids and page.rows("compare-table")
    assert "claim-my-claim" in page.ids
    bad = subprocess.run(
        [sys.executable, "-m", "harness.report", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no manifest.json" in bad.stderr


def test_png_export_writes_every_figure_and_leaves_the_page_unchanged(tmp_path):
    run = kernels_run(tmp_path)
    plain = render(run, tmp_path / "plain").read_bytes()
    out, png = tmp_path / "with-png", tmp_path / "figs"
    cmd = [sys.executable, "-m", "harness.report", str(run), "--out", str(out), "--png", str(png)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    page = (out / "index.html").read_bytes()
    assert page == plain
    figure_ids = set(re.findall(r'<figure id="([^"]+)"', page.decode()))
    pngs = sorted(png.glob("*.png"))
    assert pngs and {p.stem for p in pngs} <= figure_ids
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_odd_records_render_rather_than_crash(tmp_path):
    """Unknown suites and models, metrics of the wrong type, NaN, a record without metrics: the
    report shows them in the table and draws what it can."""
    b = synth.Builder(0)
    b.add("lm_eval", "hf", 2048, metrics={"acc": 0.5})
    b.add("prefill", "my_new_model", 4096, metrics={"time_ms": "fast", "memory": [1, 2]})
    b.add("prefill", "transformer", 4096, metrics={"time_ms": float("nan"), "time": None})
    b.add("decode", "mamba2", 4096, "crashed", metrics=None, reason="Segmentation fault")
    b.add(
        "perplexity", "mamba2", 4096, metrics={"bpb": 1.0, "bpb_by_bucket": {"bad": 1, "0-10": "x"}}
    )
    b.add("niah", "transformer", 1024, metrics={"accuracy": 0.9}, params={"depth": None})
    run = synth.write(tmp_path / "results" / "odd", b.records)
    html = render(run, tmp_path / "odd", workers=1).read_text()
    page = Page(html)
    assert len(page.rows("points-table")) == 6
    assert "Segmentation fault" in html and "my_new_model" in html
    assert json.loads(page.scripts["records"])[2]["metrics"]["time_ms"] is None  # NaN is not JSON


def test_default_output_folder_mirrors_the_results_sub_path():
    from harness.report.__main__ import default_out

    assert default_out(Path("results/examples/h200"), "h200") == Path("reports/examples/h200")
    assert default_out(Path("results/run1"), "run1") == Path("reports/run1")
    assert default_out(Path("/elsewhere/run2"), "run2") == Path("reports/run2")


def test_a_folder_of_runs_renders_as_one_report_with_every_suite(tmp_path):
    """A published example keeps the standard, recall and perplexity runs side by side: one
    report over them, so the ledger sees speed and quality together."""
    folder = tmp_path / "results" / "examples" / "box"
    speed, quality = synth.Builder(0), synth.Builder(1)
    speed.speed(contexts=[1024, 4096])
    quality.quality()
    synth.write(folder / "standard-gpu", speed.records, suite="standard", measure=["prefill"])
    synth.write(folder / "recall-gpu", quality.records, suite="recall", measure=["mqar", "niah"])
    out = tmp_path / "reports" / "box"
    cmd = [sys.executable, "-m", "harness.report", str(folder), "--out", str(out)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    html = (out / "index.html").read_text()
    page = Page(html)
    n = len(speed.records) + len(quality.records)
    assert len(page.rows("points-table")) == n
    title = re.search(r"<h1>(.*?)</h1>", html).group(1)
    assert "standard" in title and "recall" in title  # both runs named in the title
    suites = {r["point"]["suite"] for r in json.loads(page.scripts["records"])}
    assert {"prefill", "decode", "mqar", "niah"} <= suites
    # runs of two machines are not one run: an error naming the devices
    other = synth.Builder(2)
    other.speed(contexts=[1024])
    synth.write(folder / "elsewhere", other.records, device="NVIDIA A100-SXM4-80GB")
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert res.returncode != 0 and "different devices" in res.stderr


def test_quality_summary_compares_models_on_shared_settings_and_perplexity_by_length():
    """A model cut short of its harder cells is not ranked on easier ones: the MQAR mean covers
    only settings every model has; bits per byte are listed per evaluated length."""
    from harness.report import data, summary
    from harness.report.facts import Facts

    b = synth.Builder(0)
    for model, accs in (("transformer", (1.0, 0.2)), ("mamba2", (0.3,))):
        for pairs, acc in zip((4, 8), accs, strict=False):
            b.add("mqar", model, 64, size="", dtype="float32", metrics={"accuracy": acc},
                  params={"width": 64, "kv_pairs": pairs, "seq_len": 64})  # fmt: skip
    for model, bpb in (("transformer", (2.3, 3.4)), ("mamba2", (2.1, 2.0))):
        for L, v in zip((2048, 8192), bpb, strict=True):
            b.add("perplexity", model, L, size="", dtype="float32", metrics={"bpb": v},
                  params={"train_length": 2048})  # fmt: skip
    facts = Facts(data.Run(Path("x"), {}, {}, data.table(b.records), 0))
    texts = [s.text for s in summary.quality(facts)]
    mqar = next(t for t in texts if t.startswith("MQAR"))
    assert "settings every model has" in mqar
    assert "Transformer 100.0%" in mqar and "Mamba-2 30.0%" in mqar  # not (100 + 20) / 2
    bpb = next(t for t in texts if t.startswith("Bits per byte"))
    assert "at 2K (the trained length): Mamba-2 2.100, Transformer 2.300" in bpb
    assert "at 8K: Mamba-2 2.000, Transformer 3.400" in bpb


def test_a_checkpoint_scored_as_it_is_gets_its_own_sentence_not_a_rank():
    """model=hf was not trained on the suite's budget: never ranked among the models that were,
    and its missing cells do not shrink their shared settings."""
    from harness.report import data, summary
    from harness.report.facts import Facts

    b = synth.Builder(0)
    for model, accs in (("transformer", (1.0, 0.2)), ("mamba2", (0.3, 0.1)), ("hf", (0.9,))):
        for pairs, acc in zip((4, 8), accs, strict=False):
            b.add("mqar", model, 64, size="", dtype="float32", metrics={"accuracy": acc},
                  params={"width": 64, "kv_pairs": pairs, "seq_len": 64})  # fmt: skip
    for model, v in (("transformer", 2.3), ("hf", 1.1)):
        b.add("perplexity", model, 2048, size="", dtype="float32", metrics={"bpb": v},
              params={"train_length": 2048})  # fmt: skip
    facts = Facts(data.Run(Path("x"), {}, {}, data.table(b.records), 0))
    texts = [s.text for s in summary.quality(facts)]
    mqar = next(t for t in texts if t.startswith("MQAR recall, mean"))
    assert "over every setting" in mqar and "Transformer 60.0%" in mqar and "hf" not in mqar
    assert (
        "MQAR recall of the transformers checkpoint, as it is (not trained here): 90.0% at 64."
        in texts
    )
    bpb = next(t for t in texts if t.startswith("Bits per byte (lower"))
    assert "1.100" not in bpb and "Transformer 2.300" in bpb
    assert any(t.startswith("Bits per byte of the transformers checkpoint") for t in texts)
    assert facts.rows("perplexity", model="hf")["train_length"].isna().all()
