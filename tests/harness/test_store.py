import json

from harness.store import RECORDS, TORN, Store


def _rec(h: str, status: str = "ok") -> dict:
    return {"hash": h, "status": status, "point": {}}


def test_append_is_one_complete_line_each(tmp_path):
    store = Store(tmp_path)
    for i in range(3):
        store.append(_rec(f"h{i}"))
    lines = (tmp_path / RECORDS).read_text().splitlines()
    assert [json.loads(x)["hash"] for x in lines] == ["h0", "h1", "h2"]
    assert all(json.loads(x)["schema"] == 1 for x in lines)


def test_torn_last_line_is_set_aside_on_open(tmp_path):
    store = Store(tmp_path)
    store.append(_rec("a"))
    store.append(_rec("b"))
    with open(tmp_path / RECORDS, "ab") as f:
        f.write(b'{"hash": "c", "stat')  # a write cut by SIGKILL
    reopened = Store(tmp_path)
    assert reopened.quarantined == 1
    assert [r["hash"] for r in reopened.records()] == ["a", "b"]
    assert (tmp_path / TORN).read_text().startswith('{"hash": "c"')
    reopened.append(_rec("c"))
    assert [r["hash"] for r in Store(tmp_path).records()] == ["a", "b", "c"]


def test_latest_attempt_wins(tmp_path):
    store = Store(tmp_path)
    store.append(_rec("a", "crashed"))
    store.append(_rec("a", "ok"))
    assert store.latest_by_hash()["a"]["status"] == "ok"


def test_manifest_round_trip_is_atomic(tmp_path):
    store = Store(tmp_path)
    store.write_manifest({"run_id": "x", "n": (1, 2)})
    assert store.read_manifest() == {"run_id": "x", "n": [1, 2]}
    assert not list(tmp_path.glob("*.tmp"))
