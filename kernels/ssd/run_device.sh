#!/usr/bin/env bash
# One device session for the SSD kernels: set up the peers, smoke-test, GPU tests, side-by-side bench.
# Command (lent GPU, repository root, `.whl` carried): bash kernels/ssd/run_device.sh "$OUT"
# Needs in .whl/: fla_core-0.6.0-py3-none-any.whl and mamba_ssm-2.3.2.post1.tar.gz (see NOTES.md).
set -o pipefail
OUT=${1:-/tmp/ssd_out}
mkdir -p "$OUT" /tmp/mb /tmp/site
tar xzf .whl/mamba_ssm-2.3.2.post1.tar.gz -C /tmp/mb
# mamba_ssm/__init__.py imports its models (transformers, compiled ops); the Triton SSD ops need none.
echo '__version__ = "2.3.2.post1"' > /tmp/mb/mamba_ssm-2.3.2.post1/mamba_ssm/__init__.py
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
    .whl/fla_core-0.6.0-py3-none-any.whl
export PYTHONPATH=$PWD:/tmp/site:/tmp/mb/mamba_ssm-2.3.2.post1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv
python3 - <<'PY' || exit 1
import torch
from kernels.ssd import ssd, ssd_ref
from kernels.ssd_step import ssd_step, ssd_step_ref
g = torch.Generator(device="cuda").manual_seed(0)
r = lambda *s: torch.randn(*s, generator=g, device="cuda")
x, dt, B, C = r(2, 1000, 8, 64).bfloat16(), r(2, 1000, 8) - 3, r(2, 1000, 1, 128).bfloat16(), r(2, 1000, 1, 128).bfloat16()
A = -torch.rand(8, device="cuda")
y = ssd(x, dt, A, B, C, 256, dt_softplus=True)
ref = ssd_ref(x.float(), dt, A, B.float(), C.float(), 256, dt_softplus=True)
e = ((y.float() - ref).norm() / ref.norm()).item()
s = r(2, 8, 64, 128); s2 = s.clone()
ys = ssd_step(s, x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], dt_softplus=True)
ys2 = ssd_step_ref(s2, x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], dt_softplus=True).float()
e2 = ((ys.float() - ys2).norm() / ys2.norm()).item()
print("smoke: ssd rel err", e, "step rel err", e2)
assert e < 1e-2 and e2 < 1e-2
PY
[ -n "${SKIP_TESTS:-}" ] || timeout "${TEST_TIMEOUT:-200}" python3 -m pytest tests/kernels/test_ssd_gpu.py -q -m gpu \
    -k "${TEST_FILTER:-not peers}" -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log"
timeout "${BENCH_TIMEOUT:-300}" python3 -m kernels.ssd.bench_gpu --out "$OUT" ${BENCH_ARGS:-} \
    2>&1 | tee "$OUT/bench.log"
