#!/usr/bin/env python3
"""secure_proxy.py — a broker's security layer in front of a plaintext broker, for the tests.

    python3 tools/secure_proxy.py --listen 127.0.0.1:19393 --upstream 127.0.0.1:19392 \\
        [--tls-cert server.pem --tls-key server.key [--tls-client-ca ca.pem]] \\
        [--sasl-user alice:secret ...] [--sasl-mechanisms PLAIN,SCRAM-SHA-256,SCRAM-SHA-512] \\
        [--session-lifetime-ms N]

Terminates TLS (Python's ssl module, i.e. OpenSSL) and/or SASL the way a Kafka broker with such a
listener does, then pipes the connection to the upstream broker byte for byte:

- TLS: the certificate chain and key given; with --tls-client-ca the client must present a
  certificate that CA signed (mutual TLS).
- SASL (with --sasl-user): before authentication only ApiVersions (passed to the upstream broker),
  SaslHandshake v0-1 and SaslAuthenticate v0-2 (answered here) are allowed; anything else closes
  the connection, as Kafka does. PLAIN is checked here; SCRAM-SHA-256/512 run the server side of
  `scramp` (an implementation independent of the client under test), with 4096 iterations and a
  fresh salt per user. A failure answers SASL_AUTHENTICATION_FAILED (58) with Kafka's message and
  closes; an unknown mechanism answers UNSUPPORTED_SASL_MECHANISM (33) with the enabled list.

The upstream broker must advertise this proxy's address (Tansu: --advertised-listener-url), so
that clients come back here for every broker connection. Prints "listening on HOST:PORT" once
ready. Standard library plus scramp.
"""
from __future__ import annotations

import argparse
import asyncio
import ssl
import struct
import sys

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED, ILLEGAL_SASL_STATE = 33, 58, 34


class Reject(Exception):
    """Ends the connection (after sending `answer`, if any)."""

    def __init__(self, answer: bytes | None = None):
        super().__init__()
        self.answer = answer


def uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def put_uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def request_header(frame: bytes) -> tuple[int, int, int, int]:
    """(api key, version, correlation id, offset of the body) of a request without its size."""
    api_key, version, correlation = struct.unpack_from(">hhi", frame, 0)
    (client_len,) = struct.unpack_from(">h", frame, 8)
    pos = 10 + max(client_len, 0)
    flexible = (api_key == SASL_AUTHENTICATE and version >= 2) or (api_key == API_VERSIONS and version >= 3)
    if flexible:  # header v2: tagged fields
        count, pos = uvarint(frame, pos)
        for _ in range(count):
            _, pos = uvarint(frame, pos)
            size, pos = uvarint(frame, pos)
            pos += size
    return api_key, version, correlation, pos


def framed(correlation: int, body: bytes, header_tags: bool = False) -> bytes:
    payload = struct.pack(">i", correlation) + (b"\x00" if header_tags else b"") + body
    return struct.pack(">i", len(payload)) + payload


class SaslServer:
    """The users and mechanisms of one listener."""

    def __init__(self, users: dict[str, str], mechanisms: list[str], lifetime_ms: int):
        from scramp import ScramMechanism

        self.users = users
        self.mechanisms = mechanisms
        self.lifetime_ms = lifetime_ms
        self.scram = {}
        for name in mechanisms:
            if name.startswith("SCRAM-"):
                m = ScramMechanism(name)
                self.scram[name] = (m, {u: m.make_auth_info(p, iteration_count=4096) for u, p in users.items()})


