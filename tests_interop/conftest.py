"""Shared fixtures for the interop suite: the broker, the peers, and the KafkaWire driver binary."""
import asyncio
import base64
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = os.environ.get("KWIRE_BOOTSTRAP")
KCAT = os.environ.get("KWIRE_KCAT", str(ROOT / ".ci-work/bin/kcat"))


def built_binary(product: str, override_env: str) -> str:
    """The debug build of a product (where scripts/test.sh builds it), unless override_env names one."""
    explicit = os.environ.get(override_env)
    if explicit:
        return explicit
    scratch = os.environ.get("KWIRE_SCRATCH_PATH", str(ROOT / ".build"))
    return str(Path(scratch) / "debug" / product)


DRIVER = built_binary("kafkawire-interop", "KWIRE_INTEROP_BIN")

pytestmark = pytest.mark.skipif(BOOTSTRAP is None, reason="KWIRE_BOOTSTRAP not set (scripts/test.sh starts a broker)")


def b64(data):
    return None if data is None else base64.b64encode(data).decode()


def unb64(text):
    return None if text is None else base64.b64decode(text)


def new_topic(prefix: str, partitions: int = 1) -> str:
    """Creates a topic through aiokafka's admin client (a third party, not KafkaWire)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    name = f"{prefix}-{uuid.uuid4().hex[:10]}"

    async def create():
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        finally:
            await admin.close()

    asyncio.run(create())
    return name


def kafkawire_produce(topic, records, codec="none", acks="all"):
    """records: dicts with bytes key/value, headers [(name, bytes|None)], optional partition/timestamp."""
    lines = []
    for r in records:
        line = {"key": b64(r.get("key")), "value": b64(r.get("value")),
                "headers": [[k, b64(v)] for k, v in r.get("headers", [])]}
        if r.get("partition") is not None:
            line["partition"] = r["partition"]
        if r.get("timestamp") is not None:
            line["timestamp"] = r["timestamp"]
        lines.append(json.dumps(line))
    out = subprocess.run([DRIVER, "produce", "-b", BOOTSTRAP, "-t", topic, "-z", codec, "--acks", acks],
                         input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(l) for l in out.stdout.splitlines()]


def kafkawire_consume(topic, count, partition=None):
    cmd = [DRIVER, "consume", "-b", BOOTSTRAP, "-t", topic, "-c", str(count)]
    if partition is not None:
        cmd += ["-p", str(partition)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(l) for l in out.stdout.splitlines()]
    return [{"partition": r["partition"], "offset": r["offset"], "timestamp": r["timestamp"],
             "key": unb64(r["key"]), "value": unb64(r["value"]),
             "headers": [(k, unb64(v)) for k, v in r["headers"]]} for r in rows]


def aiokafka_consume(topic, count, timeout=30.0):
    from aiokafka import AIOKafkaConsumer

    async def run():
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                                    enable_auto_commit=False, group_id=None, fetch_max_wait_ms=100)
        await consumer.start()
        out = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(out) < count and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for msgs in batch.values():
                    for m in msgs:
                        out.append({"partition": m.partition, "offset": m.offset, "timestamp": m.timestamp,
                                    "key": m.key, "value": m.value,
                                    "headers": [(k, v) for k, v in (m.headers or [])]})
        finally:
            await consumer.stop()
        return out

    return asyncio.run(run())


def aiokafka_produce(topic, records, codec=None):
    from aiokafka import AIOKafkaProducer

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, compression_type=codec, linger_ms=20)
        await producer.start()
        try:
            futures = [await producer.send(topic, key=r.get("key"), value=r.get("value"),
                                           headers=list(r.get("headers", [])) or None,
                                           partition=r.get("partition"), timestamp_ms=r.get("timestamp"))
                       for r in records]
            metas = [await f for f in futures]
        finally:
            await producer.stop()
        return [{"partition": m.partition, "offset": m.offset} for m in metas]

    return asyncio.run(run())


def kcat(*args, input_bytes=None, timeout=60):
    out = subprocess.run([KCAT, "-b", BOOTSTRAP, *args], input=input_bytes, capture_output=True, timeout=timeout)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return out.stdout


@pytest.fixture
def topic_factory():
    return new_topic
