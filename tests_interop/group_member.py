"""One consumer-group member of a third-party client, as a process speaking the KafkaWire driver's
JSON lines (`kafkawire-interop group`), so that tests_interop/test_groups.py can mix the clients in
one group and read them all the same way.

    group_member.py aiokafka|confluent -b HOST:PORT -t TOPIC[,TOPIC] -g GROUP [-a range[,roundrobin]]
        [--instance-id ID] [--session-ms 6000] [--heartbeat-ms 500] [-c COUNT] [--commit auto|each]
        [--reset earliest|latest] [--quiet]

    output: {"event": "assigned"|"revoked"|"lost", "partitions": [[topic, p], ...]} on rebalances,
            {"topic", "partition", "offset", "value" (base64 or null)} per record (with --quiet:
            {"progress": n} every 1000 records instead), {"event": "closed", "records": n,
            "firstRecordMs", "lastRecordMs"} last (wall-clock times of the first and last record).

aiokafka 0.14 offers the assignors range, roundrobin and sticky (eager; not cooperative-sticky);
confluent-kafka (librdkafka 2.16) range, roundrobin and cooperative-sticky. Both report every
rebalance as revoke-all then assign-all, except librdkafka with cooperative-sticky, which reports
the partitions that move only (incremental), as KafkaWire does.

SIGTERM closes the member gracefully (commit with auto-commit, leave the group); SIGKILL is a crash.
"""
import argparse
import base64
import json
import signal
import sys
import time


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def b64(data):
    return None if data is None else base64.b64encode(data).decode()


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("client", choices=["aiokafka", "confluent"])
    p.add_argument("-b", required=True)
    p.add_argument("-t", required=True)
    p.add_argument("-g", required=True)
    p.add_argument("-a", default="range")
    p.add_argument("--instance-id")
    p.add_argument("--session-ms", type=int, default=6000)
    p.add_argument("--heartbeat-ms", type=int, default=500)
    p.add_argument("-c", type=int, default=0)
    p.add_argument("--commit", choices=["auto", "each"], default="auto")
    p.add_argument("--reset", choices=["earliest", "latest"], default="earliest")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args()


class Output:
    def __init__(self, quiet):
        self.quiet = quiet
        self.seen = 0
        self.first_ms = self.last_ms = None

    def record(self, topic, partition, offset, value):
        self.seen += 1
        self.last_ms = int(time.time() * 1000)
        if self.first_ms is None:
            self.first_ms = self.last_ms
        if self.quiet:
            if self.seen % 1000 == 0:
                emit({"progress": self.seen})
        else:
            emit({"topic": topic, "partition": partition, "offset": offset, "value": b64(value)})


    def count(self, n):
        """--quiet with batches: n records handled, without per-record work (throughput runs)."""
        if not n:
            return
        before = self.seen
        self.seen += n
        self.last_ms = int(time.time() * 1000)
        if self.first_ms is None:
            self.first_ms = self.last_ms
        if self.seen // 1000 > before // 1000:
            emit({"progress": self.seen // 1000 * 1000})

    def closed(self):
        return {"event": "closed", "records": self.seen, "firstRecordMs": self.first_ms, "lastRecordMs": self.last_ms}


def tps(partitions):
    return [[tp.topic, tp.partition] for tp in sorted(partitions, key=lambda tp: (tp.topic, tp.partition))]


def run_aiokafka(args):
    import asyncio

    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    known = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
             "sticky": StickyPartitionAssignor}
    assignors = tuple(known[name] for name in args.a.split(","))

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            if revoked:
                emit({"event": "revoked", "partitions": tps(revoked)})

        def on_partitions_assigned(self, assigned):
            if assigned:
                emit({"event": "assigned", "partitions": tps(assigned)})

    async def main():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=args.b, group_id=args.g, group_instance_id=args.instance_id,
            partition_assignment_strategy=assignors, session_timeout_ms=args.session_ms,
            heartbeat_interval_ms=args.heartbeat_ms, enable_auto_commit=args.commit == "auto",
            auto_commit_interval_ms=200, auto_offset_reset=args.reset, fetch_max_wait_ms=100)
        consumer.subscribe(args.t.split(","), listener=Listener())
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await consumer.start()
        out = Output(args.quiet)
        try:
            while not stop.is_set() and (args.c == 0 or out.seen < args.c):
                batch = await consumer.getmany(timeout_ms=100, max_records=1 if args.c else None)
                for msgs in batch.values():
                    for m in msgs:
                        out.record(m.topic, m.partition, m.offset, m.value)
                        if args.commit == "each":
                            await consumer.commit({TopicPartition(m.topic, m.partition): m.offset + 1})
        finally:
            await consumer.stop()
        emit(out.closed())

    asyncio.run(main())


def run_confluent(args):
    from confluent_kafka import Consumer, TopicPartition

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    conf = {
        "bootstrap.servers": args.b, "group.id": args.g, "partition.assignment.strategy": args.a,
        "session.timeout.ms": args.session_ms, "heartbeat.interval.ms": args.heartbeat_ms,
        "enable.auto.commit": args.commit == "auto", "auto.commit.interval.ms": 200,
        "auto.offset.reset": args.reset, "fetch.wait.max.ms": 100,
        # auto-commit commits what poll() has handed out (enable.auto.offset.store, the default)
    }
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id
    consumer = Consumer(conf)

    def on_assign(c, partitions):
        if partitions:
            emit({"event": "assigned", "partitions": tps(partitions)})
        # confluent-kafka assigns (incrementally with cooperative-sticky) after this returns

    def on_revoke(c, partitions):
        if partitions:
            emit({"event": "revoked", "partitions": tps(partitions)})

    def on_lost(c, partitions):
        if partitions:
            emit({"event": "lost", "partitions": tps(partitions)})

    consumer.subscribe(args.t.split(","), on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    out = Output(args.quiet)
    try:
        counting = args.quiet and not args.c and args.commit == "auto"
        while not stop and (args.c == 0 or out.seen < args.c):
            if counting:
                # batches and no per-record work: the throughput runs measure the client, not Python
                good = 0
                for m in consumer.consume(1000, 0.1):
                    if m.error():
                        print(f"group_member: {m.error()}", file=sys.stderr, flush=True)
                    else:
                        good += 1
                out.count(good)
                continue
            m = consumer.poll(0.1)
            if m is None:
                continue
            if m.error():
                print(f"group_member: {m.error()}", file=sys.stderr, flush=True)
                continue
            out.record(m.topic(), m.partition(), m.offset(), m.value())
            if args.commit == "each":
                consumer.commit(offsets=[TopicPartition(m.topic(), m.partition(), m.offset() + 1)], asynchronous=False)
    finally:
        consumer.close()
    emit(out.closed())


if __name__ == "__main__":
    a = parse()
    (run_aiokafka if a.client == "aiokafka" else run_confluent)(a)
