"""results/<run-id>/: manifest.json and records.jsonl, crash-safe and resumable.

Each attempt is one JSON line, written with a single write, flushed and fsynced, so a killed
orchestrator leaves at most one torn last line. On open, a torn tail is moved to
`records.torn.jsonl` (kept for inspection, never counted) and the file is cut back to its last
complete line. A point whose hash has a complete record is not measured again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from harness import SCHEMA_VERSION

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"
TORN = "records.torn.jsonl"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Store:
    def __init__(self, run_dir: str | os.PathLike):
        self.dir = Path(run_dir)
        self.records_path = self.dir / RECORDS
        self.manifest_path = self.dir / MANIFEST
        self.dir.mkdir(parents=True, exist_ok=True)
        self.quarantined = self._repair()

    def _repair(self) -> int:
        """Set aside a torn tail (or any unparsable line); returns how many lines were moved."""
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

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.records_path)

    def latest_by_hash(self) -> dict[str, dict[str, Any]]:
        return latest_by_hash(self.records())

    def append(self, record: dict[str, Any]) -> None:
        record = {"schema": SCHEMA_VERSION, **record}
        line = (json.dumps(record, sort_keys=True, default=_jsonable) + "\n").encode()
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
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=_jsonable) + "\n")
        os.replace(tmp, self.manifest_path)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Complete records of a records.jsonl, read-only (a torn tail is ignored, not repaired)."""
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
