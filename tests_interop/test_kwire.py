"""The kwire CLI, run as a built binary against the real broker: what it produces kcat and aiokafka
read back identically, what they produce it prints exactly, its listings agree with the broker as
the peers see it, and bad input gives one line on stderr and the documented exit status.

The binary is ${KWIRE_SCRATCH_PATH:-.build}/debug/kwire (built by scripts/test.sh's build step).
"""
import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import BOOTSTRAP, KCAT, ROOT, aiokafka_consume, aiokafka_produce, built_binary, kcat, new_topic

CODECS = ["none", "gzip", "lz4", "snappy", "zstd"]
# Tansu makes a joining member wait session.timeout.ms/2: keep it short for the group tests.
GROUP_FLAGS = ["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"]


KWIRE = built_binary("kwire", "KWIRE_CLI_BIN")

pytestmark = [
    pytest.mark.skipif(BOOTSTRAP is None, reason="KWIRE_BOOTSTRAP not set (scripts/test.sh starts a broker)"),
    pytest.mark.skipif(not Path(KWIRE).exists(), reason=f"{KWIRE} not built (swift build --product kwire)"),
]


def run(*args, input_bytes=None, timeout=60, env=None, broker=True):
    """Runs kwire; returns the CompletedProcess (bytes)."""
    cmd = [KWIRE, *args]
    if broker:
        cmd += ["-b", BOOTSTRAP]
    full_env = dict(os.environ)
    full_env.pop("KWIRE_BROKERS", None)
    if env:
        full_env.update(env)
    return subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=timeout, env=full_env)


def ok(*args, **kw):
    out = run(*args, **kw)
    assert out.returncode == 0, (args, out.returncode, out.stderr.decode(errors="replace"))
    return out


def json_lines(data: bytes):
    return [json.loads(l) for l in data.decode().splitlines() if l.strip()]


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def kcat_json(topic):
    rows = json_lines(kcat("-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J", timeout=60))
    return sorted(rows, key=lambda r: (r["partition"], r["offset"]))


def kcat_headers(row):
    flat = row.get("headers") or []
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def by_position(rows):
    return sorted(rows, key=lambda r: (r["partition"], r["offset"]))


def is_tansu():
    meta = json.loads(ok("metadata", "--json").stdout)
    return meta["cluster_id"] == "tansu_cluster"


def produce_one_batch_each(topic, values, partition=0):
    """One record per batch, each waited for (Tansu's ListOffsets(latest) is exact only at batch
    boundaries: it answers the last batch's base offset + 1)."""
    from aiokafka import AIOKafkaProducer

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
        await producer.start()
        try:
            for v in values:
                await producer.send_and_wait(topic, value=v, partition=partition)
        finally:
            await producer.stop()

    asyncio.run(go())


