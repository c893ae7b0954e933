"""KafkaWire against third-party clients on a real broker: what one writes, the others read identically."""
import json

import pytest

from conftest import (aiokafka_consume, aiokafka_produce, kafkawire_consume, kafkawire_produce, kcat, new_topic)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def sample_records(n=60, big=False):
    records = []
    for i in range(n):
        key = None if i % 5 == 0 else f"key-{i % 7}".encode()
        value = None if i % 13 == 6 else (f"value {i} " * (1 + i % 9)).encode()
        if i == 3:
            value = b""
        headers = [] if i % 4 == 0 else [("trace", f"t-{i}".encode()), ("empty", b""), ("nullh", None)]
        records.append({"key": key, "value": value, "headers": headers, "timestamp": 1_700_000_000_000 + i * 17})
    if big:
        records.append({"key": b"big", "value": (b"0123456789abcdef" * 65536), "headers": [], "timestamp": 1_700_000_100_000})
    return records


def normalize(rows):
    return sorted(((r["partition"], r["offset"]), r["key"], r["value"], tuple(r["headers"]), r["timestamp"]) for r in rows)


@pytest.mark.parametrize("codec", CODECS)
def test_kafkawire_produces_aiokafka_reads(codec):
    topic = new_topic(f"kw2aio-{codec}", partitions=3)
    records = sample_records(big=True)
    metas = kafkawire_produce(topic, records, codec=codec)
    got = aiokafka_consume(topic, len(records))
    assert len(got) == len(records)
    expected = [dict(partition=m["partition"], offset=m["offset"], key=r["key"], value=r["value"],
                     headers=r["headers"], timestamp=r["timestamp"]) for r, m in zip(records, metas)]
    # aiokafka reports a null header value as None, like KafkaWire.
    assert normalize(got) == normalize(expected)


@pytest.mark.parametrize("codec", CODECS)
def test_kafkawire_produces_kcat_reads(codec):
    topic = new_topic(f"kw2kcat-{codec}", partitions=2)
    records = [r for r in sample_records() if r["value"] is not None]
    metas = kafkawire_produce(topic, records, codec=codec)
    out = kcat("-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J", timeout=60)
    rows = [json.loads(l) for l in out.decode().splitlines() if l.strip()]
    assert len(rows) == len(records)
    by_pos = {(r["partition"], r["offset"]): r for r in rows}
    for rec, meta in zip(records, metas):
        row = by_pos[(meta["partition"], meta["offset"])]
        assert row["payload"] == rec["value"].decode()
        assert row["key"] == (None if rec["key"] is None else rec["key"].decode())
        assert row["ts"] == rec["timestamp"]
        # kcat -J prints headers as a flat [name, value, ...] list (null values as null).
        flat = []
        for k, v in rec["headers"]:
            flat += [k, None if v is None else v.decode()]
        assert (row.get("headers") or []) == flat


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_aiokafka_produces_kafkawire_reads(codec):
    topic = new_topic(f"aio2kw-{codec}", partitions=2)
    # aiokafka refuses a record with neither key nor value.
    records = [r for r in sample_records() if r["key"] is not None or r["value"] is not None]
    metas = aiokafka_produce(topic, records, codec=codec)
    got = kafkawire_consume(topic, len(records))
    expected = [dict(partition=m["partition"], offset=m["offset"], key=r["key"], value=r["value"],
                     headers=r["headers"], timestamp=r["timestamp"]) for r, m in zip(records, metas)]
    assert normalize(got) == normalize(expected)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kcat_produces_kafkawire_reads(codec):
    topic = new_topic(f"kcat2kw-{codec}")
    lines = [f"k{i % 4}:{'compressible payload ' * 8}{i}" for i in range(200)]
    kcat("-P", "-t", topic, "-z", codec, "-K", ":", "-H", "h1=v1", "-H", "h2=", "-X", "linger.ms=50",
         input_bytes=("\n".join(lines) + "\n").encode())
    got = kafkawire_consume(topic, len(lines))
    assert [(r["key"].decode(), r["value"].decode()) for r in sorted(got, key=lambda r: r["offset"])] == \
        [tuple(l.split(":", 1)) for l in lines]
    assert all(r["headers"] == [("h1", b"v1"), ("h2", b"")] for r in got)


def test_keyed_records_land_on_the_same_partitions():
    topic_a = new_topic("keys-aio", partitions=6)
    topic_b = new_topic("keys-kw", partitions=6)
    topic_c = new_topic("keys-kcat", partitions=6)
    keys = [f"employee-{i}".encode() for i in range(120)] + [b"", b"\x00\xff", "ünïcode".encode()]
    records = [{"key": k, "value": b"v"} for k in keys]
    by_aio = [m["partition"] for m in aiokafka_produce(topic_a, records)]
    by_kw = [m["partition"] for m in kafkawire_produce(topic_b, records)]
    assert by_kw == by_aio
    # librdkafka with the Java-compatible partitioner.
    text_keys = [k for k in keys if k and b"\n" not in k and b":" not in k and k.isascii() and k.decode().isprintable()]
    kcat("-P", "-t", topic_c, "-K", ":", "-X", "partitioner=murmur2_random",
         input_bytes=b"\n".join(k + b":v" for k in text_keys) + b"\n")
    rows = [json.loads(l) for l in kcat("-C", "-t", topic_c, "-o", "beginning", "-e", "-q", "-J").decode().splitlines() if l.strip()]
    kcat_partition = {r["key"]: r["partition"] for r in rows}
    kw_partition = {k.decode(): p for k, p in zip(keys, by_kw) if k in text_keys}
    assert kcat_partition == kw_partition


def test_null_keys_spread_over_partitions():
    topic = new_topic("sticky", partitions=4)
    # Several flushes: the sticky partitioner moves on after each batch.
    seen = set()
    for _ in range(8):
        metas = kafkawire_produce(topic, [{"key": None, "value": b"x" * 100} for _ in range(50)])
        assert len({m["partition"] for m in metas}) == 1  # one batch sticks to one partition
        seen |= {m["partition"] for m in metas}
    assert len(seen) >= 2
