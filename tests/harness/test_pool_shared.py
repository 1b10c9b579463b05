"""Several orchestrators on one run folder (cluster jobs on a shared filesystem): one records file
per writer merged on read, leases so that a point is measured once, stale leases taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

from rich.console import Console

from harness.leases import Leases
from harness.plan import Planned
from harness.progress import PlainProgress
from harness.runner import Runner
from harness.store import RECORDS, WRITERS, Store, read_run

from .conftest import REPO, selftest_point
from .test_pool import FakeMeasure, fake_hw


def _rec(h: str, status: str = "ok", ended: float = 0.0) -> dict:
    return {"hash": h, "status": status, "point": {}, "ended_unix": ended}


def test_records_of_every_writer_are_merged_and_a_torn_foreign_tail_is_left_alone(tmp_path):
    main, a = Store(tmp_path), Store(tmp_path, writer="hostA-1")
    main.append(_rec("x", "crashed", ended=1.0))
    a.append(_rec("x", "ok", ended=2.0))  # the retry, by another job, later
    a.append(_rec("y", ended=3.0))
    with open(a.records_path, "ab") as f:
        f.write(b'{"hash": "z", "sta')  # that job was killed mid-write
    torn = a.records_path.read_bytes()
    assert a.records_path == tmp_path / WRITERS / "hostA-1.jsonl"
    assert [r["hash"] for r in read_run(tmp_path)] == ["x", "x", "y"]
    assert main.latest_by_hash()["x"]["status"] == "ok"
    Store(tmp_path)  # opening the main writer repairs records.jsonl only
    assert a.records_path.read_bytes() == torn
    assert Store(tmp_path).quarantined == 0 and (tmp_path / RECORDS).exists()


def test_poll_returns_only_new_complete_records(tmp_path):
    reader, writer = Store(tmp_path), Store(tmp_path, writer="w")
    writer.append(_rec("a"))
    assert [r["hash"] for r in reader.poll()] == ["a"]
    assert reader.poll() == []
    with open(writer.records_path, "ab") as f:
        f.write(b'{"hash": "b", "status": "ok", "point": {}')  # a line still being written
    assert reader.poll() == []
    with open(writer.records_path, "ab") as f:
        f.write(b"}\n")
    assert [r["hash"] for r in reader.poll()] == ["b"]


def test_a_records_file_rewritten_under_a_reader_is_read_again(tmp_path):
    reader, main = Store(tmp_path, writer="r"), Store(tmp_path)
    main.append(_rec("a"))
    main.append(_rec("b"))
    assert len(reader.poll()) == 2
    with open(tmp_path / RECORDS, "ab") as f:
        f.write(b'{"hash": "c", "sta')
    Store(tmp_path)  # the next local start repairs records.jsonl into a new file
    generation = reader.generation
    assert [r["hash"] for r in reader.poll()] == ["a", "b"]  # everything, flagged as such
    assert reader.generation == generation + 1


def test_a_lease_is_exclusive_until_released(tmp_path):
    with Leases(tmp_path, "a") as a, Leases(tmp_path, "b") as b:
        got = a.acquire("p1")
        assert got is not None and b.acquire("p1") is None
        assert b.holder("p1")["writer"] == "a"
        a.release(got)
        assert b.acquire("p1") is not None


def _forge(tmp_path, name: str, **info) -> None:
    (tmp_path / "leases").mkdir(exist_ok=True)
    (tmp_path / "leases" / name).write_text(json.dumps(info))


def test_a_dead_local_holder_is_stale_at_once(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with Leases(tmp_path, "me") as me:
        _forge(tmp_path, "p.0", writer="dead", host=me.me["host"], boot=me.me["boot"], pid=gone.pid)
        assert me.acquire("p") is not None
        assert sorted(os.listdir(tmp_path / "leases")) == ["me.alive", "p.1"]  # p.0 replaced


def test_prune_removes_what_dead_orchestrators_left_and_nothing_live(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with Leases(tmp_path, "me") as me:
        dead = dict(writer="dead", host=me.me["host"], boot=me.me["boot"], pid=gone.pid)
        live = dict(writer="far", host="other-node", boot="x", pid=1)
        for name, info in (
            ("p.0", dead),
            ("dead.alive", dead),
            (".tmp-dead-p.1", dead),  # killed between writing a lease and linking it
            ("q.3", live),
            ("far.alive", live),
        ):
            _forge(tmp_path, name, **info)
        assert me.prune() == 3
        assert sorted(os.listdir(tmp_path / "leases")) == ["far.alive", "me.alive", "q.3"]


def test_a_remote_holder_is_stale_only_when_its_heartbeat_stops(tmp_path):
    with Leases(tmp_path, "me", heartbeat_s=0.1, stale_after_s=1.0) as me:
        remote = dict(writer="far", host="other-node", boot="x", pid=1)
        _forge(tmp_path, "p.0", **remote)
        _forge(tmp_path, "far.alive", **remote)  # beating: fresh mtime
        assert me.acquire("p") is None
        old = time.time() - 5
        os.utime(tmp_path / "leases" / "far.alive", (old, old))  # the job died 5 s ago
        assert me.acquire("p") is not None


def test_of_many_takers_of_a_stale_lease_exactly_one_wins(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    boot = open("/proc/sys/kernel/random/boot_id").read().strip()
    _forge(tmp_path, "p.0", writer="dead", host=host, boot=boot, pid=gone.pid)
    takers = [Leases(tmp_path, f"w{i}") for i in range(8)]
    won, go = [], threading.Barrier(8)

    def race(c: Leases) -> None:
        go.wait()
        if c.acquire("p") is not None:
            won.append(c.writer)

    threads = [threading.Thread(target=race, args=(c,)) for c in takers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in takers:
        c.close()
    assert len(won) == 1


def test_two_orchestrators_on_one_run_measure_each_point_once(tmp_path):
    lengths = (1024, 4096, 8192, 16384)
    points = [selftest_point("oom_above", context=L) for L in lengths] + [
        selftest_point("ok", context=L, batch=b) for b in (2, 3, 4) for L in lengths
    ]
    measure = FakeMeasure(seconds=0.05, oom_above=4096)  # shared: counts both jobs' calls
    counts: list[dict] = []

    def job(writer: str) -> None:
        with Leases(tmp_path, writer) as leases:
            store = Store(tmp_path, writer=writer)
            runner = Runner(
                store, "t", 30.0, measure_fn=measure, leases=leases, slots=slots, poll_s=0.05
            )
            progress = PlainProgress(len(points), Console(quiet=True))
            counts.append(runner.run([Planned(p) for p in points], progress))

    from harness.pool import slots_for

    slots = slots_for(fake_hw(2))
    jobs = [threading.Thread(target=job, args=(w,)) for w in ("job1", "job2")]
    for t in jobs:
        t.start()
    for t in jobs:
        t.join(60)
    records = read_run(tmp_path)
    hashes = [r["hash"] for r in records]
    assert sorted(hashes) == sorted(p.hash for p in points)  # each point once, none lost
    measured = [c["point"].hash for c in measure.calls]
    assert len(measured) == len(set(measured)) == len(points) - 1  # 8K OOM: 16K skipped
    status = {(r["point"]["model"], r["point"]["context"]): r["status"] for r in records}
    assert status["oom_above", 8192] == "oom" and status["oom_above", 16384] == "skipped"
    files = sorted(p.name for p in (tmp_path / WRITERS).glob("*.jsonl"))
    assert files == ["job1.jsonl", "job2.jsonl"]
    assert all(sum(c.get(s, 0) for s in ("ok", "oom", "skipped")) > 0 for c in counts)
    assert sorted(os.listdir(tmp_path / "leases")) == []  # every lease released


DRIVER = textwrap.dedent(
    """
    import sys
    from rich.console import Console
    from harness.leases import Leases
    from harness.plan import Planned
    from harness.pool import slots_for
    from harness.progress import PlainProgress
    from harness.runner import Runner
    from harness.store import Store
    from tests.harness.conftest import selftest_point
    from tests.harness.test_pool import fake_hw

    run_dir = sys.argv[1]
    points = [selftest_point("slow", context=L, slow_s=0.3, batch=b)
              for b in (1, 2) for L in (1024, 2048)]
    with Leases(run_dir, "driver-" + sys.argv[2]) as leases:
        runner = Runner(Store(run_dir), "k", 60.0, leases=leases, slots=slots_for(fake_hw(2)))
        runner.run([Planned(p) for p in points], PlainProgress(len(points), Console()))
    """
)


def test_sigkill_of_a_two_gpu_orchestrator_then_resume(tmp_path):
    run_dir = tmp_path / "run"
    records = run_dir / RECORDS
    cmd = [sys.executable, "-c", DRIVER, str(run_dir)]
    proc = subprocess.Popen(
        [*cmd, "1"], cwd=REPO, stdout=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if records.exists() and records.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-sweep, both slots busy
    proc.wait()
    before = [json.loads(x) for x in records.read_text().splitlines()]
    assert 1 <= len(before) < 4
    held = [n for n in os.listdir(run_dir / "leases") if not n.endswith(".alive")]
    assert held  # the killed orchestrator's leases are left behind ...

    done = subprocess.run([*cmd, "2"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = [json.loads(x) for x in records.read_text().splitlines()]  # nothing torn
    assert len(after) == 4 and len({r["hash"] for r in after}) == 4  # nothing twice or lost
    assert all(r["status"] == "ok" for r in after)
    assert [r["hash"] for r in after[: len(before)]] == [r["hash"] for r in before]
    assert os.listdir(run_dir / "leases") == []  # ... and taken over, or pruned when done
