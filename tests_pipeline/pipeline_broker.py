"""The Tansu broker of the pipeline suite and the latency script (scripts/broker.sh on a port of their
own), the pipeline's topics, and reading/writing records (kcat, confluent-kafka)."""
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KCAT = os.environ.get("KWIRE_KCAT", str(ROOT / ".ci-work" / "bin" / "kcat"))
TOPICS = ["notification-queue", "audit-queue", "notification-dlq", "audit-dlq"]


def broker_sh(command, port, check=True):
    """scripts/broker.sh on this suite's port; never the CI's shared broker (KWIRE_BOOTSTRAP)."""
    env = {k: v for k, v in os.environ.items() if k != "KWIRE_BOOTSTRAP"}
    return subprocess.run(["bash", str(ROOT / "scripts" / "broker.sh"), command, str(port)], check=check, cwd=ROOT,
                          env=env, capture_output=not check)


class Broker:
    """The Tansu broker of this suite (scripts/broker.sh); in-memory: a restart loses the topics."""

    def __init__(self, port):
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"

    def start(self, create_topics=True):
        """Starts Tansu; with `create_topics`, creates the pipeline's topics as an operator would
        (without: the services must recreate them themselves)."""
        broker_sh("start", self.port)
        if create_topics:
            self.create_topics()

    def stop(self):
        broker_sh("stop", self.port)

    def running(self):
        return broker_sh("status", self.port, check=False).returncode == 0

    def create_topics(self):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1) for t in TOPICS])
        for topic, f in futures.items():
            try:
                f.result(timeout=30)
            except Exception as e:  # an existing topic is fine
                if "TOPIC_ALREADY_EXISTS" not in str(e) and "already exists" not in str(e):
                    raise

    def records(self, topic):
        """Every record of `topic` from the earliest offset: dicts with key, headers and the parsed value
        (None when the value is not JSON)."""
        out = subprocess.run([KCAT, "-b", self.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        records = []
        for line in out.stdout.splitlines():
            r = json.loads(line)
            try:
                r["value"] = json.loads(r["payload"]) if r.get("payload") is not None else None
            except ValueError:
                r["value"] = None
            r["header"] = dict(zip(r.get("headers", [])[::2], r.get("headers", [])[1::2]))
            records.append(r)
        return records

    def produce(self, topic, value, key=b"poison", headers=None):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all"})
        p.produce(topic, value=value, key=key, headers=headers or [])
        assert p.flush(30) == 0
