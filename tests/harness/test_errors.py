"""A failed point's reason and traceback name files without the machine's paths."""

from __future__ import annotations

import os

import pytest
import torch

from harness.errors import ROOT, classify, scrub_paths, short_traceback


def test_a_crash_inside_torch_is_recorded_without_machine_paths():
    try:
        torch.zeros(2).index_copy_(0, torch.tensor([0]), torch.zeros(1, dtype=torch.float64))
    except RuntimeError as exc:
        status, reason = classify(exc)
        trace = short_traceback(exc)
    assert status == "crashed" and "index_copy_" in reason
    assert "tests/harness/test_errors.py" in trace  # repository-relative
    assert str(ROOT) not in trace and os.path.expanduser("~") + "/" not in trace


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (f'File "{ROOT}/models/stack.py", line 1', 'File "models/stack.py", line 1'),
        ('"/opt/v/lib/python3.12/site-packages/lm_eval/u.py"', '"<site-packages>/lm_eval/u.py"'),
        ("/usr/local/lib/python3.11/dist-packages/torch/a.py", "<site-packages>/torch/a.py"),
        ('File "/usr/lib/python3.12/abc.py", line 8', 'File "<python>/abc.py", line 8'),
        (f"no such file: {os.path.expanduser('~')}/.cache/x", "no such file: ~/.cache/x"),
        (f"/mnt{ROOT}/x.py", f"/mnt{ROOT}/x.py"),  # another path that contains ours: kept
        ("PYTHONPATH=/a/site-packages/b", "PYTHONPATH=<site-packages>/b"),
    ],
)  # fmt: skip
def test_scrub_paths(raw, clean):
    assert scrub_paths(raw) == clean
