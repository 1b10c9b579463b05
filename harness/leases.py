"""Leases: which orchestrator is measuring which point, across processes and hosts that share
one run folder (SLURM jobs on a network filesystem), so that a point is measured once. (Not
the report's claims ledger: a lease is held while a point is measured, then given back.)

`leases/<hash>.<n>` names its holder. It is taken with a hard link of a fully written temporary
file: atomic on NFS (O_APPEND is not), and a reader never sees a half-written lease. The number
is one past the newest existing lease, so of several orchestrators that find the same lease
stale, exactly one wins the next number. A holder removes its lease once its record is written.
A lease is stale when its holder is dead: on the same host (same boot), when its process is gone;
on another host, when the holder's heartbeat file `leases/<writer>.alive`, touched every
`heartbeat_s`, is older than `stale_after_s` (filesystem clock on both sides, so skewed host
clocks do not matter).

Whoever takes a lease must re-read the records before measuring: the point may have been
finished by the previous holder in between (`harness.runner` does).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

LEASES = "leases"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in (...) may hold spaces


def _pid_alive(pid: int, start: str | None) -> bool:
    if Path("/proc").is_dir() and Path("/proc/self/stat").exists():
        now = _proc_start(pid)
        return now is not None and (start is None or now == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Leases:
    def __init__(
        self,
        run_dir: str | os.PathLike,
        writer: str,
        heartbeat_s: float = 30.0,
        stale_after_s: float = 300.0,
    ):
        if stale_after_s < 3 * heartbeat_s:
            raise ValueError("stale_after_s must be >= 3 heartbeats: a slow beat is not death")
        self.dir = Path(run_dir) / LEASES
        self.dir.mkdir(parents=True, exist_ok=True)
        self.writer, self.stale_after_s = writer, stale_after_s
        self.me = {
            "writer": writer,
            "host": socket.gethostname(),
            "boot": _boot_id(),
            "pid": os.getpid(),
            "start": _proc_start(os.getpid()),
        }
        self.alive = self.dir / f"{writer}.alive"
        self.alive.write_text(json.dumps(self.me))
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, args=(heartbeat_s,), daemon=True)
        self._beat.start()

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                os.utime(self.alive)
            except OSError:  # a filesystem hiccup; the next beat tries again
                pass

    def close(self) -> None:
        self._stop.set()
        self._beat.join(5)
        self.alive.unlink(missing_ok=True)

    def __enter__(self) -> Leases:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _numbers(self, key: str) -> list[int]:
        prefix = key + "."
        out = []
        for name in os.listdir(self.dir):
            if name.startswith(prefix) and name[len(prefix) :].isdigit():
                out.append(int(name[len(prefix) :]))
        return sorted(out)

    def holder(self, key: str) -> dict[str, Any] | None:
        """Who holds `key` now (stale or not), or None."""
        numbers = self._numbers(key)
        try:
            return _read(self.dir / f"{key}.{numbers[-1]}") if numbers else None
        except FileNotFoundError:
            return None

    def acquire(self, key: str) -> Path | None:
        """Take the lease on `key`; None when a live orchestrator holds it."""
        numbers = self._numbers(key)
        if numbers and not self._stale(self.dir / f"{key}.{numbers[-1]}"):
            return None
        n = numbers[-1] + 1 if numbers else 0
        target = self.dir / f"{key}.{n}"
        tmp = self.dir / f".tmp-{self.writer}-{key}.{n}"
        tmp.write_text(json.dumps({**self.me, "leased": time.time()}))
        try:
            try:
                os.link(tmp, target)
                won = True
            except FileExistsError:
                won = os.stat(tmp).st_nlink == 2  # NFS: our link landed, its reply was lost
        finally:
            tmp.unlink(missing_ok=True)
        if not won:
            return None
        for m in numbers:  # the stale leases this one replaces
            (self.dir / f"{key}.{m}").unlink(missing_ok=True)
        return target

    def release(self, lease: Path) -> None:
        lease.unlink(missing_ok=True)

    def prune(self) -> int:
        """Remove what dead orchestrators left: their leases (a kill between writing a record and
        giving the lease back leaves one on a finished point), heartbeats and temporary files."""
        removed = 0
        for name in os.listdir(self.dir):
            path = self.dir / name
            if path == self.alive:
                continue
            # Heartbeat and temporary files name their writer just as a lease does.
            if self._stale(path):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _now(self) -> float:
        """The filesystem's clock: touch our own heartbeat file and read its time."""
        os.utime(self.alive)
        return os.stat(self.alive).st_mtime

    def _stale(self, lease: Path) -> bool:
        try:
            info = _read(lease)
            lease_mtime = os.stat(lease).st_mtime
        except FileNotFoundError:
            return True  # released while we looked: free (the records tell whether it is done)
        if info is None:  # not ours to judge by content; only age tells
            return self._now() - lease_mtime > self.stale_after_s
        if info.get("writer") == self.writer:
            return False
        if info.get("host") == self.me["host"] and info.get("boot") == self.me["boot"]:
            return not _pid_alive(int(info["pid"]), info.get("start"))
        try:
            beat = os.stat(self.dir / f"{info.get('writer')}.alive").st_mtime
        except FileNotFoundError:
            beat = lease_mtime  # the holder ended (or never beat): the lease's own age decides
        return self._now() - beat > self.stale_after_s


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
