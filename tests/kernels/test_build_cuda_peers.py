"""The compiled peers' build script, up to the compiler: unpacking, the reduced mamba-ssm
__init__, and the import path it prints (the build itself needs nvcc and a GPU)."""

import importlib.util
import io
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bcp", ROOT / "scripts" / "build_cuda_peers.py")
bcp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bcp)


def _sdist(folder: Path, name: str, files: dict[str, str]) -> None:
    with tarfile.open(folder / f"{name}.tar.gz", "w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_unpacks_and_reduces_mamba_ssm_to_its_version(tmp_path):
    _sdist(
        tmp_path, "mamba_ssm-2.3.2", {"mamba_ssm/__init__.py": '__version__ = "2.3.2"\nimport x\n'}
    )
    root = bcp.extract(tmp_path, "mamba_ssm", tmp_path / "out" / "src")
    bcp.stub_mamba_init(root)
    assert (root / "mamba_ssm" / "__init__.py").read_text() == '__version__ = "2.3.2"\n'
    entries = bcp.import_path(tmp_path / "out").split(":")
    assert entries[0] == str(root)
    assert entries[1:] == [str(tmp_path / "out" / "build" / n) for n in bcp.EXTENSIONS]


def test_a_missing_or_ambiguous_sdist_names_what_it_needs(tmp_path):
    with pytest.raises(SystemExit, match="causal_conv1d"):
        bcp.extract(tmp_path, "causal_conv1d", tmp_path / "src")
    for v in ("1.6", "1.7"):
        _sdist(tmp_path, f"causal_conv1d-{v}", {"setup.py": ""})
    with pytest.raises(SystemExit, match="exactly one"):
        bcp.extract(tmp_path, "causal_conv1d", tmp_path / "src")


def _real_sdists() -> Path:
    for sdists in (ROOT / ".whl", ROOT / "wheelhouse"):
        if list(sdists.glob("mamba_ssm-*.tar.gz")) and list(sdists.glob("causal_conv1d-*")):
            return sdists
    pytest.skip(
        "the peers' sdists are in neither .whl nor wheelhouse (make wheelhouse ARGS=--peers)"
    )


def test_every_listed_source_is_in_the_real_sdists():
    sdists = _real_sdists()
    for prefix, sources in bcp.EXTENSIONS.values():
        (path,) = sdists.glob(f"{prefix}-*.tar.gz")
        with tarfile.open(path) as tar:
            names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        assert set(sources) - {bcp.BWD_STUB} <= names, set(sources) - names


BWD = """#include "causal_conv1d.h"
template<typename input_t, typename weight_t>
void causal_conv1d_bwd_cuda(ConvParamsBwd &params, cudaStream_t stream) { heavy(); }
template void causal_conv1d_bwd_cuda<float, float>(ConvParamsBwd &params, cudaStream_t stream);
template void causal_conv1d_channellast_bwd_cuda<at::Half, float>(ConvParamsBwd &p, cudaStream_t s);
"""


def test_conv_backward_stub_keeps_every_instantiation_and_raises(tmp_path):
    (tmp_path / "csrc").mkdir()
    (tmp_path / "csrc" / "causal_conv1d_bwd.cu").write_text(BWD)
    text = bcp.stub_conv_backward(tmp_path).read_text()
    assert "heavy()" not in text and '#include "causal_conv1d.h"' in text
    for line in BWD.splitlines()[3:]:  # the explicit instantiations, unchanged
        assert line in text
    assert text.count("TORCH_CHECK(false") == 2  # one body per launcher


def test_conv_backward_stub_from_the_real_sdist(tmp_path):
    root = bcp.extract(_real_sdists(), "causal_conv1d", tmp_path / "src")
    text = bcp.stub_conv_backward(root).read_text()
    assert text.count("template void causal_conv1d_bwd_cuda<") == 9
    assert text.count("template void causal_conv1d_channellast_bwd_cuda<") == 9


def test_pth_makes_the_built_peers_importable(tmp_path, monkeypatch):
    """`make peers` leaves a .pth in the venv: the peers import with no PYTHONPATH."""
    import subprocess
    import sys
    import sysconfig

    out = tmp_path / "peers"
    (out / "src" / "pkgroot" / "peerpkg").mkdir(parents=True)
    (out / "src" / "pkgroot" / "peerpkg" / "__init__.py").write_text("X = 1\n")
    for name in bcp.EXTENSIONS:  # a stand-in for each built extension
        (out / "build" / name).mkdir(parents=True)
        (out / "build" / name / f"{name}.py").write_text("BUILT = True\n")
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"purelib": str(site)})
    pth = bcp.write_pth(out)
    code = "import peerpkg, selective_scan_cuda, causal_conv1d_cuda; print(peerpkg.X)"
    run = subprocess.run(
        [sys.executable, "-c", f"import site; site.addsitedir({str(site)!r}); {code}"],
        capture_output=True,
        text=True,
    )
    assert pth.parent == site and run.returncode == 0, run.stderr
    assert run.stdout.strip() == "1"


def test_another_versions_copy_is_removed_so_it_cannot_import(tmp_path):
    dest = tmp_path / "out" / "src"
    for v in ("1.6", "1.7"):
        (tmp_path / v).mkdir()
        _sdist(tmp_path / v, f"causal_conv1d-{v}", {"setup.py": ""})
        root = bcp.extract(tmp_path / v, "causal_conv1d", dest)
    assert [p.name for p in dest.iterdir()] == [root.name] == ["causal_conv1d-1.7"]
