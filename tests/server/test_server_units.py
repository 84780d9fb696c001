"""Parts of the server on their own: job records on disk, the reply backlog, the job-kind table."""

from __future__ import annotations

import json
import time

import pytest
import zmq

from dyntet_protocol import ErrorCode, ProtocolError
from dyntet.server.jobs.kinds import JOB_KINDS
from dyntet.server.jobs.store import JobRecord, JobStore
from dyntet.server.outbox import Outbox
from dyntet.server.workspace import Workspace


def test_records_round_trip_and_unreadable_ones_are_skipped(tmp_path):
    store = JobStore(tmp_path / "jobs")
    record = JobRecord(id=store.new_id(), kind="selftest", params={"run": "runs/a"}, outputs={"run": "runs/a"})
    record.progress = {"stage": "selftest", "step": 3, "total": 5}
    store.save(record)
    (tmp_path / "jobs" / "garbage.json").write_text("{not json")
    (tmp_path / "jobs" / "other.json").write_text(json.dumps({"format": "something-else"}))
    (tmp_path / "jobs" / "20240101-000000-000000.json").write_text(json.dumps(
        {**record.to_json(), "id": "../../escape"}))
    loaded = store.load_all()
    assert [r.id for r in loaded] == [record.id]
    assert loaded[0] == record
    assert not list((tmp_path / "jobs").glob(".*.tmp")), "atomic writes leave no temporary files"


def test_job_ids_are_unique_and_sortable(tmp_path):
    store = JobStore(tmp_path)
    ids = set()
    for _ in range(50):
        job_id = store.new_id()
        store.save(JobRecord(id=job_id, kind="selftest", params={}))
        ids.add(job_id)
    assert len(ids) == 50 and all(len(i) == 22 for i in ids)


def test_log_tail(tmp_path):
    store = JobStore(tmp_path)
    assert store.log_tail("20240101-000000-000000") == []
    store.log_path("20240101-000000-000000").write_text("\n".join(f"line {i}" for i in range(100)))
    assert store.log_tail("20240101-000000-000000", lines=3) == ["line 97", "line 98", "line 99"]


def test_job_kinds_check_their_parameters_against_the_workspace(tmp_path):
    ws = Workspace(tmp_path / "ws")
    params, outputs = JOB_KINDS["selftest"].check({"run": "runs/x"}, ws)
    assert params["steps"] == 50 and outputs == {"run": "runs/x"}
    assert JOB_KINDS["selftest"].checkpoint_path(outputs) == "runs/x/selftest_checkpoint.npz"
    (ws.root / "runs").mkdir()
    (ws.root / "runs" / "file").write_text("x")
    with pytest.raises(ProtocolError) as err:
        JOB_KINDS["selftest"].check({"run": "runs/file"}, ws)
    assert err.value.code == ErrorCode.INVALID_STATE
    with pytest.raises(ProtocolError) as err:
        JOB_KINDS["selftest"].check({"run": ""}, ws)
    assert err.value.code == ErrorCode.PATH_REFUSED
    if JOB_KINDS["train"].available():
        (ws.root / "datasets" / "d").mkdir(parents=True)
        (ws.root / "datasets" / "d" / "manifest.json").write_text("{}")
        for bad in ({"preset": "nope"}, {"overrides": {"no.such.setting": 1}}, {"overrides": {"iterations": 0}}):
            with pytest.raises(ProtocolError) as err:
                JOB_KINDS["train"].check({"dataset": "datasets/d", "run": "runs/t", **bad}, ws)
            assert err.value.code == ErrorCode.BAD_REQUEST, bad


def test_outbox_keeps_order_while_a_client_does_not_read_then_delivers():
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.sndhwm = 2
    router.linger = 0
    router.bind("tcp://127.0.0.1:*")
    dealer = context.socket(zmq.DEALER)
    dealer.rcvhwm = 2
    dealer.linger = 0
    dealer.connect(router.last_endpoint.decode())
    dealer.send(b"hi")
    assert router.poll(2000)
    identity, _ = router.recv_multipart()
    outbox = Outbox(router)
    payload = b"x" * 200_000  # big enough to fill the TCP buffers quickly
    for i in range(40):
        outbox.send(identity, [i.to_bytes(2, "big"), payload])
    assert outbox.pending, "a client that is not reading must make replies wait"
    received = []
    deadline = time.monotonic() + 10
    while len(received) < 40 and time.monotonic() < deadline:
        outbox.flush()
        if dealer.poll(10):
            received.append(int.from_bytes(dealer.recv_multipart()[0], "big"))
    assert received == list(range(40)) and not outbox.pending and outbox.dropped == 0
    outbox.send(b"nobody", [b"x"])  # a client that is gone
    assert outbox.dropped == 1 and not outbox.pending
    dealer.close()
    router.close()
    context.term()


def test_the_protocol_document_lists_every_job_kind():
    from pathlib import Path

    spec = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
    for name in JOB_KINDS:
        assert f"| `{name}` |" in spec, name