class Session:
    """The SASL state of one client connection."""

    def __init__(self, server: SaslServer):
        self.server = server
        self.mechanism: str | None = None
        self.scram = None
        self.done = False

    def handshake(self, version: int, correlation: int, body: bytes) -> bytes:
        (n,) = struct.unpack_from(">h", body, 0)
        mechanism = body[2:2 + n].decode()
        ok = mechanism in self.server.mechanisms and version >= 1  # v0 (unframed tokens) is not served
        enabled = [m.encode() for m in self.server.mechanisms]
        answer = struct.pack(">hi", 0 if ok else UNSUPPORTED_SASL_MECHANISM, len(enabled))
        answer += b"".join(struct.pack(">h", len(m)) + m for m in enabled)
        if not ok:
            raise Reject(framed(correlation, answer))
        self.mechanism = mechanism
        if mechanism in self.server.scram:
            m, infos = self.server.scram[mechanism]

            def auth_fn(user):
                if user not in infos:
                    raise KeyError(user)
                return infos[user]

            self.scram = m.make_server(auth_fn)
        return framed(correlation, answer)

    def authenticate(self, version: int, correlation: int, body: bytes) -> bytes:
        flexible = version >= 2
        if flexible:
            n, pos = uvarint(body, 0)
            token = body[pos:pos + n - 1]
        else:
            (n,) = struct.unpack_from(">i", body, 0)
            token = body[4:4 + n]

        def answer(error: int, message: str | None, data: bytes, lifetime: int) -> bytes:
            if flexible:
                msg = b"\x00" if message is None else put_uvarint(len(message.encode()) + 1) + message.encode()
                out = struct.pack(">h", error) + msg + put_uvarint(len(data) + 1) + data
            else:
                msg = struct.pack(">h", -1) if message is None else struct.pack(">h", len(message.encode())) + message.encode()
                out = struct.pack(">h", error) + msg + struct.pack(">i", len(data)) + data
            if version >= 1:
                out += struct.pack(">q", lifetime)
            if flexible:
                out += b"\x00"
            return framed(correlation, out, header_tags=flexible)

        failed = f"Authentication failed during authentication due to invalid credentials with SASL mechanism {self.mechanism}"
        if self.mechanism is None or self.done:
            raise Reject(answer(ILLEGAL_SASL_STATE, "Unexpected SaslAuthenticate request", b"", 0))
        if self.mechanism == "PLAIN":
            parts = token.split(b"\x00")
            if len(parts) != 3 or parts[0] not in (b"", parts[1]):
                raise Reject(answer(SASL_AUTHENTICATION_FAILED, "Invalid SASL/PLAIN request", b"", 0))
            user, password = parts[1].decode(), parts[2].decode()
            if self.server.users.get(user) != password:
                raise Reject(answer(SASL_AUTHENTICATION_FAILED, "Authentication failed: Invalid username or password", b"", 0))
            self.done = True
            return answer(0, None, b"", self.server.lifetime_ms)
        # SCRAM: client-first, then client-final.
        try:
            if self.scram.stage is None:
                self.scram.set_client_first(token.decode())
                return answer(0, None, self.scram.get_server_first().encode(), 0)
            self.scram.set_client_final(token.decode())
            final = self.scram.get_server_final().encode()
        except Exception:  # unknown user, bad proof, malformed message: Kafka says the same for all
            raise Reject(answer(SASL_AUTHENTICATION_FAILED, failed, b"", 0))
        self.done = True
        return answer(0, None, final, self.server.lifetime_ms)


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readexactly(4)
        (size,) = struct.unpack(">i", head)
        if size < 0 or size > 100 << 20:
            return None
        return await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def serve(client_r, client_w, upstream: tuple[str, int], sasl: SaslServer | None) -> None:
    try:
        up_r, up_w = await asyncio.open_connection(*upstream)
    except OSError:
        client_w.close()
        return
    try:
        if sasl is not None:
            session = Session(sasl)
            while not session.done:
                frame = await read_frame(client_r)
                if frame is None:
                    return
                api_key, version, correlation, body_at = request_header(frame)
                if api_key == API_VERSIONS:
                    up_w.write(struct.pack(">i", len(frame)) + frame)
                    await up_w.drain()
                    answer = await read_frame(up_r)
                    if answer is None:
                        return
                    client_w.write(struct.pack(">i", len(answer)) + answer)
                elif api_key == SASL_HANDSHAKE:
                    client_w.write(session.handshake(version, correlation, frame[body_at:]))
                elif api_key == SASL_AUTHENTICATE:
                    client_w.write(session.authenticate(version, correlation, frame[body_at:]))
                else:
                    return  # a request before authentication: Kafka closes the connection
                await client_w.drain()
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))
    except Reject as r:
        if r.answer:
            client_w.write(r.answer)
            try:
                await client_w.drain()
            except ConnectionError:
                pass
    except (ConnectionError, ssl.SSLError, struct.error, IndexError, UnicodeDecodeError):
        pass
    finally:
        for w in (client_w, up_w):
            try:
                w.close()
            except Exception:
                pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True, help="host:port (port 0 picks one)")
    ap.add_argument("--upstream", required=True, help="host:port of the plaintext broker")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-client-ca", help="require client certificates signed by this CA")
    ap.add_argument("--sasl-user", action="append", default=[], help="name:password (repeatable)")
    ap.add_argument("--sasl-mechanisms", default="PLAIN,SCRAM-SHA-256,SCRAM-SHA-512")
    ap.add_argument("--session-lifetime-ms", type=int, default=0)
    args = ap.parse_args()

    host, port = args.listen.rsplit(":", 1)
    up_host, up_port = args.upstream.rsplit(":", 1)
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.tls_client_ca)
    sasl = None
    if args.sasl_user:
        users = dict(u.split(":", 1) for u in args.sasl_user)
        sasl = SaslServer(users, args.sasl_mechanisms.split(","), args.session_lifetime_ms)

    async def run():
        server = await asyncio.start_server(
            lambda r, w: serve(r, w, (up_host, int(up_port)), sasl), host, int(port), ssl=context,
            ssl_handshake_timeout=10 if context else None)
        bound = server.sockets[0].getsockname()
        print(f"listening on {bound[0]}:{bound[1]}", flush=True)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
