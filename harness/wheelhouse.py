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
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]
ALWAYS = ["setuptools", "wheel"]  # to build the editable install offline
MISSING = re.compile(r"(?:No matching distribution found for|satisfies the requirement) ([A-Za-z0-9_.\-]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def target_args(py: str) -> list[str]:
    args = ["--only-binary=:all:", "--python-version", py, "--implementation", "cp"]
    for plat in PLATFORMS:
        args += ["--platform", plat]
    return args


def resolve(requirements: list[str], py: str, dest: Path) -> list[dict]:
    """The full dependency closure for the target Python; sdist-only packages are built here."""
    built: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        while True:
            out = pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report",
                      str(report), "--target", str(Path(tmp) / "t"), "--find-links", str(dest),
                      *target_args(py), *requirements)
            if out.returncode == 0:
                return json.loads(report.read_text())["install"]
            match = MISSING.search(out.stderr)
            name = match.group(1) if match else None
            if not name or canonical(name) in built:
                sys.exit(f"wheelhouse: cannot resolve for Python {py}:\n{out.stderr[-3000:]}")
            print(f"building a pure-Python wheel of {name} (published as source only)")
            wheel = pip("wheel", "--no-deps", "--quiet", "-w", str(dest), name)
            if wheel.returncode != 0:
                sys.exit(f"wheelhouse: building {name} failed:\n{wheel.stderr[-3000:]}")
            built.add(canonical(name))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.wheelhouse")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--dest", default="wheelhouse")
    parser.add_argument("--exclude", action="append", default=[], help="glob of names to leave out")
    parser.add_argument("--exclude-from", help="file of names the target already has")
    args = parser.parse_args()
    dest = Path(args.dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    exclude = DEFAULT_EXCLUDE + args.exclude
    if args.exclude_from:
        for line in Path(args.exclude_from).read_text().splitlines():
            name = re.split(r"[=<>@ ;\[]", line.strip(), maxsplit=1)[0]
            if name and not name.startswith("#"):
                exclude.append(name)
    requirements = [*project_requirements(), *ALWAYS]
    closure = resolve(requirements, args.python_version, dest)
    wanted = []
    for item in closure:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if any(fnmatch.fnmatch(canonical(name), canonical(pat)) for pat in exclude):
            continue
        if list(dest.glob(f"{canonical(name).replace('-', '_')}-{version}-*.whl")):
            continue
        wanted.append(f"{name}=={version}")
    if wanted:
        out = pip("download", "--no-deps", "--quiet", "-d", str(dest), "--find-links", str(dest),
                  *target_args(args.python_version), *wanted)
        if out.returncode != 0:
            sys.exit(f"wheelhouse: download failed:\n{out.stderr[-3000:]}")
    print(f"wheelhouse: {len(list(dest.glob('*.whl')))} wheels in {args.dest} for Python "
          f"{args.python_version} (left out: {', '.join(exclude)})")


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
