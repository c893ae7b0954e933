"""The producer under network faults, through tools/fault_proxy.py in front of the real broker.

KafkaWire produces keyed records (a per-key sequence number in each value) through the proxy
while the test cuts every connection, refuses new ones and lets them back, several times. Then
the records are read back straight from the broker (aiokafka, not through the proxy) and checked:
every record whose delivery was acknowledged is there, at the offset its report named, and no key's
records are out of order.

Duplicates: with idempotence a re-sent batch is dropped by the broker, so there must be none. Run
without it (enable.idempotence=false, or a broker that gives no producer id, where KafkaWire falls
back to plain batches by default), a batch whose answer was lost in a cut is written again:
duplicates are then allowed, but only as repeats of records already written earlier in the key's
order. The driver says which case it was.
"""
import asyncio
import json
import subprocess
import sys
import threading
import time

import pytest

from conftest import BOOTSTRAP, DRIVER, ROOT, new_topic

sys.path.insert(0, str(ROOT / "tools"))
from fault_proxy import FaultProxy  # noqa: E402

pytestmark = pytest.mark.skipif(BOOTSTRAP is None, reason="KWIRE_BOOTSTRAP not set (scripts/test.sh starts a broker)")


@pytest.fixture
def proxy():
    host, port = BOOTSTRAP.split(",")[0].rsplit(":", 1)
    p = FaultProxy(host, int(port))
    p.start()
    yield p
    p.stop()


