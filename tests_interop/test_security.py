"""TLS and SASL to brokers, end to end: kwire (KafkaWire) produces and consumes over real TLS
(Python's ssl module, i.e. OpenSSL, as the server) and authenticates with SASL PLAIN and
SCRAM-SHA-256/512 (the server side of `scramp`, and Tansu's own SCRAM from rsasl), with -X settings
by their Kafka names. kcat (librdkafka) goes through the same proxies with the same settings, which
shows the proxies behave as a broker's listener does.

Each secured listener is tools/secure_proxy.py in front of a Tansu broker of its own that
advertises the proxy's address, so that every connection a client makes goes through it. The PKI
(a CA, a server certificate for DNS:localhost only, a client certificate, an unrelated CA) is made
with the openssl command at the start of the session.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import KCAT, ROOT, built_binary

KWIRE = built_binary("kwire", "KWIRE_CLI_BIN")
TANSU = os.environ.get("KWIRE_TANSU", str(ROOT / ".ci-work/bin/tansu"))
PROXY = str(ROOT / "tools/secure_proxy.py")
USERS = {"alice": "alice-secret", "bob": "b=b,pass"}

pytestmark = [
    pytest.mark.skipif(not Path(KWIRE).exists(), reason=f"{KWIRE} not built (swift build --product kwire)"),
    pytest.mark.skipif(not Path(TANSU).exists(), reason=f"{TANSU} missing (scripts/setup.sh)"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is missing (scripts/setup.sh)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")

    def sh(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    def key(name):
        sh("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key")

    for ca in ("ca", "other-ca"):
        key(ca)
        sh("req", "-x509", "-key", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=test {ca}",
           "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    for name, ext in (("server", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        key(name)
        sh("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text("basicConstraints=CA:FALSE\n" + ext)
        sh("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
           "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return d


class Listener:
    """A Tansu broker behind a secure_proxy.py listener (or a Tansu with its own SASL)."""

    def __init__(self, host: str, proxy_args: list[str] | None, tansu_args: list[str] = ()):
        self.procs = []
        self.port = free_port()
        self.bootstrap = f"{host}:{self.port}"
        tansu_port = self.port if proxy_args is None else free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID")}
        self.procs.append(subprocess.Popen(
            [TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{tansu_port}",
             "--advertised-listener-url", f"tcp://{self.bootstrap}", "--storage-engine", "memory://tansu/", *tansu_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        wait_port(tansu_port)
        if proxy_args is not None:
            proxy = subprocess.Popen(
                [sys.executable, PROXY, "--listen", f"127.0.0.1:{self.port}", "--upstream", f"127.0.0.1:{tansu_port}",
                 *proxy_args], stdout=subprocess.PIPE, text=True)
            self.procs.append(proxy)
            line = proxy.stdout.readline()
            assert line.startswith("listening on"), line

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="session")
def listeners(pki):
    """Listeners by kind, each started on first use and stopped at the end of the session."""
    made: dict[str, Listener] = {}
    users = [f"--sasl-user={u}:{p}" for u, p in USERS.items()]
    tls = ["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key")]
    kinds = {
        "ssl": lambda: Listener("localhost", tls),
        "mtls": lambda: Listener("localhost", tls + ["--tls-client-ca", str(pki / "ca.pem")]),
        "sasl": lambda: Listener("127.0.0.1", users + ["--session-lifetime-ms", "3600000"]),
        "sasl-512-only": lambda: Listener("127.0.0.1", users + ["--sasl-mechanisms", "SCRAM-SHA-512"]),
        "sasl-ssl": lambda: Listener("localhost", tls + users),
        "tansu-scram": lambda: Listener("127.0.0.1", None, ["--authentication"]),
    }

    def get(kind: str) -> Listener:
        if kind not in made:
            made[kind] = kinds[kind]()
        return made[kind]

    yield get
    for listener in made.values():
        listener.stop()


def settings(pki, protocol, mechanism=None, user=None, password=None, ca="ca.pem", **extra):
    """-X settings for kwire, and the same for kcat (librdkafka spells a few differently)."""
    s = {"security.protocol": protocol}
    if mechanism:
        s.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
    if "SSL" in protocol:
        s["ssl.ca.location"] = str(pki / ca)
    s.update(extra)
    return s


def xs(s: dict) -> list[str]:
    return [a for k, v in s.items() for a in ("-X", f"{k}={v}")]


def kwire(bootstrap, s, *args, input_bytes=None, timeout=60):
    return subprocess.run([KWIRE, *args, "-b", bootstrap, *xs(s)], input=input_bytes, capture_output=True, timeout=timeout)


def kwire_ok(bootstrap, s, *args, **kw):
    out = kwire(bootstrap, s, *args, **kw)
    assert out.returncode == 0, (args, out.stderr.decode(errors="replace"))
    return out.stdout


def kcat_run(bootstrap, s, *args, input_bytes=None, timeout=60):
    kcat_settings = {("sasl.mechanisms" if k == "sasl.mechanism" else k): v for k, v in s.items()}
    out = subprocess.run([KCAT, "-b", bootstrap, *xs(kcat_settings), *args], input=input_bytes, capture_output=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return out.stdout


def round_trip(listener, s, partitions=2):
    """kwire creates a topic, produces; kcat reads it back and produces more; kwire reads all."""
    topic = f"sec-{uuid.uuid4().hex[:10]}"
    kwire_ok(listener.bootstrap, s, "topics", "create", topic, "-P", str(partitions))
    mine = [f"k{i}:value-{i}-{'x' * (i * 37 % 300)}" for i in range(200)]
    kwire_ok(listener.bootstrap, s, "produce", "-t", topic, "-K", ":", "-z", "lz4", input_bytes=("\n".join(mine) + "\n").encode())

    rows = [json.loads(l) for l in kcat_run(listener.bootstrap, s, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J").splitlines()]
    assert sorted(f"{r['key']}:{r['payload']}" for r in rows) == sorted(mine)

    theirs = [f"t{i}:from-kcat-{i}" for i in range(50)]
    kcat_run(listener.bootstrap, s, "-P", "-t", topic, "-K", ":", input_bytes=("\n".join(theirs) + "\n").encode())
    out = kwire_ok(listener.bootstrap, s, "consume", "-t", topic, "-e", "-J")
    got = [json.loads(l) for l in out.decode().splitlines()]
    assert sorted(f"{r['key']}:{r['value']}" for r in got) == sorted(mine + theirs)
    # Per partition, offsets are dense: nothing lost or duplicated on the way.
    for p in range(partitions):
        offsets = [r["offset"] for r in got if r["partition"] == p]
        assert offsets == list(range(len(offsets)))


def failure(listener_bootstrap, s, timeout=60):
    start = time.monotonic()
    out = kwire(listener_bootstrap, s, "metadata", timeout=timeout)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    return out.stderr.decode(errors="replace"), time.monotonic() - start


# --- TLS ------------------------------------------------------------------------------------------

def test_ssl_round_trip_verified_chain_and_host(pki, listeners):
    round_trip(listeners("ssl"), settings(pki, "SSL"))


def test_ssl_untrusted_ca_is_a_clear_error(pki, listeners):
    err, elapsed = failure(listeners("ssl").bootstrap, settings(pki, "SSL", ca="other-ca.pem"))
    assert "TLS handshake with localhost" in err and "CERTIFICATE_VERIFY_FAILED" in err, err
    assert elapsed < 30


def test_ssl_wrong_host_name_is_a_clear_error_unless_the_check_is_off(pki, listeners):
    # The certificate names DNS:localhost only; 127.0.0.1 is the same server under another name.
    bootstrap = listeners("ssl").bootstrap.replace("localhost", "127.0.0.1")
    err, _ = failure(bootstrap, settings(pki, "SSL"))
    assert "TLS handshake with 127.0.0.1" in err and "127.0.0.1" in err, err
    out = kwire_ok(bootstrap, settings(pki, "SSL", **{"ssl.endpoint.identification.algorithm": "none"}), "metadata", "--json")
    assert json.loads(out)["brokers"], out


def test_mutual_tls(pki, listeners):
    listener = listeners("mtls")
    with_cert = settings(pki, "SSL", **{"ssl.certificate.location": str(pki / "client.pem"),
                                        "ssl.key.location": str(pki / "client.key")})
    round_trip(listener, with_cert, partitions=1)
    # Without a certificate the server refuses (with TLS 1.3 the refusal comes after the client's
    # side of the handshake is done): a failure either way, never a hang.
    err, elapsed = failure(listener.bootstrap, settings(pki, "SSL"))
    assert "localhost" in err and elapsed < 45, err


@pytest.mark.parametrize("behaviour", ["garbage", "close"])
def test_ssl_to_a_server_that_does_not_speak_tls(pki, behaviour):
    """A plaintext server that answers the ClientHello with garbage, or hangs up on it: a typed
    error within the connect timeout, no hang, no crash."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                if behaviour == "garbage":
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(range(256)))
                    conn.recv(4096)

    threading.Thread(target=serve, daemon=True).start()
    try:
        err, elapsed = failure(f"127.0.0.1:{port}", settings(pki, "SSL", **{"socket.connection.setup.timeout.ms": "3000"}))
    finally:
        server.close()
    expected = "TLS handshake with 127.0.0.1" if behaviour == "garbage" else "closed by peer during the TLS handshake"
    assert expected in err, err
    assert elapsed < 30


