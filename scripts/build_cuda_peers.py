"""Build the compiled peers (mamba-ssm's selective scan, causal-conv1d) for this GPU only.

`pip install mamba-ssm` compiles its CUDA for eight architectures (~9 minutes on a 16-core lent
H200); the side-by-side needs the one the benchmark runs on. This builds each extension from the
package's own sources and flags, for the current device's architecture alone, with
torch.utils.cpp_extension (ninja, one job per core), and lays the packages out to import:

    python scripts/build_cuda_peers.py --sdists wheelhouse --out .venv/peers --pth   # make peers
    python scripts/build_cuda_peers.py --sdists .whl --out /tmp/peers   # then, by hand:
    export PYTHONPATH=$PYTHONPATH:$(python scripts/build_cuda_peers.py --out /tmp/peers --path)

Needs nvcc matching torch's CUDA major version and the sdists mamba_ssm-*.tar.gz and
causal_conv1d-*.tar.gz (`pip download --no-deps --no-binary :all:`). mamba-ssm's package
__init__ imports its models (transformers and more); the peers need only its ops, so the
extracted copy's __init__ is reduced to its version line.
"""

from __future__ import annotations

import argparse
import glob
import multiprocessing as mp
import os
import re
import shutil
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# The packages' nvcc flags (their setup.py), less the architecture list and the C++ standard
# (torch's extension builder sets the one its headers need).
NVCC_FLAGS = [
    "-O3",
    "-U__CUDA_NO_HALF_OPERATORS__",
    "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT16_OPERATORS__",
    "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT162_OPERATORS__",
    "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
    "--expt-relaxed-constexpr",
    "--expt-extended-lambda",
    "--use_fast_math",
    "-lineinfo",
]
# causal-conv1d's backward is not built: its one file compiled for more than 9 minutes for
# sm_90 alone on the 16-core H200 box (cut twice, at 330 s and 240 s more, 2026-12-01), and the
# side-by-side times the forward and the decode update. Its entry points still link; they raise.
BWD_STUB = "csrc/causal_conv1d_bwd_stub.cu"
# extension name -> (sdist prefix, sources relative to the package root)
EXTENSIONS = {
    "selective_scan_cuda": (
        "mamba_ssm",
        ["csrc/selective_scan/selective_scan.cpp"]
        + [
            f"csrc/selective_scan/selective_scan_{d}_{t}.cu"
            for d, t in [("fwd", "fp32"), ("fwd", "fp16"), ("fwd", "bf16")]
        ]
        + [
            f"csrc/selective_scan/selective_scan_bwd_{t}_{k}.cu"
            for t in ("fp32", "fp16", "bf16")
            for k in ("real", "complex")
        ],
    ),
    "causal_conv1d_cuda": (
        "causal_conv1d",
        [
            "csrc/causal_conv1d.cpp",
            "csrc/causal_conv1d_fwd.cu",
            BWD_STUB,  # written by stub_conv_backward from causal_conv1d_bwd.cu
            "csrc/causal_conv1d_update.cu",
        ],
    ),
}


def extract(sdists: Path, prefix: str, dest: Path) -> Path:
    """The package root of the one sdist named prefix-*.tar.gz, extracted under dest."""
    found = sorted(glob.glob(str(sdists / f"{prefix}-*.tar.gz")))
    if len(found) != 1:
        raise SystemExit(f"need exactly one {prefix}-*.tar.gz in {sdists}, found {found}")
    with tarfile.open(found[0]) as tar:
        top = tar.getnames()[0].split("/")[0]
        for old in dest.glob(f"{prefix}-*"):  # another version's copy: it would import too
            if old.name != top:
                shutil.rmtree(old)
        tar.extractall(dest, filter="data")
    return dest / top


def stub_mamba_init(root: Path) -> None:
    init = root / "mamba_ssm" / "__init__.py"
    version = re.search(r"^__version__\s*=.*$", init.read_text(), re.MULTILINE)
    init.write_text((version.group(0) if version else '__version__ = "unknown"') + "\n")