def read_back(topic, partitions, minimum, idle_s=3.0, timeout_s=90.0):
    """Every record of the topic, straight from the broker: reads until at least `minimum` came and
    nothing more for idle_s (Tansu's high watermark is not the log end, so no end offset is used)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, group_id=None,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=100)
        await consumer.start()
        rows = []
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            loop = asyncio.get_running_loop()
            start = last = loop.time()
            while loop.time() - start < timeout_s:
                batch = await consumer.getmany(timeout_ms=500)
                for msgs in batch.values():
                    rows += [(m.partition, m.offset, m.key.decode(), m.value.decode()) for m in msgs]
                if batch:
                    last = loop.time()
                elif len(rows) >= minimum and loop.time() - last > idle_s:
                    break
        finally:
            await consumer.stop()
        return rows

    return asyncio.run(run())


def run_producer(bootstrap, topic, keys, per_key, settings="", pause_ms=10, close_ms=30000, timeout=240):
    cmd = [DRIVER, "produce-keyed", "-b", bootstrap, "-t", topic, "--keys", str(keys), "--per-key", str(per_key),
           "--pause-ms", str(pause_ms), "--close-ms", str(close_ms)]
    if settings:
        cmd += ["--settings", settings]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), timeout


def finish(proc, timeout):
    out, err = proc.communicate(timeout=timeout)
    lines = [json.loads(l) for l in out.splitlines()]
    summary = lines[-1]
    assert summary.get("summary"), (out[-2000:], err[-2000:])
    return lines[:-1], summary, err


def check_log(rows, reports, keys, per_key, allow_duplicates):
    acked = {(r["key"], r["seq"]): (r["partition"], r["offset"]) for r in reports if "offset" in r}
    at = {(p, o): (k, v) for p, o, k, v in rows}
    written = {(p, v) for p, o, k, v in rows}
    # Every acknowledged record is in the log, where its report said. A batch the broker recognised
    # as a duplicate of one it already had (the first answer lost in a cut) is acknowledged with
    # offset -1, as the Java client reports it: then it must be in its partition somewhere.
    for (key, seq), (partition, offset) in acked.items():
        if offset < 0:
            assert (partition, f"{key}:{seq}") in written, f"{key}:{seq} acknowledged as a duplicate but missing"
        else:
            assert at.get((partition, offset)) == (key, f"{key}:{seq}"), f"{key}:{seq} acknowledged at {partition}/{offset}"
    # Per key, in log order: never a record that was not sent, and first appearances in order.
    by_key = {}
    for p, o, k, v in sorted(rows):
        key, seq = v.split(":")
        assert key == k and 0 <= int(seq) < per_key
        by_key.setdefault(k, []).append(int(seq))
    duplicates = 0
    for k, seqs in by_key.items():
        seen = set()
        firsts = []
        for s in seqs:
            if s in seen:
                duplicates += 1
            else:
                seen.add(s)
                firsts.append(s)
        assert firsts == sorted(firsts), f"{k} out of order: {firsts}"
        assert len({p for p, o, kk, v in rows if kk == k}) == 1, f"{k} spread over partitions"
    if not allow_duplicates:
        assert duplicates == 0
    return acked, duplicates


@pytest.mark.parametrize("idempotence", ["default", "false"])
def test_cut_and_restored_connections_lose_and_reorder_no_acknowledged_record(proxy, idempotence):
    keys, per_key, partitions = 20, 500, 4
    topic = new_topic("faults", partitions)
    settings = "linger.ms=5,retry.backoff.ms=50,reconnect.backoff.max.ms=200"
    if idempotence != "default":
        settings += f",enable.idempotence={idempotence}"
    proc, timeout = run_producer(f"127.0.0.1:{proxy.port}", topic, keys, per_key, settings=settings, pause_ms=10)
    faults = []

    def break_things():
        time.sleep(0.8)
        for i in range(5):
            if proc.poll() is not None:
                return
            proxy.cut()
            if i % 2 == 0:
                proxy.refuse(True)  # and no new connection for a while
                time.sleep(0.4)
            proxy.restore()
            faults.append(i)
            time.sleep(0.6)

    breaker = threading.Thread(target=break_things)
    breaker.start()
    reports, summary, err = finish(proc, timeout)
    breaker.join()
    assert len(faults) >= 3, "the producer finished before the faults: make it slower"
    assert summary["acked"] + summary["failed"] == keys * per_key
    # Cuts of a few hundred ms are well inside delivery.timeout.ms: everything gets through.
    assert summary["acked"] == keys * per_key, err[-3000:]
    rows = read_back(topic, partitions, summary["acked"])
    acked, duplicates = check_log(rows, reports, keys, per_key, allow_duplicates=not summary["idempotent"])
    assert len(acked) == keys * per_key
    if idempotence == "false":
        assert not summary["idempotent"]
    print(f"idempotent={summary['idempotent']} records={len(rows)} duplicates={duplicates} faults={len(faults)}")


def test_a_slow_broker_does_not_hold_a_caller_past_the_delivery_timeout(proxy):
    topic = new_topic("slow", 1)
    proxy.delay(5000)
    start = time.monotonic()
    proc, _ = run_producer(f"127.0.0.1:{proxy.port}", topic, 2, 3, pause_ms=0, close_ms=60000,
                           settings="delivery.timeout.ms=1500,request.timeout.ms=1000,socket.connection.setup.timeout.ms=1000")
    reports, summary, err = finish(proc, 60)
    took = time.monotonic() - start
    # Each record fails by delivery.timeout.ms (+ one request.timeout.ms for a batch in flight),
    # even though close would wait 60 s: a hang check with a generous slack, not a benchmark.
    assert took < 20, f"took {took:.1f}s"
    assert summary["acked"] == 0 and summary["failed"] == 6, summary
    assert len(reports) == 6 and all("error" in r for r in reports)


def test_the_broker_gone_at_close_is_reported_within_the_deadline(proxy):
    topic = new_topic("gone", 2)
    proc, _ = run_producer(f"127.0.0.1:{proxy.port}", topic, 4, 500, pause_ms=10, close_ms=1000)
    time.sleep(0.4)
    proxy.refuse(True)  # the broker is gone from here on
    proxy.cut()
    reports, summary, err = finish(proc, 60)
    assert proc.returncode == 0
    # Records queued after the cut wait for the broker (delivery.timeout.ms is 120 s) until close
    # gives up at its 1 s deadline and names them; a hang check with slack, not a benchmark.
    assert summary["undelivered"] > 0, summary
    assert summary["closeMs"] < 1000 + 3000, summary
    assert summary["acked"] + summary["failed"] == 4 * 500
    assert len([r for r in reports if "error" in r]) == summary["failed"]
