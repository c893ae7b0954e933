#!/usr/bin/env python3
"""kafka_frames.py — inspect captured Kafka frames (standard library; cramjam optional).

    python3 tools/kafka_frames.py Fixtures/kcat-consume-fetch          # one fixture folder
    python3 tools/kafka_frames.py Fixtures/*/0007-*.bin                 # single frames

Finds record batches (magic v2) inside a frame without parsing the API's schema: it looks for a
batch header whose CRC-32C over attributes..end verifies, so it works for any Produce request or
Fetch response version. A batch header right after a verified batch whose length runs past the
end of the frame is reported as truncated. Also decodes the compressed payload (if cramjam is
importable) to report its size and, for snappy, whether it uses Kafka's xerial framing.
"""
from __future__ import annotations

import gzip
import json
import os
import struct
import sys

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
XERIAL_MAGIC = b"\x82SNAPPY\x00"


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_T = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def decompress(codec: int, payload: bytes) -> tuple[bytes | None, str]:
    """Returns (decompressed bytes or None, note)."""
    try:
        if codec == 1:
            return gzip.decompress(payload), ""
        import cramjam  # type: ignore
        if codec == 2:
            if payload.startswith(XERIAL_MAGIC):
                out, pos = bytearray(), 16
                while pos < len(payload):
                    (n,) = struct.unpack_from(">i", payload, pos)
                    out += bytes(cramjam.snappy.decompress_raw(payload[pos + 4:pos + 4 + n]))
                    pos += 4 + n
                return bytes(out), "xerial-framed"
            return bytes(cramjam.snappy.decompress_raw(payload)), "raw snappy block"
        if codec == 3:
            return bytes(cramjam.lz4.decompress(payload)), "lz4 frame"
        if codec == 4:
            return bytes(cramjam.zstd.decompress(payload)), "zstd frame"
    except ImportError:
        return None, "cramjam not installed"
    except Exception as e:  # noqa: BLE001 — report, don't fail
        return None, f"decompression failed: {e}"
    return payload, ""


def scan_batches(frame: bytes) -> list[dict]:
    batches: list[dict] = []
    i, n, prev_end = 0, len(frame), None
    while i + 61 <= n:
        if frame[i + 16] != 2:
            i += 1
            continue
        base_offset, length = struct.unpack_from(">qi", frame, i)
        if length < 49 or base_offset < 0:
            i += 1
            continue
        end = i + 12 + length
        attrs, last_delta, base_ts, max_ts, pid, pepoch, bseq, count = struct.unpack_from(
            ">hiqqqhii", frame, i + 21)
        if end > n:
            if prev_end == i:
                batches.append({"offset_in_frame": i, "base_offset": base_offset,
                                "batch_length": length, "bytes_present": n - i - 12,
                                "truncated": True, "codec": CODECS.get(attrs & 7, str(attrs & 7)),
                                "records": count})
                break
            i += 1
            continue
        (crc,) = struct.unpack_from(">I", frame, i + 17)
        if crc32c(frame[i + 21:end]) != crc:
            i += 1
            continue
        codec = attrs & 7
        payload = frame[i + 61:end]
        b = {"offset_in_frame": i, "base_offset": base_offset, "batch_length": length,
             "codec": CODECS.get(codec, str(codec)), "attributes": attrs, "records": count,
             "last_offset_delta": last_delta, "producer_id": pid, "base_sequence": bseq,
             "payload_bytes": len(payload), "truncated": False}
        if codec:
            raw, note = decompress(codec, payload)
            if raw is not None:
                b["uncompressed_bytes"] = len(raw)
            if note:
                b["note"] = note
        batches.append(b)
        prev_end = end
        i = end
    return batches


def describe_folder(folder: str) -> list[tuple[dict, list[dict]]]:
    with open(os.path.join(folder, "index.json")) as f:
        index = json.load(f)
    out = []
    for fr in index["frames"]:
        with open(os.path.join(folder, fr["file"]), "rb") as f:
            data = f.read()
        out.append((fr, scan_batches(data) if fr["api_name"] in ("Produce", "Fetch") else []))
    return out


def batch_line(b: dict) -> str:
    if b["truncated"]:
        return (f"TRUNCATED batch at byte {b['offset_in_frame']}: base offset {b['base_offset']}, "
                f"batchLength {b['batch_length']} but only {b['bytes_present']} bytes present "
                f"({b['codec']}, header says {b['records']} records)")
    s = (f"batch at byte {b['offset_in_frame']}: base offset {b['base_offset']}, "
         f"{b['records']} records, {b['codec']}, {b['payload_bytes']} payload bytes")
    if "uncompressed_bytes" in b:
        s += f" -> {b['uncompressed_bytes']} uncompressed"
    if b.get("note"):
        s += f" ({b['note']})"
    return s


def main(argv: list[str]) -> None:
    for arg in argv:
        if os.path.isdir(arg):
            print(f"{arg}:")
            for fr, batches in describe_folder(arg):
                print(f"  {fr['file']}  {fr['length']} bytes")
                for b in batches:
                    print(f"      {batch_line(b)}")
        else:
            with open(arg, "rb") as f:
                data = f.read()
            print(f"{arg}: {len(data)} bytes")
            for b in scan_batches(data):
                print(f"    {batch_line(b)}")


if __name__ == "__main__":
    main(sys.argv[1:])