def aiokafka_group_view(group, topic, partitions):
    """(committed, end offsets) per partition as aiokafka sees them."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def go():
        c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False)
        await c.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            committed = {tp.partition: await c.committed(tp) for tp in tps}
            ends = {tp.partition: o for tp, o in (await c.end_offsets(tps)).items()}
            return committed, ends
        finally:
            await c.stop()

    return asyncio.run(go())


def wait_for(predicate, timeout=30.0, interval=0.3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


# --- produce: read back by kcat and aiokafka --------------------------------------------------


def test_produce_lines_keys_headers_read_back_by_kcat_and_aiokafka():
    topic = new_topic("kwire-lines", partitions=3)
    lines = ["alpha:one", "beta:two:with:colons", "", "no delimiter", ":empty key", "gamma:", "delta:ünïcødé ✓"]
    out = ok("produce", "-t", topic, "-K", ":", "-k", "fixed", "-H", "trace=t-1", "-H", "flag", "-H", "eq=a=b", "--json",
             input_bytes=("\n".join(lines) + "\n").encode())
    results = json_lines(out.stdout)
    assert [r["record"] for r in results] == list(range(1, 7))  # the empty line is skipped, as kcat does
    expected = []
    for line in [l for l in lines if l]:
        if ":" in line:
            k, v = line.split(":", 1)
        else:
            k, v = "fixed", line
        expected.append((k, v))
    headers = [("trace", "t-1"), ("flag", None), ("eq", "a=b")]

    rows = kcat_json(topic)
    got = {(r["partition"], r["offset"]): r for r in rows}
    assert len(rows) == len(expected)
    for (k, v), res in zip(expected, results):
        row = got[(res["partition"], res["offset"])]
        assert (row["key"], row["payload"]) == (k, v)
        assert kcat_headers(row) == headers

    aio = {(r["partition"], r["offset"]): r for r in aiokafka_consume(topic, len(expected))}
    for (k, v), res in zip(expected, results):
        r = aio[(res["partition"], res["offset"])]
        assert (r["key"], r["value"]) == (k.encode(), v.encode())
        assert r["headers"] == [(n, None if hv is None else hv.encode()) for n, hv in headers]


@pytest.mark.parametrize("codec", CODECS)
def test_produce_each_codec_read_back_identically(codec):
    topic = new_topic(f"kwire-z-{codec}", partitions=2)
    values = [f"{codec} record {i} " + "x" * (i * 7) for i in range(40)]
    ok("produce", "-t", topic, "-z", codec, "-K", "|", input_bytes="".join(f"k{i % 5}|{v}\n" for i, v in enumerate(values)).encode())
    kc = kcat_json(topic)
    assert sorted((r["key"], r["payload"]) for r in kc) == sorted((f"k{i % 5}", v) for i, v in enumerate(values))
    aio = aiokafka_consume(topic, len(values))
    assert sorted((r["key"].decode(), r["value"].decode()) for r in aio) == sorted((f"k{i % 5}", v) for i, v in enumerate(values))
    # Keyed records land where the Java client's murmur2 puts them: every key on one partition.
    partitions_of = {}
    for r in aio:
        partitions_of.setdefault(r["key"], set()).add(r["partition"])
    assert all(len(ps) == 1 for ps in partitions_of.values())


def test_produce_keeps_the_input_order_per_partition():
    # Many batches to a fresh topic, compressed in parallel: each partition holds its lines in the
    # order they were read (the producer queues requests to a leader in the order it made them).
    topic = new_topic("kwire-order", partitions=3)
    n = 30000
    ok("produce", "-t", topic, "-K", ":", "-z", "lz4", "-X", "batch.size=4096",
       input_bytes="".join(f"k{i}:{i}\n" for i in range(n)).encode(), timeout=120)
    rows = kcat_json(topic)
    assert len(rows) == n
    for p in range(3):
        seq = [int(r["payload"]) for r in rows if r["partition"] == p]
        assert seq == sorted(seq), f"partition {p} out of order"


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_produce_acks(acks):
    topic = new_topic(f"kwire-acks-{acks}")
    out = ok("produce", "-t", topic, "--acks", acks, "--json", input_bytes=b"a\nb\nc\n")
    results = json_lines(out.stdout)
    assert len(results) == 3 and all("error" not in r for r in results)
    if acks != "0":
        assert [r["offset"] for r in results] == [0, 1, 2]
    assert [r["payload"] for r in kcat_json(topic)] == ["a", "b", "c"]


def test_produce_fixed_key_partition_and_files(tmp_path):
    topic = new_topic("kwire-files", partitions=3)
    whole = tmp_path / "whole.txt"
    whole.write_bytes(b"line one\nline two\r\n\ttabbed")
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"first\n\nsecond\nthird")  # no trailing newline: the last line still counts
    ok("produce", "-t", topic, "-p", "2", "-k", "file-key", str(whole))
    ok("produce", "-t", topic, "-p", "1", "-l", str(lines))
    rows = kcat_json(topic)
    assert [(r["partition"], r["key"], r["payload"]) for r in rows] == [
        (1, None, "first"), (1, None, "second"), (1, None, "third"),
        (2, "file-key", "line one\nline two\r\n\ttabbed"),
    ]
    aio = by_position(aiokafka_consume(topic, 4))
    assert aio[-1]["value"] == whole.read_bytes() and aio[-1]["key"] == b"file-key"


def test_produce_reports_failures_and_bad_partition():
    topic = new_topic("kwire-fail", partitions=2)
    out = run("produce", "-t", topic, "-p", "7", input_bytes=b"x\n")
    assert out.returncode == 1
    assert out.stderr.decode().strip().splitlines() == [f"kwire: unknown partition 7 of topic {topic}"]
    # Records that cannot be buffered (buffer.memory full, max.block.ms 0) fail one by one; the
    # first is delivered, the run exits 1 after naming each failure.
    out = run("produce", "-t", topic, "-p", "0", "-X", "buffer.memory=40", "-X", "max.block.ms=0", "-X", "linger.ms=500",
              "--json", input_bytes=b"first record\nsecond record\nthird\n")
    assert out.returncode == 1
    results = json_lines(out.stdout)
    assert results[0] == {"record": 1, "topic": topic, "partition": 0, "offset": 0}
    assert [r["record"] for r in results[1:]] == [2, 3] and all("buffer.memory" in r["error"] for r in results[1:])
    err = out.stderr.decode().splitlines()
    assert err == [
        'kwire: record 2 ("second record") failed: timed out: buffer.memory (40 bytes) full for max.block.ms 0',
        'kwire: record 3 ("third") failed: timed out: buffer.memory (40 bytes) full for max.block.ms 0',
        "kwire: 2 of 3 records failed",
    ]
    assert [r["payload"] for r in kcat_json(topic)] == ["first record"]


# --- consume: what the peers wrote, printed exactly ---------------------------------------------


def test_consume_json_prints_kcat_records_exactly():
    topic = new_topic("kwire-from-kcat", partitions=2)
    payload = "k1:v1\nk2:välue two\nk3:{\"json\": [1, 2]}\nk4:tab\there\n"
    kcat("-P", "-t", topic, "-K", ":", "-H", "origin=kcat", "-H", "nullh", input_bytes=payload.encode())
    reference = by_position(aiokafka_consume(topic, 4))
    rows = json_lines(ok("consume", "-t", topic, "-e", "-J").stdout)
    assert sorted(rows, key=lambda r: (r["partition"], r["offset"])) == [
        {"topic": topic, "partition": r["partition"], "offset": r["offset"], "timestamp": r["timestamp"],
         "key": r["key"].decode(), "value": r["value"].decode(), "headers": {"origin": "kcat", "nullh": None}}
        for r in reference
    ]
    # kcat -J agrees on every position, key and value.
    kc = {(r["partition"], r["offset"]): (r["key"], r["payload"], r["ts"]) for r in kcat_json(topic)}
    assert kc == {(r["partition"], r["offset"]): (r["key"], r["value"], r["timestamp"]) for r in rows}


def test_consume_json_prints_aiokafka_records_exactly():
    topic = new_topic("kwire-from-aio", partitions=3)
    records = [
        {"key": b"user-1", "value": b"created", "headers": [("h", b"1"), ("h2", b"")], "timestamp": 1_700_000_000_001},
        {"key": None, "value": b"no key", "headers": [], "timestamp": 1_700_000_000_002},
        {"key": b"user-2", "value": None, "headers": [("tomb", b"stone")], "timestamp": 1_700_000_000_003},
        {"key": b"bin", "value": b"\xff\x00\xfe", "headers": [("raw", b"\x80")], "timestamp": 1_700_000_000_004},
        {"key": b"", "value": b"", "headers": [], "timestamp": 1_700_000_000_005},
    ]
    metas = aiokafka_produce(topic, records, codec="lz4")
    rows = {(r["partition"], r["offset"]): r for r in json_lines(ok("consume", "-t", topic, "-e", "-J").stdout)}
    assert len(rows) == len(records)
    import base64

    for rec, m in zip(records, metas):
        row = rows[(m["partition"], m["offset"])]
        assert row["topic"] == topic and row["timestamp"] == rec["timestamp"]
        for field, value in (("key", rec["key"]), ("value", rec["value"])):
            if value is None:
                assert row[field] is None
            elif value == b"\xff\x00\xfe":
                assert row[f"{field}_encoding"] == "base64" and base64.b64decode(row[field]) == value
            else:
                assert row[field] == value.decode() and f"{field}_encoding" not in row
        expected_headers = {}
        for name, v in rec["headers"]:
            expected_headers[name] = base64.b64encode(v).decode() if v == b"\x80" else v.decode()
        assert row["headers"] == expected_headers
        if rec["headers"] and rec["headers"][0][1] == b"\x80":
            assert row["header_encodings"] == {"raw": "base64"}


def test_consume_format_tokens_and_escapes():
    topic = new_topic("kwire-fmt")
    aiokafka_produce(topic, [
        {"key": b"k1", "value": b"v1", "headers": [("a", b"1"), ("b", b"2")], "timestamp": 1_700_000_000_111},
        {"key": None, "value": b"v2", "headers": [], "timestamp": 1_700_000_000_222},
    ])
    fmt = "%t|%p|%o|%k|%K|%s|%S|%T|%h|%%\\t\\x41\\n"
    out = ok("consume", "-t", topic, "-e", "-f", fmt).stdout
    assert out == (f"{topic}|0|0|k1|2|v1|2|1700000000111|a=1,b=2|%\tA\n"
                   f"{topic}|0|1||-1|v2|2|1700000000222||%\tA\n").encode()
    # -Z prints a null key as NULL; -K prints key, delimiter, value as kcat does.
    out = ok("consume", "-t", topic, "-e", "-Z", "-f", "%k=%s\\n").stdout
    assert out == b"k1=v1\nNULL=v2\n"
    out = ok("consume", "-t", topic, "-e", "-K", "\\t").stdout
    assert out == b"k1\tv1\n\tv2\n"
    # The default: the value and a newline.
    assert ok("consume", "-t", topic, "-e").stdout == b"v1\nv2\n"


def test_consume_offset_variants():
    topic = new_topic("kwire-offsets")
    produce_one_batch_each(topic, [f"r{i}".encode() for i in range(6)])

    def values(*args):
        return [r["value"] for r in json_lines(ok("consume", "-t", topic, "-J", *args).stdout)]

    assert values("-e") == [f"r{i}" for i in range(6)]                     # default: beginning, as kcat
    assert values("-o", "beginning", "-e") == [f"r{i}" for i in range(6)]
    assert values("-o", "end", "-e") == []
    assert values("-o", "4", "-e") == ["r4", "r5"]
    assert values("-o", "-2", "-e") == ["r4", "r5"]                       # 2 from the end of each partition
    assert values("-o", "-100", "-e") == [f"r{i}" for i in range(6)]      # no further back than the start
    assert values("-o", "1", "-c", "2") == ["r1", "r2"]                    # -c exits without -e
    assert values("-p", "0", "-o", "2", "-c", "1") == ["r2"]
    # @timestamp: the first record at or after it. Tansu's answers to timestamp lookups are not
    # Kafka's (the README lists it), so there only acceptance is checked.
    rows = json_lines(ok("consume", "-t", topic, "-J", "-e").stdout)
    at = rows[3]["timestamp"]
    got = values("-o", f"@{at}", "-e")
    everything = [f"r{i}" for i in range(6)]
    if is_tansu():
        assert got and got == everything[len(everything) - len(got):]
    else:
        first = next(i for i, r in enumerate(rows) if r["timestamp"] >= at)
        assert got == everything[first:]
    assert values("-o", f"s@{at}", "-e") == got                             # kcat's spelling


def test_consume_exit_at_end_with_empty_partitions():
    topic = new_topic("kwire-eof", partitions=4)
    produce_one_batch_each(topic, [b"p1-a", b"p1-b"], partition=1)
    produce_one_batch_each(topic, [b"p3-a"], partition=3)
    start = time.time()
    rows = json_lines(ok("consume", "-t", topic, "-e", "-J", timeout=30).stdout)
    assert time.time() - start < 15
    assert [(r["partition"], r["offset"], r["value"]) for r in by_position(rows)] == [(1, 0, "p1-a"), (1, 1, "p1-b"), (3, 0, "p3-a")]
    # Records arriving after the start are not waited for.
    assert json_lines(ok("consume", "-t", topic, "-p", "0", "-e", "-J").stdout) == []


# --- groups -------------------------------------------------------------------------------------


def test_group_consume_commits_and_describe_reports_the_brokers_lag():
    topic = new_topic("kwire-grp")
    produce_one_batch_each(topic, [f"g{i}".encode() for i in range(7)])
    group = unique("kwire-g")
    out = ok("consume", "-t", topic, "-G", group, "-o", "beginning", "-c", "4", "-J", *GROUP_FLAGS, timeout=60)
    assert [r["value"] for r in json_lines(out.stdout)] == ["g0", "g1", "g2", "g3"]

    described = json.loads(ok("groups", "describe", group, "--json").stdout)
    committed, ends = aiokafka_group_view(group, topic, 1)
    assert committed[0] == 4
    part = [p for p in described["partitions"] if p["topic"] == topic]
    assert [(p["partition"], p["committed_offset"], p["high_watermark"], p["lag"]) for p in part] == [
        (0, committed[0], ends[0], ends[0] - committed[0])]
    assert described["total_lag"] == ends[0] - committed[0] == 3
    assert described["members"] == [] and described["state"] in ("Empty", "Dead", "")

    # A second run resumes from the commit (-o stored is the default with -G) and catches up.
    out = ok("consume", "-t", topic, "-G", group, "-e", "-J", *GROUP_FLAGS, timeout=60)
    assert [r["value"] for r in json_lines(out.stdout)] == ["g4", "g5", "g6"]
    committed, ends = aiokafka_group_view(group, topic, 1)
    assert committed[0] == ends[0] == 7
    described = json.loads(ok("groups", "describe", group, "--json").stdout)
    assert described["total_lag"] == 0
    listed = json.loads(ok("groups", "list", "--json").stdout)
    assert any(g["group"] == group for g in listed)
    table = ok("groups", "describe", group).stdout.decode()
    assert table.splitlines()[0].startswith(f"group {group}:") and "LAG" in table


def test_groups_reset_then_describe():
    topic = new_topic("kwire-reset", partitions=2)
    produce_one_batch_each(topic, [b"a0", b"a1", b"a2"], partition=0)
    produce_one_batch_each(topic, [b"b0", b"b1"], partition=1)
    group = unique("kwire-r")
    out = json.loads(ok("groups", "reset", group, "-t", topic, "--to", "earliest", "--json").stdout)
    assert sorted((r["partition"], r["offset"]) for r in out) == [(0, 0), (1, 0)]
    d = json.loads(ok("groups", "describe", group, "--json").stdout)
    committed, ends = aiokafka_group_view(group, topic, 2)
    assert {p["partition"]: (p["committed_offset"], p["lag"]) for p in d["partitions"]} == {
        p: (committed[p], ends[p] - committed[p]) for p in (0, 1)}
    assert d["total_lag"] == 5

    ok("groups", "reset", group, "-t", topic, "--to", "1")
    committed, ends = aiokafka_group_view(group, topic, 2)
    assert committed == {0: 1, 1: 1}
    d = json.loads(ok("groups", "describe", group, "--json").stdout)
    assert d["total_lag"] == (ends[0] - 1) + (ends[1] - 1) == 3
    out = ok("consume", "-t", topic, "-G", group, "-e", "-J", *GROUP_FLAGS, timeout=60)
    assert sorted(r["value"] for r in json_lines(out.stdout)) == ["a1", "a2", "b1"]

    ok("groups", "reset", group, "-t", topic, "--to", "latest")
    d = json.loads(ok("groups", "describe", group, "--json").stdout)
    assert d["total_lag"] == 0


def test_group_member_blocks_reset_and_sigint_leaves_cleanly():
    topic = new_topic("kwire-sigint")
    produce_one_batch_each(topic, [b"s0", b"s1"])
    group = unique("kwire-s")
    proc = subprocess.Popen([KWIRE, "consume", "-b", BOOTSTRAP, "-t", topic, "-G", group, "-o", "beginning", "-J", *GROUP_FLAGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    printed = []
    reader = threading.Thread(target=lambda: printed.extend(iter(proc.stdout.readline, b"")), daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: len(printed) >= 2, timeout=40), "the member printed nothing"

        def members():
            out = run("groups", "describe", group, "--json")
            return json.loads(out.stdout)["members"] if out.returncode == 0 else None

        assert len(members()) == 1
        reset = run("groups", "reset", group, "-t", topic, "--to", "earliest")
        assert reset.returncode == 1
        assert len(reset.stderr.decode().strip().splitlines()) == 1 and "active member" in reset.stderr.decode()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(timeout=10)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    out = b"".join(printed)
    assert proc.returncode == 0, err.decode()
    assert [r["value"] for r in json_lines(out)] == ["s0", "s1"]
    assert b"Fatal" not in err and b"Stack" not in err
    d = json.loads(ok("groups", "describe", group, "--json").stdout)
    assert d["members"] == []                       # left with LeaveGroup, not by session expiry
    committed, _ = aiokafka_group_view(group, topic, 1)
    assert committed[0] == 2                         # what was printed got committed


def test_consume_sigint_without_group_exits_zero():
    topic = new_topic("kwire-sigint-nogroup")
    proc = subprocess.Popen([KWIRE, "consume", "-b", BOOTSTRAP, "-t", topic, "-J"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    aiokafka_produce(topic, [{"value": b"live"}])
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert [r["value"] for r in json_lines(out)] == ["live"]


# --- topics, metadata, offsets, api-versions --------------------------------------------------


def test_topics_create_list_delete_and_metadata():
    name = unique("kwire-topic")
    out = ok("topics", "create", name, "-P", "3", "-R", "1", "--config", "retention.ms=3600000")
    assert out.stdout.decode().strip() == f"created topic {name} (3 partitions, replication 1)"
    assert run("topics", "create", name).returncode == 1
    ok("topics", "create", name, "--if-not-exists")
    listed = {t["name"]: t for t in json.loads(ok("topics", "list", "--json").stdout)}
    assert listed[name]["partitions"] == 3 and listed[name]["replication"] == 1
    assert any(l.split()[0] == name for l in ok("topics", "list").stdout.decode().splitlines()[1:])

    meta = json.loads(ok("metadata", "-t", name, "--json").stdout)
    assert [t["name"] for t in meta["topics"]] == [name]
    parts = meta["topics"][0]["partitions"]
    assert [p["partition"] for p in parts] == [0, 1, 2]
    ref = json.loads(kcat("-L", "-J", "-t", name))
    assert meta["controller_id"] == ref["controllerid"]
    assert [b["id"] for b in meta["brokers"]] == [b["id"] for b in ref["brokers"]]
    assert [f"{b['host']}:{b['port']}" for b in meta["brokers"]] == [b["name"] for b in ref["brokers"]]
    ref_parts = sorted(ref["topics"][0]["partitions"], key=lambda p: p["partition"])
    assert [(p["leader"], p["replicas"], p["isr"]) for p in parts] == [
        (p["leader"], [r["id"] for r in p["replicas"]], [r["id"] for r in p["isrs"]]) for p in ref_parts]
    table = ok("metadata", "-t", name).stdout.decode()
    assert "BROKER" in table and "LEADER" in table and "REPLICAS" in table and "ISR" in table
    assert sum(1 for l in table.splitlines() if l.startswith(name + " ")) == 3

    assert ok("topics", "delete", name).stdout.decode().strip() == f"deleted topic {name}"
    assert name not in {t["name"] for t in json.loads(ok("topics", "list", "--json").stdout)}
    gone = run("topics", "delete", name)
    assert gone.returncode == 1 and gone.stderr.decode().strip() == f"kwire: unknown topic {name}"


def test_offsets_agree_with_kcat_query():
    topic = new_topic("kwire-offs", partitions=2)
    produce_one_batch_each(topic, [b"x", b"y", b"z"], partition=0)
    rows = json.loads(ok("offsets", "-t", topic, "--json").stdout)
    assert [(r["partition"], r["earliest"]) for r in rows] == [(0, 0), (1, 0)]
    for r in rows:
        for ts, field in (("-1", "latest"), ("-2", "earliest")):
            line = kcat("-Q", "-t", f"{topic}:{r['partition']}:{ts}").decode().strip()
            assert line.endswith(f"offset {r[field]}"), line
    assert [r["latest"] for r in rows] == [3, 0]
    table = ok("offsets", "-t", topic).stdout.decode().splitlines()
    assert table[0].split() == ["TOPIC", "PARTITION", "EARLIEST", "LATEST"] and table[1].split() == [topic, "0", "0", "3"]
    timed = json.loads(ok("offsets", "-t", topic, "--time", "0", "--json").stdout)
    assert [(r["partition"], r["timestamp"]) for r in timed] == [(0, 0), (1, 0)]
    assert timed[0]["offset"] == 0


def test_api_versions_next_to_kafkawire():
    data = json.loads(ok("api-versions", "--json").stdout)
    apis = {a["name"]: a for a in data["apis"]}
    for name in ("Produce", "Fetch", "Metadata", "ListOffsets", "JoinGroup", "ApiVersions"):
        a = apis[name]
        assert a["broker"] is not None and a["kafkawire"] is not None and a["uses"] is not None
        assert a["broker"]["min"] <= a["uses"] <= a["broker"]["max"]
        assert a["kafkawire"]["min"] <= a["uses"] <= a["kafkawire"]["max"]
    assert apis["Fetch"]["uses"] <= 12
    table = ok("api-versions").stdout.decode()
    assert "BROKER" in table and "KAFKAWIRE" in table and "USES" in table


def test_verbose_logs_each_request():
    out = ok("metadata", "-v")
    err = out.stderr.decode()
    for field in ("api=ApiVersions", "api=Metadata", "version=", "correlation_id=", "request_bytes=", "response_bytes=", "latency_ms="):
        assert field in err
    assert "api=" not in out.stdout.decode()


def test_brokers_from_environment_and_settings():
    ok("metadata", broker=False, env={"KWIRE_BROKERS": BOOTSTRAP})
    ok("metadata", broker=False, env={"KWIRE_BOOTSTRAP": BOOTSTRAP})
    ok("metadata", "-X", f"bootstrap.servers={BOOTSTRAP}", "-X", "client.id=kwire-test", "-X", "request.timeout.ms=5000",
       broker=False, env={"KWIRE_BOOTSTRAP": ""})
    out = run("metadata", broker=False, env={"KWIRE_BOOTSTRAP": ""})
    assert out.returncode == 2 and out.stderr.decode().strip().startswith("kwire: no broker given")


# --- bad input ----------------------------------------------------------------------------------


def one_error_line(out, status, *fragments):
    err = out.stderr.decode()
    lines = err.strip().splitlines()
    assert out.returncode == status, (out.returncode, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("kwire: "), err
    for f in fragments:
        assert f in lines[0], (f, err)
    for bad in ("Fatal error", "Stack dump", "Current stack trace", "Illegal instruction"):
        assert bad not in err
    return lines[0]


@pytest.mark.parametrize("args", [
    ["metadata"], ["consume", "-t", "t"], ["produce", "-t", "t"], ["offsets", "-t", "t"], ["topics", "list"],
    ["groups", "list"], ["groups", "describe", "g"], ["api-versions"],
])
def test_unreachable_broker(args):
    out = run(*args, "-b", "127.0.0.1:1", broker=False, input_bytes=b"x\n", timeout=60)
    one_error_line(out, 1, "127.0.0.1:1")
    assert out.stdout == b""


def test_unknown_topic():
    missing = unique("kwire-missing")
    for args in (["consume", "-t", missing], ["produce", "-t", missing], ["offsets", "-t", missing],
                 ["metadata", "-t", missing], ["consume", "-t", missing, "-G", "g-missing"],
                 ["groups", "reset", "g-missing", "-t", missing, "--to", "earliest"]):
        one_error_line(run(*args, input_bytes=b"x\n"), 1, f"unknown topic {missing}")


def test_unknown_group():
    missing = unique("kwire-nogroup")
    one_error_line(run("groups", "describe", missing), 1, f"unknown group {missing}")


@pytest.mark.parametrize("args,fragment", [
    (["consume", "-t", "t", "--bogus"], "--bogus"),
    (["consume", "-t", "t", "-o", "yesterday"], "-o expects"),
    (["consume", "-t", "t", "-o", "stored"], "-o stored needs -G"),
    (["consume", "-t", "t", "-G", "g", "-p", "0"], "-p cannot be used with -G"),
    (["consume", "-t", "t", "-f", "%q"], "unknown token %q"),
    (["consume", "-t", "t", "-c", "0"], "-c expects"),
    (["produce", "-t", "t", "-z", "brotli"], "-z expects"),
    (["produce", "-t", "t", "--acks", "2"], "--acks expects"),
    (["consume"], "-t"),
    (["nosuchcommand"], "nosuchcommand"),
    (["groups", "reset", "g", "-t", "t", "--to", "soon"], "--to expects"),
    (["metadata", "-X", "no.such.setting=1"], 'unknown setting "no.such.setting"'),
    (["metadata", "-X", "linger.ms"], "-X expects key=value"),
    (["produce", "-t", "t", "-X", "linger.ms=soon"], "linger.ms"),
    (["consume", "-t", "t", "-X", "auto.offset.reset=sometimes"], "auto.offset.reset"),
])
def test_bad_flags(args, fragment):
    one_error_line(run(*args, input_bytes=b"", broker=args[0] != "nosuchcommand"), 2, fragment)


def test_help_is_not_an_error():
    out = run("consume", "--help", broker=False)
    assert out.returncode == 0 and b"-o" in out.stdout and b"-G" in out.stdout and out.stderr == b""
