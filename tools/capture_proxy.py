#!/usr/bin/env python3
"""capture_proxy.py — a recording TCP proxy for the Kafka protocol (standard library only).

    python3 tools/capture_proxy.py --listen 19192 --upstream 127.0.0.1:19193 --out DIR
        [--max-per-api N] [--max-per-api Fetch=6 ...]

Listens on 127.0.0.1:LISTEN and forwards every connection to the broker at UPSTREAM. Both
directions are split into Kafka frames (a big-endian int32 size, then that many bytes) and every
frame is forwarded unchanged, byte for byte, and also written to DIR as

    NNNN-<c2s|s2c>-<ApiName>-v<version>-corr<id>.bin

holding the frame WITHOUT its 4-byte size prefix: a request is request header + body, a response
is response header + body. NNNN counts the recorded frames in the order the proxy saw them (over
all connections). DIR/index.json lists them:

    {"frames": [{"seq", "file", "direction", "connection", "api_key", "api_name", "api_version",
                 "correlation_id", "length"}, ...],
     "trimmed": {"Fetch": 12, ...}, "upstream": "...", "listen": "..."}

A response does not carry its api key or version, so the proxy remembers, per connection, the
(api_key, api_version) of each request by correlation id and names the response after it.

--max-per-api keeps only the first N requests of each API (per capture, over all connections),
and their responses; later ones (idle Fetch polls, Heartbeats) are still forwarded, only not
written, and counted under "trimmed". "--max-per-api Fetch=6" sets one API's limit.

Nothing is rewritten. A broker advertises its own address in Metadata (and FindCoordinator)
responses, and a client then connects straight to that address, bypassing the proxy. So run a
broker dedicated to the capture that advertises the PROXY's address while listening elsewhere:

    tansu broker --listener-url tcp://127.0.0.1:19193 \\
                 --advertised-listener-url tcp://127.0.0.1:19192      # the proxy's port
    python3 tools/capture_proxy.py --listen 19192 --upstream 127.0.0.1:19193 --out DIR

and point the client at the proxy (127.0.0.1:19192): every connection it makes, bootstrap or
advertised, goes through the proxy. tools/capture_fixtures.py does exactly that.

Stops on SIGINT/SIGTERM, writing index.json (it is also rewritten after every recorded frame).
Prints "listening on 127.0.0.1:PORT" once ready.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import struct
import sys

# Kafka API keys (Apache Kafka's clients/src/main/resources/common/message/*Request.json).
API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 4: "LeaderAndIsr",
    5: "StopReplica", 6: "UpdateMetadata", 7: "ControlledShutdown", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup",
    14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake",
    18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics", 21: "DeleteRecords",
    22: "InitProducerId", 23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn",
    25: "AddOffsetsToTxn", 26: "EndTxn", 27: "WriteTxnMarkers", 28: "TxnOffsetCommit",
    29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls", 32: "DescribeConfigs",
    33: "AlterConfigs", 34: "AlterReplicaLogDirs", 35: "DescribeLogDirs", 36: "SaslAuthenticate",
    37: "CreatePartitions", 38: "CreateDelegationToken", 39: "RenewDelegationToken",
    40: "ExpireDelegationToken", 41: "DescribeDelegationToken", 42: "DeleteGroups",
    43: "ElectLeaders", 44: "IncrementalAlterConfigs", 45: "AlterPartitionReassignments",
    46: "ListPartitionReassignments", 47: "OffsetDelete", 48: "DescribeClientQuotas",
    49: "AlterClientQuotas", 50: "DescribeUserScramCredentials", 51: "AlterUserScramCredentials",
    52: "Vote", 53: "BeginQuorumEpoch", 54: "EndQuorumEpoch", 55: "DescribeQuorum",
    56: "AlterPartition", 57: "UpdateFeatures", 58: "Envelope", 59: "FetchSnapshot",
    60: "DescribeCluster", 61: "DescribeProducers", 62: "BrokerRegistration",
    63: "BrokerHeartbeat", 64: "UnregisterBroker", 65: "DescribeTransactions",
    66: "ListTransactions", 67: "AllocateProducerIds", 68: "ConsumerGroupHeartbeat",
    69: "ConsumerGroupDescribe", 70: "ControllerRegistration", 71: "GetTelemetrySubscriptions",
    72: "PushTelemetry", 73: "AssignReplicasToDirs", 74: "ListClientMetricsResources",
    75: "DescribeTopicPartitions", 76: "ShareGroupHeartbeat", 77: "ShareGroupDescribe",
    78: "ShareFetch", 79: "ShareAcknowledge", 80: "AddRaftVoter", 81: "RemoveRaftVoter",
    82: "UpdateRaftVoter", 83: "InitializeShareGroupState", 84: "ReadShareGroupState",
    85: "WriteShareGroupState", 86: "DeleteShareGroupState", 87: "ReadShareGroupStateSummary",
    88: "StreamsGroupHeartbeat", 89: "StreamsGroupDescribe", 90: "DescribeShareGroupOffsets",
    91: "AlterShareGroupOffsets", 92: "DeleteShareGroupOffsets",
}
NAME_TO_KEY = {v.lower(): k for k, v in API_NAMES.items()}
MAX_FRAME = 256 * 1024 * 1024


def api_name(key: int) -> str:
    return API_NAMES.get(key, f"Api{key}")


def dump_index(doc: dict) -> str:
    """JSON with one line per frame: small, and diffs stay readable."""
    lines = []
    for k, v in doc.items():
        if k == "frames":
            inner = ",\n".join("  " + json.dumps(f) for f in v)
            lines.append(f' "frames": [\n{inner}\n ]' if v else ' "frames": []')
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


class Recorder:
    def __init__(self, out: str, default_limit: int | None, limits: dict[int, int],
                 listen: str, upstream: str) -> None:
        self.out = out
        self.default_limit = default_limit
        self.limits = limits
        self.frames: list[dict] = []
        self.kept_requests: dict[int, int] = {}
        self.trimmed: dict[str, int] = {}
        self.seq = 0
        self.meta = {"listen": listen, "upstream": upstream}
        os.makedirs(out, exist_ok=True)

    def admit(self, api_key: int) -> bool:
        """Decide at request time whether this request (and later its response) is recorded."""
        limit = self.limits.get(api_key, self.default_limit)
        n = self.kept_requests.get(api_key, 0)
        if limit is not None and n >= limit:
            name = api_name(api_key)
            self.trimmed[name] = self.trimmed.get(name, 0) + 1
            return False
        self.kept_requests[api_key] = n + 1
        return True

    def write(self, direction: str, conn: int, api_key: int | None, api_version: int | None,
              corr: int | None, frame: bytes) -> None:
        self.seq += 1
        name = api_name(api_key) if api_key is not None else "Unknown"
        ver = f"v{api_version}" if api_version is not None else "v-"
        fname = f"{self.seq:04d}-{direction}-{name}-{ver}-corr{corr if corr is not None else 'X'}.bin"
        with open(os.path.join(self.out, fname), "wb") as f:
            f.write(frame)
        self.frames.append({
            "seq": self.seq, "file": fname, "direction": direction, "connection": conn,
            "api_key": api_key, "api_name": name, "api_version": api_version,
            "correlation_id": corr, "length": len(frame),
        })
        self.flush()

    def flush(self) -> None:
        doc = dict(self.meta)
        doc["frames"] = self.frames
        doc["trimmed"] = self.trimmed
        tmp = os.path.join(self.out, "index.json.tmp")
        with open(tmp, "w") as f:
            f.write(dump_index(doc))
        os.replace(tmp, os.path.join(self.out, "index.json"))


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """Returns (size prefix, frame) or None at a clean end of stream."""
    try:
        prefix = await reader.readexactly(4)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise
        return None
    (size,) = struct.unpack(">i", prefix)
    if size < 0 or size > MAX_FRAME:
        raise ValueError(f"implausible frame size {size}")
    return prefix, await reader.readexactly(size)


def half_close(w: asyncio.StreamWriter) -> None:
    try:
        if w.can_write_eof():
            w.write_eof()
    except OSError:
        pass  # the other side is gone already


class Proxy:
    def __init__(self, rec: Recorder, upstream_host: str, upstream_port: int) -> None:
        self.rec = rec
        self.uh = upstream_host
        self.up = upstream_port
        self.conn_count = 0
        self.tasks: set[asyncio.Task] = set()

    async def handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.conn_count += 1
        conn = self.conn_count
        try:
            b_reader, b_writer = await asyncio.open_connection(self.uh, self.up)
        except OSError as e:
            print(f"conn {conn}: upstream {self.uh}:{self.up} unreachable: {e}", file=sys.stderr)
            c_writer.close()
            return
        pending: dict[int, tuple[int, int, bool]] = {}  # corr -> (api_key, api_version, keep)

        async def c2s() -> None:
            while (item := await read_frame(c_reader)) is not None:
                prefix, frame = item
                if len(frame) >= 8:
                    key, ver, corr = struct.unpack(">hhi", frame[:8])
                    keep = self.rec.admit(key)
                    pending[corr] = (key, ver, keep)
                    if keep:
                        self.rec.write("c2s", conn, key, ver, corr, frame)
                else:
                    self.rec.write("c2s", conn, None, None, None, frame)
                b_writer.write(prefix + frame)
                await b_writer.drain()
            half_close(b_writer)

        async def s2c() -> None:
            while (item := await read_frame(b_reader)) is not None:
                prefix, frame = item
                corr = struct.unpack(">i", frame[:4])[0] if len(frame) >= 4 else None
                key, ver, keep = pending.pop(corr, (None, None, True)) if corr is not None else (None, None, True)
                if keep:
                    self.rec.write("s2c", conn, key, ver, corr, frame)
                c_writer.write(prefix + frame)
                await c_writer.drain()
            half_close(c_writer)

        tasks = [asyncio.create_task(c2s()), asyncio.create_task(s2c())]
        for t in tasks:
            self.tasks.add(t)
        try:
            # Either side closing (or failing) ends the connection on both sides.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if not t.cancelled() and t.exception() is not None and not isinstance(
                        t.exception(), (ConnectionError, asyncio.IncompleteReadError)):
                    print(f"conn {conn}: {t.exception()!r}", file=sys.stderr)
        finally:
            for t in tasks:
                t.cancel()
                self.tasks.discard(t)
            for w in (c_writer, b_writer):
                w.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1 to listen on")
    ap.add_argument("--upstream", required=True, help="broker host:port")
    ap.add_argument("--out", required=True, help="folder for the frames and index.json")
    ap.add_argument("--max-per-api", action="append", default=[],
                    help="N (all APIs) or Name=N; keep only the first N requests (+responses)")
    args = ap.parse_args()

    default_limit = None
    limits: dict[int, int] = {}
    for item in args.max_per_api:
        if "=" in item:
            name, n = item.split("=", 1)
            key = int(name) if name.isdigit() else NAME_TO_KEY.get(name.lower())
            if key is None:
                ap.error(f"unknown API name {name!r}")
            limits[key] = int(n)
        else:
            default_limit = int(item)
    uh, _, up = args.upstream.rpartition(":")
    rec = Recorder(args.out, default_limit, limits, f"127.0.0.1:{args.listen}", args.upstream)
    rec.flush()
    proxy = Proxy(rec, uh, int(up))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.listen)
    print(f"listening on 127.0.0.1:{args.listen} -> {args.upstream}, writing {args.out}", flush=True)
    await stop.wait()
    server.close()
    for t in list(proxy.tasks):
        t.cancel()
    await asyncio.sleep(0.05)
    rec.flush()
    print(f"stopped: {len(rec.frames)} frames recorded, trimmed {rec.trimmed}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
