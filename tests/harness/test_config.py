"""Every YAML under conf/ composes against the schema; bad overrides fail fast, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from harness import config as C
from harness.cli import CONF_DIR

from .conftest import run_cli

GROUPS_IN_DEFAULTS = ("suite", "backend", "hardware", "size")


def _compose(*overrides: str):
    GlobalHydra.instance().clear()
    C.register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS_IN_DEFAULTS for o in _options(g)])
def test_every_group_option_composes_and_converts(group, option):
    cfg = _compose(f"{group}={option}")
    obj = C.to_object(cfg)
    assert isinstance(obj, C.Config)
    if group == "suite":
        assert obj.suite.name == option


def test_sweep_axes_take_lists_with_human_units():
    obj = C.to_object(
        _compose("suite=kernels", "sweep.context=[1k,4k,64k,1m]", "sweep.batch=[1,8]")
    )
    assert C.contexts(obj) == [1024, 4096, 65536, 1048576]
    assert C.batches(obj) == [1, 8]


def test_suite_defaults_apply_when_sweep_is_null():
    obj = C.to_object(_compose("suite=smoke"))
    assert C.contexts(obj) == [256, 1024]  # conf/suite/smoke.yaml: [256, 1k]


def test_unknown_key_is_rejected_at_compose_time():
    with pytest.raises(Exception, match="no_such_field"):
        _compose("suite=kernels", "suite.kernels.no_such_field=3")


@pytest.mark.parametrize(
    "override, field, hint",
    [
        ("sweep.context=[1k,12q]", "sweep.context", "k/m/g suffix"),
        ("sweep.batch=[-1]", "sweep.batch", "positive"),
        ("suite.kernels.ops=[attention,warp_drive]", "suite.kernels.ops", "ssd"),
        ("backend.attention=fastest", "backend.attention", "cudnn"),
        ("suite.dtype=fp8", "suite.dtype", "bfloat16"),
        ("run.retry=[broken]", "run.retry", "timeout"),
        ("run.time_limit_s=0", "run.time_limit_s", "seconds > 0"),
    ],
)
def test_bad_overrides_exit_2_naming_field_and_choices(override, field, hint, out_dirs, tmp_path):
    suite = "suite=kernels" if "kernels" in override or "backend" in override else "suite=smoke"
    res = run_cli(suite, override, *out_dirs, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert field in res.stderr and hint in res.stderr
    assert not (tmp_path / "results").exists()  # nothing ran, nothing written


def test_unknown_suite_lists_the_valid_ones(out_dirs):
    res = run_cli("suite=nope", *out_dirs, timeout=120)
    assert res.returncode != 0
    assert "kernels" in res.stderr and "smoke" in res.stderr


def test_multirun_makes_one_run_per_value(tmp_path, out_dirs):
    res = run_cli(
        "-m",
        "suite=selftest",
        "suite.selftest.behaviours=[ok]",
        "sweep.context=[1k]",
        "run.seed=0,1",
        "run.report=false",
        *out_dirs,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    # _multirun holds Hydra's own multirun.yaml, not a run
    runs = sorted(p.name for p in (tmp_path / "results").iterdir() if not p.name.startswith("_"))
    assert len(runs) == 2 and all(r.startswith("selftest-") for r in runs)


def test_suite_auto_says_what_it_picked(out_dirs):
    res = run_cli(
        "suite.cpu=selftest",
        "suite.selftest.behaviours=[ok]",
        "sweep.context=[1k]",
        "run.report=false",
        *out_dirs,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "suite=auto: picked 'selftest' (no CUDA GPU)" in res.stdout