def stub_conv_backward(root: Path) -> Path:
    """BWD_STUB beside causal_conv1d_bwd.cu: the same includes and explicit instantiations of
    its two launchers, whose bodies raise (the package's .cpp binds them, so they must link)."""
    src = (root / "csrc" / "causal_conv1d_bwd.cu").read_text()
    includes = re.findall(r"^#include .*$", src, re.MULTILINE)
    instances = re.findall(r"^template void causal_conv1d\w*_bwd_cuda<.*;$", src, re.MULTILINE)
    if not instances:
        raise SystemExit("causal_conv1d_bwd.cu: no explicit instantiations found to stub")
    launchers = sorted(set(re.findall(r"(causal_conv1d\w*_bwd_cuda)<", "\n".join(instances))))
    bodies = [
        "template<typename input_t, typename weight_t>\n"
        f"void {name}(ConvParamsBwd &params, cudaStream_t stream) {{\n"
        f'    TORCH_CHECK(false, "{name}: not built by ctxbench\'s make peers (forward only)");\n'
        "}"
        for name in launchers
    ]
    stub = root / BWD_STUB
    stub.write_text(
        "// Written by ctxbench's scripts/build_cuda_peers.py: backward entry points that raise.\n"
        + "\n".join([*includes, "#include <c10/util/Exception.h>", "", *bodies, "", *instances])
        + "\n"
    )
    return stub


def arch_flag() -> str:
    import torch

    major, minor = torch.cuda.get_device_capability()
    return f"-gencode=arch=compute_{major}{minor},code=sm_{major}{minor}"


def build(name: str, root: Path, out: Path) -> float:
    from torch.utils.cpp_extension import load

    build_dir = out / "build" / name
    build_dir.mkdir(parents=True, exist_ok=True)
    # a build killed by a time limit leaves its lock; the next one would wait on it forever
    (build_dir / "lock").unlink(missing_ok=True)
    start = time.perf_counter()
    load(
        name=name,
        sources=[str(root / s) for s in EXTENSIONS[name][1]],
        extra_cflags=["-O3"],
        extra_cuda_cflags=NVCC_FLAGS + [arch_flag()],
        extra_include_paths=[str(root / "csrc"), str(root / "csrc" / "selective_scan")],
        build_directory=str(build_dir),
        verbose=False,
    )
    return time.perf_counter() - start


def import_path(out: Path) -> str:
    """The PYTHONPATH entries that make both packages and their extensions importable."""
    roots = sorted(str(p) for p in (out / "src").iterdir()) if (out / "src").is_dir() else []
    builds = [str(out / "build" / name) for name in EXTENSIONS]
    return os.pathsep.join(roots + builds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdists", type=Path, default=Path(".whl"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--path", action="store_true", help="print the PYTHONPATH entries and exit")
    ap.add_argument("--pth", action="store_true", help="put them in this Python's site-packages")
    args = ap.parse_args()
    if args.path:
        print(import_path(args.out))
        return
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 1))
    roots = {}
    for name, (prefix, _) in EXTENSIONS.items():
        roots[name] = extract(args.sdists, prefix, args.out / "src")
        if prefix == "mamba_ssm":
            stub_mamba_init(roots[name])
        if name == "causal_conv1d_cuda":
            stub_conv_backward(roots[name])
    # Both at once, a process each: each build's wall time is its slowest file (the scan's
    # backward instantiations, the conv's backward), so one after the other they took 130 s
    # plus more than 200 s on the 16-core H200 box, cores idle for most of it.
    failed = []
    with ProcessPoolExecutor(len(roots), mp_context=mp.get_context("spawn")) as pool:
        jobs = {name: pool.submit(build, name, root, args.out) for name, root in roots.items()}
        for name, job in jobs.items():
            try:
                print(f"{name}: built in {job.result():.0f} s ({arch_flag()})", flush=True)
            except Exception as e:  # the other may still build: say which failed, go on
                failed.append(name)
                print(f"{name}: build failed: {e}", flush=True)
    print(import_path(args.out))
    if args.pth:
        print(f"importable from {write_pth(args.out)}")
    if failed:
        raise SystemExit(f"failed to build: {', '.join(failed)}")


def write_pth(out: Path) -> Path:
    """A .pth file in this interpreter's site-packages naming the packages and extensions."""
    import sysconfig

    pth = Path(sysconfig.get_paths()["purelib"]) / "ctxbench-peers.pth"
    pth.write_text(
        "\n".join(str(Path(p).resolve()) for p in import_path(out).split(os.pathsep)) + "\n"
    )
    return pth


if __name__ == "__main__":
    main()
