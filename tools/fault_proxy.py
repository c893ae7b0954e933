#!/usr/bin/env python3
"""fault_proxy.py — a TCP proxy for the Kafka protocol that a test can break on purpose (stdlib only).

    from fault_proxy import FaultProxy
    proxy = FaultProxy("127.0.0.1", 19192)     # the real broker
    port = proxy.start()                        # clients bootstrap to 127.0.0.1:port
    proxy.cut()                                 # abort every open connection (both sides)
    proxy.refuse(True)                          # new connections are closed right after accept
    proxy.delay(2000)                           # hold every frame 2 s before forwarding it
    proxy.restore()                             # accept and forward normally again
    proxy.stop()

    python3 tools/fault_proxy.py --upstream 127.0.0.1:19192 [--listen PORT]   # plain proxy, for trying

Frames (a big-endian int32 size, then that many bytes) are forwarded whole, in order, per
direction. A broker advertises its own address in Metadata answers, and a client then connects
straight to it; so the proxy rewrites, in Metadata answers (every version), the port of each
broker that is the upstream into its own port (same size: nothing else moves). Every connection a
client makes, bootstrap or advertised, then goes through the proxy.

The proxy runs its asyncio loop on a thread of its own; the control methods are thread-safe and
return once the change is in effect.
"""
from __future__ import annotations

import argparse
import asyncio
import struct
import threading

METADATA = 3


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _skip_tagged(buf: bytes, pos: int) -> int:
    count, pos = _uvarint(buf, pos)
    for _ in range(count):
        _, pos = _uvarint(buf, pos)
        size, pos = _uvarint(buf, pos)
        pos += size
    return pos


def rewrite_metadata_ports(frame: bytearray, version: int, upstream_port: int, proxy_port: int) -> int:
    """Rewrites in place the brokers' ports of a Metadata response frame (without its size prefix)
    that equal upstream_port; returns how many it rewrote."""
    flexible = version >= 9
    pos = 4  # correlation id
    if flexible:
        pos = _skip_tagged(frame, pos)
    if version >= 3:
        pos += 4  # throttle_time_ms
    if flexible:
        n, pos = _uvarint(frame, pos)
        n -= 1
    else:
        (n,) = struct.unpack_from(">i", frame, pos)
        pos += 4
    rewritten = 0
    for _ in range(max(n, 0)):
        pos += 4  # node_id
        if flexible:
            length, pos = _uvarint(frame, pos)
            pos += length - 1
        else:
            (length,) = struct.unpack_from(">h", frame, pos)
            pos += 2 + length
        (port,) = struct.unpack_from(">i", frame, pos)
        if port == upstream_port:
            struct.pack_into(">i", frame, pos, proxy_port)
            rewritten += 1
        pos += 4
        if version >= 1:  # rack
            if flexible:
                length, pos = _uvarint(frame, pos)
                pos += max(length - 1, 0)
            else:
                (length,) = struct.unpack_from(">h", frame, pos)
                pos += 2 + max(length, 0)
        if flexible:
            pos = _skip_tagged(frame, pos)
    return rewritten


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, listen_port: int = 0):
        self.upstream = (upstream_host, upstream_port)
        self.listen_port = listen_port
        self.port = 0
        self._refusing = False
        self._delay_s = 0.0
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self.connections_accepted = 0

    # Control (any thread)

    def start(self) -> int:
        self._thread.start()
        self._call(self._start())
        return self.port

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def cut(self) -> None:
        """Aborts every open connection, on both sides, as a network failure would."""
        self._call(self._cut())

    def refuse(self, on: bool = True) -> None:
        self._call(self._set(refusing=on))

    def delay(self, ms: int) -> None:
        self._call(self._set(delay_s=ms / 1000))

    def restore(self) -> None:
        self._call(self._set(refusing=False, delay_s=0.0))

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # Loop side

    async def _set(self, refusing: bool | None = None, delay_s: float | None = None) -> None:
        if refusing is not None:
            self._refusing = refusing
        if delay_s is not None:
            self._delay_s = delay_s

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen_port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server:
            self._server.close()
        await self._cut()
        # The connections' tasks end with their sockets; wait for them so none is left pending.
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _cut(self) -> None:
        for a, b in list(self._conns):
            a.transport.abort()
            b.transport.abort()
        self._conns.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._conns.add(pair)
        requests: dict[int, tuple[int, int]] = {}
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, requests, to_broker=True),
                self._pump(up_reader, writer, requests, to_broker=False))
        finally:
            self._conns.discard(pair)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pump(self, reader, writer, requests, to_broker: bool) -> None:
        try:
            while True:
                head = await reader.readexactly(4)
                (size,) = struct.unpack(">i", head)
                frame = bytearray(await reader.readexactly(size))
                if to_broker:
                    key, version, corr = struct.unpack_from(">hhi", frame, 0)
                    requests[corr] = (key, version)
                else:
                    (corr,) = struct.unpack_from(">i", frame, 0)
                    key, version = requests.pop(corr, (-1, -1))
                    if key == METADATA:
                        rewrite_metadata_ports(frame, version, self.upstream[1], self.port)
                if self._delay_s:
                    await asyncio.sleep(self._delay_s)
                writer.write(head + bytes(frame))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError, struct.error):
            pass
        finally:
            writer.transport.abort()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the broker")
    ap.add_argument("--listen", type=int, default=0)
    args = ap.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    proxy = FaultProxy(host, int(port), args.listen)
    print(f"listening on 127.0.0.1:{proxy.start()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    main()
