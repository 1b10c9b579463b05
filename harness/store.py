"""results/<run-id>/: manifest.json and the records, crash-safe, resumable and shareable.

Each attempt is one JSON line, written with a single write, flushed and fsynced, so a killed
orchestrator leaves at most one torn last line. On open, a torn tail of the file this store
writes is moved to `records.torn.jsonl` (kept for inspection, never counted) and the file is cut
back to its last complete line. A point whose hash has a complete record is not measured again.

One orchestrator on one host writes `records.jsonl`. Orchestrators that share a run folder
(cluster jobs, several tasks of one job) each write their own `records.d/<writer>.jsonl`:
O_APPEND is not atomic across NFS clients, so no two hosts ever append to one file. Readers
merge every file (see `read_run`); `harness.leases` keeps two writers off the same point.
"""

from __future__ import annotations

import calendar
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from harness import SCHEMA_VERSION

RECORDS = "records.jsonl"
WRITERS = "records.d"  # one records file per extra writer: records.d/<writer>.jsonl
MANIFEST = "manifest.json"
TORN = "records.torn.jsonl"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def writer_id() -> str:
    """Unique per orchestrator process: host names repeat across containers, pids across time."""
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


class Store:
    def __init__(self, run_dir: str | os.PathLike, writer: str | None = None):
        self.dir = Path(run_dir)
        self.writer = writer
        self.records_path = (
            self.dir / RECORDS if writer is None else self.dir / WRITERS / f"{writer}.jsonl"
        )
        self.manifest_path = self.dir / MANIFEST
        self.records_path.parent.mkdir(parents=True, exist_ok=True)
        self.quarantined = self._repair()
        self._lock = threading.Lock()  # pool threads append and poll concurrently
        self._reader = _MergedReader(self.dir)

    def _repair(self) -> int:
        """Set aside a torn tail (or any unparsable line) of the file this store writes; returns
        how many lines were moved. Other writers' files are never rewritten: they may be live."""
        if not self.records_path.exists():
            return 0
        raw = self.records_path.read_bytes()
        good, bad = [], []
        lines = raw.split(b"\n")
        tail = lines.pop()  # after the last newline: b"" when the file ends cleanly
        if tail:
            bad.append(tail)
        for line in lines:
            if not line.strip():
                continue
            try:
                json.loads(line)
                good.append(line)
            except json.JSONDecodeError:
                bad.append(line)
        if not bad:
            return 0
        with open(self.dir / TORN, "ab") as f:
            for line in bad:
                f.write(line + b"\n")
        tmp = self.records_path.with_suffix(".jsonl.tmp")
        tmp.write_bytes(b"".join(line + b"\n" for line in good))
        os.replace(tmp, self.records_path)
        return len(bad)

    def poll(self) -> list[dict[str, Any]]:
        """Records completed (by any writer) since the last poll; cheap: reads only new bytes."""
        with self._lock:
            return self._reader.poll()

    @property
    def generation(self) -> int:
        """Changes when a records file was rewritten under the reader, which then read everything
        again: a consumer counting polled records must recount from `records()`."""
        return self._reader.generation

    def records(self) -> list[dict[str, Any]]:
        """Every complete record of the run, all writers merged (see `merge`)."""
        with self._lock:
            self._reader.poll()
            return self._reader.merged()

    def latest_by_hash(self) -> dict[str, dict[str, Any]]:
        return latest_by_hash(self.records())

    def append(self, record: dict[str, Any]) -> None:
        record = {"schema": SCHEMA_VERSION, **record}
        line = (json.dumps(record, sort_keys=True, default=_jsonable) + "\n").encode()
        with self._lock:
            fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        return json.loads(self.manifest_path.read_text())

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        os.replace(self._staged(manifest), self.manifest_path)

    def create_manifest(self, manifest: dict[str, Any]) -> bool:
        """Write the manifest unless one exists (the first of several jobs wins); atomic even
        on NFS, where a hard link either appears whole or fails."""
        tmp = self._staged(manifest)
        try:
            os.link(tmp, self.manifest_path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def _staged(self, manifest: dict[str, Any]) -> Path:
        # A name of its own: two hosts replacing the manifest must not share a temporary file.
        tmp = self.dir / f".{MANIFEST}.{self.writer or 'main'}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=_jsonable) + "\n")
        return tmp


class _MergedReader:
    """Incremental reader of records.jsonl and records.d/*.jsonl: per file, the bytes consumed
    so far. Only complete lines are consumed, so another writer's line in flight is read once it
    is whole. A file that shrank or was replaced (a torn tail repaired) makes it start over."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.seen: dict[str, tuple[int, int]] = {}  # file -> (inode, bytes consumed)
        self.by_file: dict[str, list[dict[str, Any]]] = {}
        self.generation = 0  # bumped when it starts over: what was polled is polled again

    def files(self) -> list[Path]:
        main = [self.dir / RECORDS] if (self.dir / RECORDS).exists() else []
        return main + sorted((self.dir / WRITERS).glob("*.jsonl"))

    def poll(self) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        for path in self.files():
            try:
                with open(path, "rb") as f:
                    inode, size = os.fstat(f.fileno()).st_ino, os.fstat(f.fileno()).st_size
                    old_inode, offset = self.seen.get(path.name, (inode, 0))
                    if inode != old_inode or size < offset:
                        self.seen.clear()
                        self.by_file.clear()
                        self.generation += 1
                        return self.poll()
                    f.seek(offset)
                    chunk = f.read()
            except FileNotFoundError:
                continue
            end = chunk.rfind(b"\n") + 1
            self.seen[path.name] = (inode, offset + end)
            got = _parse_lines(chunk[:end])
            self.by_file.setdefault(path.name, []).extend(got)
            new.extend(got)
        return new

    def merged(self) -> list[dict[str, Any]]:
        return merge(list(self.by_file.values()))


def _parse_lines(data: bytes) -> list[dict[str, Any]]:
    out = []
    for line in data.split(b"\n"):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a torn line of a dead writer: never counted
                continue
    return out


def merge(per_file: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One writer: its file order. Several: ordered by end time, so the last attempt of a point
    (retried by another job) comes last; ties keep file order."""
    if len(per_file) <= 1:
        return list(per_file[0]) if per_file else []
    keyed = [
        (_end_key(rec), i, j, rec) for i, recs in enumerate(per_file) for j, rec in enumerate(recs)
    ]
    return [rec for *_, rec in sorted(keyed, key=lambda k: k[:3])]


def _end_key(rec: dict[str, Any]) -> float:
    if isinstance(rec.get("ended_unix"), int | float):
        return float(rec["ended_unix"])
    try:
        return float(calendar.timegm(time.strptime(rec.get("ended", ""), "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return 0.0


def read_run(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Complete records of a run folder, every writer merged, read-only (nothing repaired)."""
    reader = _MergedReader(Path(run_dir))
    reader.poll()
    return reader.merged()


def read_records(path: Path) -> list[dict[str, Any]]:
    """Complete records of one records file, read-only (a torn tail is ignored, not repaired)."""
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n") and line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return out


def latest_by_hash(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record of each point (a retried point has several attempts)."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in records:
        latest[rec["hash"]] = rec
    return latest


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple | set):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    return str(obj)