# --- SASL -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_round_trip(pki, listeners, mechanism):
    round_trip(listeners("sasl"), settings(pki, "SASL_PLAINTEXT", mechanism, "alice", USERS["alice"]), partitions=1)


def test_scram_user_name_and_password_with_commas_and_equals(pki, listeners):
    # "b=b,pass" and a saslname-escaped user would fail unless both sides escape alike.
    listener = listeners("sasl")
    s = settings(pki, "SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", USERS["bob"])
    assert json.loads(kwire_ok(listener.bootstrap, s, "metadata", "--json"))["brokers"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_wrong_password(pki, listeners, mechanism):
    err, elapsed = failure(listeners("sasl").bootstrap, settings(pki, "SASL_PLAINTEXT", mechanism, "alice", "nope"))
    assert "SASL_AUTHENTICATION_FAILED" in err and f'{mechanism} authentication to 127.0.0.1' in err, err
    assert ("Invalid username or password" if mechanism == "PLAIN" else "invalid credentials") in err, err
    assert elapsed < 30


def test_sasl_unsupported_mechanism_names_the_offered_ones(pki, listeners):
    err, _ = failure(listeners("sasl-512-only").bootstrap, settings(pki, "SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", USERS["alice"]))
    assert "UNSUPPORTED_SASL_MECHANISM" in err and "SCRAM-SHA-512" in err, err


def test_sasl_ssl_round_trip(pki, listeners):
    round_trip(listeners("sasl-ssl"), settings(pki, "SASL_SSL", "SCRAM-SHA-512", "alice", USERS["alice"]))


def test_tansu_own_scram_refuses_an_unknown_user(pki, listeners):
    """Tansu's SASL (rsasl), not the proxy: a user it does not have is refused, as SCRAM says."""
    listener = listeners("tansu-scram")
    err, _ = failure(listener.bootstrap, settings(pki, "SASL_PLAINTEXT", "SCRAM-SHA-512", "nobody", "x"))
    assert "SASL_AUTHENTICATION_FAILED" in err and "SCRAM-SHA-512 authentication to 127.0.0.1" in err, err


def test_bad_security_settings_are_usage_errors(pki):
    out = kwire("127.0.0.1:1", {"security.protocol": "TLS"}, "metadata")
    assert out.returncode == 2 and b"security.protocol" in out.stderr, out.stderr
    out = kwire("127.0.0.1:1", {"security.protocol": "SASL_SSL"}, "metadata")
    assert out.returncode != 0 and b"sasl.username" in out.stderr, out.stderr
    out = kwire("127.0.0.1:1", {"security.protocol": "SSL", "ssl.ca.location": "/nonexistent/ca.pem"}, "metadata")
    assert out.returncode != 0 and b"ssl.ca.location /nonexistent/ca.pem" in out.stderr, out.stderr
