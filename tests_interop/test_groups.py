"""KafkaWire consumer groups on a real broker: KafkaWire members (driver processes), alone and mixed
with aiokafka and librdkafka members (tests_interop/group_member.py), through joins, graceful
leaves, crashes, restarts and static membership; committed offsets and `describe-group` lag.

Every member is a process printing JSON lines (assigned/revoked/lost/committed/closed events and
records); a reader thread timestamps each line as it arrives, so ownership, handovers and counts are
computed from what the members did, not from what the broker says.

Numbers (stable time, pauses, throughput) are printed (`pytest -s`) and written to
.ci-work/group-numbers.json; nothing asserts on wall-clock speed. Member output is kept in
.ci-work/group-logs/<test>/ (stdout lines with arrival times, stderr).

Tansu 0.6.0's group coordinator, as these tests meet it (details at each test): a JoinGroup waits
session.timeout.ms/2 before it answers, so every rebalance round takes seconds; the group's assignor
is the first one listed by the first member (INCONSISTENT_GROUP_PROTOCOL for a member without it);
DescribeGroups returns members without assignments, client ids or protocol; ListOffsets(latest)
answers the last batch's base offset + 1; a static member's join and sync wait and do not count as
contact with it.
"""
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import BOOTSTRAP, DRIVER, ROOT, kafkawire_produce, new_topic, unb64

HERE = Path(__file__).resolve().parent
MEMBER_PY = str(HERE / "group_member.py")
PYTHON = os.environ.get("KWIRE_PYTHON", sys.executable)
LOGS = ROOT / ".ci-work" / "group-logs"
NUMBERS_FILE = ROOT / ".ci-work" / "group-numbers.json"

pytestmark = pytest.mark.skipif(BOOTSTRAP is None, reason="KWIRE_BOOTSTRAP not set (scripts/test.sh starts a broker)")

# Tansu 0.6.0 makes a JoinGroup wait session.timeout.ms/2 (3 s here) before it answers; a 6 s session
# keeps crash detection short and still well above the heartbeat interval.
SESSION_MS = 6000
HEARTBEAT_MS = 500

NUMBERS = {}
NUMBERS_LOCK = threading.Lock()


def note(key, value):
    """A number for the closing note: printed now, written to .ci-work/group-numbers.json."""
    with NUMBERS_LOCK:
        NUMBERS[key] = value
        print(f"[groups] {key} = {value}")
        NUMBERS_FILE.parent.mkdir(parents=True, exist_ok=True)
        old = {}
        if NUMBERS_FILE.exists():
            try:
                old = json.loads(NUMBERS_FILE.read_text())
            except ValueError:
                old = {}
        old.update(NUMBERS)
        NUMBERS_FILE.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------------------
# Members


class Member:
    """One group member process and everything it printed, with arrival times (time.monotonic())."""

    def __init__(self, name, kind, cmd, log_dir):
        self.name, self.kind, self.cmd = name, kind, cmd
        log_dir.mkdir(parents=True, exist_ok=True)
        self.out_log = open(log_dir / f"{name}.out", "w")
        self.err_path = log_dir / f"{name}.err"
        self.err_log = open(self.err_path, "w")
        self.lines = []          # (t, obj)
        self.cond = threading.Condition()
        self.eof = False
        self.started = time.monotonic()
        self.signalled = None    # (signal name, time)
        # In pytest's process group: what stops the suite as a whole (scripts/test.sh signals the
        # group) stops the members too; otherwise the fixtures kill them.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err_log)
        self.reader = threading.Thread(target=self._read, name=f"reader-{name}", daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            t = time.monotonic()
            self.out_log.write(f"{t - self.started:9.3f} {raw.decode(errors='replace')}")
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = {"unparsed": raw.decode(errors="replace")}
            with self.cond:
                self.lines.append((t, obj))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    # -- what it printed

    def snapshot(self):
        with self.cond:
            return list(self.lines)

    def events(self, kinds=("assigned", "revoked", "lost")):
        return [(t, o) for t, o in self.snapshot() if o.get("event") in kinds]

    def records(self):
        """[(t, topic, partition, offset, value bytes)] in arrival order."""
        return [(t, o["topic"], o["partition"], o["offset"], unb64(o["value"]))
                for t, o in self.snapshot() if "offset" in o and "event" not in o]

    def progress(self):
        last = [o["progress"] for _, o in self.snapshot() if "progress" in o]
        return last[-1] if last else 0

    def owned(self, until=None):
        """Partitions owned after the events seen (up to time `until`)."""
        owned = set()
        for t, o in self.events():
            if until is not None and t > until:
                break
            tps = {(tp[0], tp[1]) for tp in o["partitions"]}
            if o["event"] == "assigned":
                owned |= tps
            else:
                owned -= tps
        return owned

    def committed(self):
        """Last offset this member reported committing per (topic, partition)."""
        out = {}
        for _, o in self.snapshot():
            if o.get("event") == "committed":
                for topic, p, offset in o["offsets"]:
                    out[(topic, p)] = offset
        return out

    def stderr(self):
        try:
            return self.err_path.read_text()[-3000:]
        except OSError:
            return ""

    def describe(self):
        evs = [(round(t - self.started, 3), o["event"], [p for _, p in o["partitions"]]) for t, o in self.events()]
        return f"{self.name} ({self.kind}, rc={self.proc.poll()}): events {evs}\n  stderr tail: {self.stderr()[-800:]}"

    # -- waiting

    def wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0 or (self.eof and not predicate(self)):
                    break
                self.cond.wait(min(left, 0.2))
        if not predicate(self):
            raise AssertionError(f"{self.name}: {what} not seen within {timeout}s\n{self.describe()}")

    # -- ending it

    def term(self):
        self.signalled = ("SIGTERM", time.monotonic())
        self.proc.send_signal(signal.SIGTERM)

    def kill(self):
        self.signalled = ("SIGKILL", time.monotonic())
        self.proc.kill()

    def wait_exit(self, timeout=20):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout}s\n{self.describe()}")
        self.reader.join(5)
        return rc

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.reader.join(5)
        self.out_log.close()
        self.err_log.close()


class Group:
    """Starts members of groups for one test; the fixture kills whatever is still running."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.members = []

    def _start(self, name, kind, cmd):
        m = Member(name, kind, cmd, self.log_dir)
        self.members.append(m)
        return m

    def kafkawire(self, name, group, topic, assignors=None, instance_id=None, count=None, commit=None,
                  quiet=False, session_ms=SESSION_MS):
        cmd = [DRIVER, "group", "-b", BOOTSTRAP, "-t", topic, "-g", group,
               "--session-ms", str(session_ms), "--heartbeat-ms", str(HEARTBEAT_MS)]
        if assignors:
            cmd += ["-a", assignors]
        if instance_id:
            cmd += ["--instance-id", instance_id]
        if count:
            cmd += ["-c", str(count)]
        if commit:
            cmd += ["--commit", commit]
        if quiet:
            cmd += ["--quiet", "1"]
        return self._start(name, "kafkawire", cmd)

    def peer(self, client, name, group, topic, assignors="range", instance_id=None, count=None, commit=None,
             quiet=False, session_ms=SESSION_MS):
        cmd = [PYTHON, MEMBER_PY, client, "-b", BOOTSTRAP, "-t", topic, "-g", group, "-a", assignors,
               "--session-ms", str(session_ms), "--heartbeat-ms", str(HEARTBEAT_MS)]
        if instance_id:
            cmd += ["--instance-id", instance_id]
        if count:
            cmd += ["-c", str(count)]
        if commit:
            cmd += ["--commit", commit]
        if quiet:
            cmd += ["--quiet"]
        return self._start(name, client, cmd)

    def describe(self):
        return "\n".join(m.describe() for m in self.members)


def log_name(text):
    return text.replace("/", "_").replace("[", "-").replace("]", "")


@pytest.fixture
def group(request):
    g = Group(LOGS / log_name(request.node.name))
    yield g
    for m in g.members:
        m.cleanup()


@pytest.fixture(scope="module")
def concurrently():
    """Runs the scenarios of a parametrized test at the same time, to keep the suite short (they spend
    most of their time waiting for the broker's rebalance pauses): the first case starts them all,
    each case then waits for its own. `run(key, fn, *args)` -> a future of fn(Group, *args)."""
    pool = ThreadPoolExecutor(max_workers=8)
    runs, groups = {}, []
    lock = threading.Lock()

    def run(key, fn, *args):
        with lock:
            if key not in runs:
                g = Group(LOGS / log_name(key))
                groups.append(g)
                runs[key] = pool.submit(fn, g, *args)
            return runs[key]

    yield run
    for g in groups:
        for m in g.members:
            m.cleanup()
    pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------------------
# Helpers


def all_partitions(topic, n):
    return {(topic, p) for p in range(n)}


def ownership_ok(members, partitions, require_each=True):
    """Every partition owned by exactly one of `members`; each owns some if `require_each`."""
    owned = [m.owned() for m in members]
    if require_each and any(not o for o in owned):
        return False
    union = set().union(*owned)
    return union == partitions and sum(len(o) for o in owned) == len(partitions)


def wait_stable(members, partitions, timeout=60, quiet_s=3.0, require_each=True):
    """Waits until the members' owned partitions (from their events) split `partitions` exactly and no
    member printed an event for `quiet_s` seconds (Tansu's follower pause is 3 s). Returns the time
    of the last event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            if m.proc.poll() is not None:
                raise AssertionError(f"{m.name} exited while waiting for a stable group\n" + "\n".join(x.describe() for x in members))
        if ownership_ok(members, partitions, require_each):
            last = max((t for m in members for t, _ in m.events()), default=0)
            if time.monotonic() - last >= quiet_s:
                return last
        time.sleep(0.1)
    raise AssertionError("group not stable within %ss:\n%s" % (timeout, "\n".join(m.describe() for m in members)))


def owner_of(members, tp):
    owners = [m for m in members if tp in m.owned()]
    return owners[0] if len(owners) == 1 else None


class Producer:
    """Produces numbered records ("n" as the value) into every partition in turn, in the
    background, with aiokafka (acks=all), and keeps (partition, offset) of each one acknowledged."""

    def __init__(self, topic, partitions, rate_per_s=300):
        self.topic, self.partitions, self.rate = topic, partitions, rate_per_s
        self.acked = {}  # value -> (partition, offset)
        self.errors = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._main, name="producer", daemon=True)

    def _main(self):
        try:
            asyncio.run(self._run())
        except Exception as e:  # noqa: BLE001 - reported through errors
            self.errors.append(("producer", repr(e)))

    async def _run(self):
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=5, acks="all")
        await producer.start()
        try:
            n = 0
            pending = []
            step = 0.05
            per_step = max(1, int(self.rate * step))
            while not self.stop_flag.is_set():
                for _ in range(per_step):
                    value = str(n)
                    fut = await producer.send(self.topic, value=value.encode(), partition=n % self.partitions)
                    pending.append((value, fut))
                    n += 1
                await asyncio.sleep(step)
                still = []
                for value, fut in pending:
                    if fut.done():
                        self._settle(value, fut)
                    else:
                        still.append((value, fut))
                pending = still
            for value, fut in pending:
                try:
                    await fut
                except Exception:  # noqa: BLE001 - reported below
                    pass
                self._settle(value, fut)
        finally:
            await producer.stop()

    def _settle(self, value, fut):
        if fut.exception() is not None:
            self.errors.append((value, repr(fut.exception())))
        else:
            meta = fut.result()
            self.acked[value] = (meta.partition, meta.offset)

    def __enter__(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_flag.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "producer did not stop"

    def __exit__(self, *exc):
        if self.thread.is_alive():
            self.stop()


def consumed_by(members, topic):
    """(partition, offset) -> [(member, time, value)] over every member's records of `topic`."""
    out = collections.defaultdict(list)
    for m in members:
        for t, tp_topic, p, offset, value in m.records():
            if tp_topic == topic:
                out[(p, offset)].append((m, t, value))
    return out


def wait_consumed(members, topic, positions, timeout=60):
    """Waits until every (partition, offset) of `positions` was consumed by some member."""
    deadline = time.monotonic() + timeout
    while True:
        seen = consumed_by(members, topic)
        missing = [pos for pos in positions if pos not in seen]
        if not missing:
            return seen
        if time.monotonic() > deadline:
            by_p = collections.Counter(p for p, _ in missing)
            raise AssertionError(f"{len(missing)} records never consumed (per partition {dict(by_p)}), "
                                 f"first {sorted(missing)[:10]}\n" + "\n".join(m.describe() for m in members))
        time.sleep(0.2)


def first_record_after(member, tp, after):
    """Arrival time of the first record of `tp` that `member` consumed after time `after`."""
    for t, topic, p, _, _ in member.records():
        if t > after and (topic, p) == tp:
            return t
    return None


def describe_group(group_id):
    out = subprocess.run([DRIVER, "describe-group", "-b", BOOTSTRAP, "-g", group_id],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def aiokafka_committed_and_ends(group_id, topic, partitions):
    """What aiokafka reports: the group's committed offsets (OffsetFetch from a consumer with the group
    id that does not join: aiokafka's admin list_consumer_group_offsets cannot decode Tansu 0.6.0's
    answer) and the partitions' end offsets (ListOffsets latest)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group_id, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            committed = {tp.partition: await consumer.committed(tp) for tp in tps}
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
        return ({p: (-1 if o is None else o) for p, o in committed.items()},
                {tp.partition: o for tp, o in ends.items()})

    return asyncio.run(run())


def handovers(members, topic):
    """Checks that no member consumed a record of a partition it did not own (per its own events)
    and returns, per partition, the consumption runs [(member, first offset, last offset, first time)]."""
    runs = collections.defaultdict(list)
    for m in members:
        owned = set()
        for t, o in m.snapshot():
            ev = o.get("event")
            if ev in ("assigned", "revoked", "lost"):
                tps = {(tp[0], tp[1]) for tp in o["partitions"]}
                owned = owned | tps if ev == "assigned" else owned - tps
                continue
            if "offset" not in o or "event" in o or o["topic"] != topic:
                continue
            tp = (o["topic"], o["partition"])
            assert tp in owned, f"{m.name} consumed {tp}@{o['offset']} without owning it\n{m.describe()}"
    for m in members:
        current = {}
        for t, tp_topic, p, offset, _ in m.records():
            if tp_topic != topic:
                continue
            run = current.get(p)
            if run is not None and offset == run[2] + 1:
                run[2] = offset
            else:
                run = [m, offset, offset, t]
                current[p] = run
                runs[p].append(run)
    for p in runs:
        runs[p].sort(key=lambda r: r[3])
    return runs


def explain_duplicates(members, topic, seen, crashed=None):
    """Sorts the records consumed more than once by why, as far as at-least-once delivery allows:
    - "crashed": first consumed by the crashed member at or after its last commit of the partition
      (its uncommitted window: it died before committing them);
    - "in hand": the last record a member got of a partition before its revoked event for it: a record
      counts as processed only when the application asks for the next one, so the commit before a
      revocation leaves out the record the application is still handling.
    Returns (Counter of kinds, [unexplained])."""
    revokes = {}  # member -> [(t, partitions)]
    for m in members:
        revokes[m] = [(t, {(tp[0], tp[1]) for tp in o["partitions"]}) for t, o in m.events(("revoked", "lost"))]
    crashed_commits = crashed.committed() if crashed else {}
    kinds, unexplained = collections.Counter(), []
    for (p, offset), consumers in seen.items():
        if len(consumers) < 2:
            continue
        consumers = sorted(consumers, key=lambda c: c[1])
        m, t, _ = consumers[0]
        if m is crashed and offset >= crashed_commits.get((topic, p), 0):
            kinds["crashed"] += 1
            continue
        revoke_t = next((tr for tr, tps in revokes[m] if tr >= t and (topic, p) in tps), None)
        if revoke_t is not None:
            last_before = max(o for tt, tp_topic, q, o, _ in m.records() if tp_topic == topic and q == p and tt <= revoke_t)
            if offset == last_before and len(consumers) == 2:
                kinds["in hand"] += 1
                continue
        unexplained.append(((p, offset), [(c[0].name, round(c[1], 3)) for c in consumers]))
    return kinds, unexplained


def check_no_gaps(members, topic):
    """Each partition's consumption, run by run in time order, never skips an offset: a new owner
    starts at or before the offset after the previous run's last."""
    for p, rs in handovers(members, topic).items():
        for prev, nxt in zip(rs, rs[1:]):
            assert nxt[1] <= prev[2] + 1, f"partition {p}: {nxt[0].name} started at {nxt[1]} after {prev[0].name} stopped at {prev[2]}"


# ------------------------------------------------------------------------------------------------
# 1. Three KafkaWire members: stable split, a crash, a graceful leave, every record counted


def test_three_members_crash_and_leave_lose_nothing(group):
    topic = new_topic("grp3", partitions=6)
    gid = f"g3-{topic}"
    parts = all_partitions(topic, 6)
    t0 = time.monotonic()
    members = [group.kafkawire(f"kw{i}", gid, topic) for i in range(3)]
    last_event = wait_stable(members, parts)
    note("stable_3_kafkawire_members_s", round(last_event - t0, 2))

    with Producer(topic, 6) as producer:
        # every member consumes some of the new records before anything happens
        for m in members:
            m.wait(lambda m: len(m.records()) >= 20, 30, "20 records")

        # a crash: no LeaveGroup, the coordinator notices after the session timeout (the first member
        # started, usually the group's leader)
        victim, survivors = members[0], members[1:]
        lost_parts = victim.owned()
        victim.kill()
        t_kill = time.monotonic()
        wait_stable(survivors, parts, timeout=SESSION_MS / 1000 + 40)
        resumed = []
        for tp in lost_parts:
            new_owner = owner_of(survivors, tp)
            new_owner.wait(lambda m: first_record_after(m, tp, t_kill) is not None, 30, f"a record of {tp} after the crash")
            resumed.append(first_record_after(new_owner, tp, t_kill) - t_kill)
        note("pause_after_crash_first_moved_partition_s", round(min(resumed), 2))
        note("pause_after_crash_all_moved_partitions_s", round(max(resumed), 2))

        # a graceful leave: LeaveGroup, the partitions move at once
        leaver, last = survivors
        left_parts = leaver.owned()
        leaver.term()
        t_term = time.monotonic()
        last.wait(lambda m: parts <= m.owned(), 30, "every partition after the graceful leave")
        resumed = []
        for tp in left_parts:
            last.wait(lambda m: first_record_after(m, tp, t_term) is not None, 30, f"a record of {tp} after the leave")
            resumed.append(first_record_after(last, tp, t_term) - t_term)
        note("pause_after_graceful_leave_first_moved_partition_s", round(min(resumed), 2))
        note("pause_after_graceful_leave_all_moved_partitions_s", round(max(resumed), 2))
        assert leaver.wait_exit(20) == 0, leaver.describe()
        assert any(o.get("event") == "closed" for _, o in leaver.snapshot()), leaver.describe()
        time.sleep(1)
        producer.stop()

    assert not producer.errors, producer.errors[:5]
    assert len(producer.acked) > 500
    seen = wait_consumed(members, topic, set(producer.acked.values()), timeout=30)
    # every value consumed is the value produced at that position
    by_pos = {pos: v for v, pos in producer.acked.items()}
    for pos, consumers in seen.items():
        if pos in by_pos:
            assert all(value.decode() == by_pos[pos] for _, _, value in consumers), (pos, consumers)

    # duplicates: only records the crashed member consumed after its last commit (and the record a
    # member was handling when a rebalance took its partition, see explain_duplicates)
    kinds, unexplained = explain_duplicates(members, topic, seen, crashed=victim)
    note("test1_records_produced", len(producer.acked))
    note("test1_duplicates", dict(kinds))
    assert not unexplained, f"{len(unexplained)} duplicates outside the uncommitted window: {unexplained[:10]}\n{group.describe()}"
    check_no_gaps(members, topic)


# ------------------------------------------------------------------------------------------------
# 2. Mixed groups: a KafkaWire member with an aiokafka or a librdkafka member

# The shared assignor goes first in every list: Tansu takes the first member's first assignor as the
# group's and answers INCONSISTENT_GROUP_PROTOCOL to a member without it. aiokafka 0.14 has range,
# roundrobin and (eager) sticky; librdkafka range, roundrobin and cooperative-sticky; KafkaWire range,
# roundrobin and cooperative-sticky. `first` is the member that joins first: Tansu makes it the leader,
# which runs the assignor for both.
MIXED = [
    ("aiokafka", "range", "range,roundrobin", "kafkawire"),
    ("aiokafka", "roundrobin", "roundrobin,range", "peer"),
    ("confluent", "range", "range,cooperative-sticky", "peer"),
    ("confluent", "roundrobin", "roundrobin", "kafkawire"),
    ("confluent", "cooperative-sticky", "cooperative-sticky", "kafkawire"),
    ("confluent", "cooperative-sticky", "cooperative-sticky", "peer"),
]
MIXED_IDS = [f"{c}-{a.split(',')[0]}-{f}-first" for c, a, _, f in MIXED]


@pytest.mark.parametrize("case", MIXED_IDS)
def test_mixed_group_splits_partitions(concurrently, case):
    for key, args in zip(MIXED_IDS, MIXED):
        concurrently(f"mixed-{key}", mixed_scenario, *args)
    print(concurrently(f"mixed-{case}", mixed_scenario).result(timeout=300))


def mixed_scenario(group, client, peer_assignors, kw_assignors, first):
    topic = new_topic(f"mix-{client}", partitions=6)
    gid = f"mix-{topic}"
    parts = all_partitions(topic, 6)
    kafkawire_produce(topic, [{"value": f"pre-{i}".encode(), "partition": i % 6} for i in range(60)])

    def start_kw():
        return group.kafkawire("kw", gid, topic, assignors=kw_assignors)

    def start_peer():
        return group.peer(client, client, gid, topic, assignors=peer_assignors)

    a = start_kw() if first == "kafkawire" else start_peer()
    a.wait(lambda m: m.owned() == parts, 30, "all partitions")
    b = start_peer() if first == "kafkawire" else start_kw()
    kw, peer = (a, b) if first == "kafkawire" else (b, a)
    wait_stable([kw, peer], parts, timeout=60)
    # both consume: new records in every partition go to its owner
    metas = kafkawire_produce(topic, [{"value": f"post-{i}".encode(), "partition": i % 6} for i in range(60)])
    positions = {(m["partition"], m["offset"]) for m in metas}
    seen = wait_consumed([kw, peer], topic, positions, timeout=30)
    for pos in positions:
        owners = [m.name for m, _, _ in seen[pos]]
        assert owners == [owner_of([kw, peer], (topic, pos[0])).name], (pos, owners)
    for m in (kw, peer):
        mine = {p for _, p in m.owned()}
        assert mine and any(p in mine for p, _ in positions)
        assert any(p in mine for _, _, p, _, _ in m.records())
    # every record, the 60 before the peer joined too, consumed
    wait_consumed([kw, peer], topic, {(p, o) for p in range(6) for o in range(20)}, timeout=30)
    handovers([kw, peer], topic)
    return (f"[groups] {client} {peer_assignors.split(',')[0]} ({first} first): kafkawire {sorted(p for _, p in kw.owned())}, "
            f"{client} {sorted(p for _, p in peer.owned())}")


# ------------------------------------------------------------------------------------------------
# 3. Commit and restart: a new member resumes exactly after the committed offsets


RESTARTS = [("kafkawire", "kafkawire"), ("kafkawire", "confluent"), ("aiokafka", "kafkawire")]


@pytest.mark.parametrize("first,second", RESTARTS)
def test_restart_resumes_after_committed_offsets(concurrently, first, second):
    for a, b in RESTARTS:
        concurrently(f"restart-{a}-{b}", restart_scenario, a, b)
    print(concurrently(f"restart-{first}-{second}", restart_scenario).result(timeout=300))


def restart_scenario(group, first, second):
    topic = new_topic("resume", partitions=3)
    gid = f"resume-{topic}"
    metas = kafkawire_produce(topic, [{"value": f"v{i}".encode(), "partition": i % 3} for i in range(300)])
    everything = {(m["partition"], m["offset"]) for m in metas}

    def start(kind, name, **kw):
        if kind == "kafkawire":
            return group.kafkawire(name, gid, topic, assignors="range", **kw)
        return group.peer(kind, name, gid, topic, assignors="range", **kw)

    a = start(first, "first", count=120, commit="each")
    assert a.wait_exit(60) == 0, a.describe()
    got_a = {(p, o) for _, _, p, o, _ in a.records()}
    assert len(got_a) == 120 == len(a.records()), a.describe()
    # what is committed is one past the last record consumed, per partition
    expected = {p: max(o for q, o in got_a if q == p) + 1 for p in {q for q, _ in got_a}}
    committed, _ = aiokafka_committed_and_ends(gid, topic, 3)
    assert {p: o for p, o in committed.items() if o >= 0} == expected

    b = start(second, "second")
    wait_consumed([b], topic, everything - got_a, timeout=60)
    time.sleep(1)  # anything more would arrive now
    got_b = [(p, o) for _, _, p, o, _ in b.records()]
    assert len(got_b) == len(set(got_b)), "the second member consumed a record twice"
    assert not set(got_b) & got_a, f"repeated after restart: {sorted(set(got_b) & got_a)[:10]}"
    assert set(got_b) | got_a == everything
    for p in {q for q, _ in everything - got_a}:
        first_b = min(o for q, o in got_b if q == p)
        assert first_b == expected.get(p, 0), (p, first_b, expected)
    return f"[groups] restart {first} -> {second}: committed {expected}, {len(got_a)} + {len(got_b)} records"


# ------------------------------------------------------------------------------------------------
# 4. Cooperative-sticky under churn: only partitions that move are revoked, nothing is lost


def check_cooperative_revocations(members, topic):
    """Every revocation (other than a member's own close) gives partitions to another member: the
    next assignment of each revoked partition is on a different member. Returns how many were checked."""
    assigned = []  # (t, member, partitions)
    revocations = []
    for m in members:
        closing_from = m.signalled[1] if m.signalled else None
        for t, o in m.events():
            tps = {(tp[0], tp[1]) for tp in o["partitions"]}
            if o["event"] == "assigned":
                assigned.append((t, m, tps))
            elif o["event"] == "revoked" and (closing_from is None or t < closing_from):
                revocations.append((t, m, tps))
            elif o["event"] == "lost":
                raise AssertionError(f"{m.name} lost partitions {tps} in a graceful churn\n{m.describe()}")
    assigned.sort(key=lambda a: a[0])
    for t, m, tps in revocations:
        for tp in tps:
            nxt = next(((ta, ma) for ta, ma, ps in assigned if ta >= t and tp in ps), None)
            assert nxt is not None, f"{tp} revoked from {m.name} at {t} and never assigned again"
            assert nxt[1] is not m, f"{tp} revoked from {m.name} and given back to it: it did not move\n{m.describe()}"
    return len(revocations)


def test_cooperative_sticky_churn_moves_only_what_it_must(group):
    topic = new_topic("coop", partitions=6)
    gid = f"coop-{topic}"
    parts = all_partitions(topic, 6)
    coop = "cooperative-sticky"
    with Producer(topic, 6, rate_per_s=200) as producer:
        a = group.kafkawire("a", gid, topic, assignors=coop)
        a.wait(lambda m: m.owned() == parts, 30, "all partitions")
        b = group.kafkawire("b", gid, topic, assignors=coop)
        wait_stable([a, b], parts, quiet_s=3)
        c = group.peer("confluent", "c", gid, topic, assignors=coop)
        wait_stable([a, b, c], parts, quiet_s=3)
        b.term()
        assert b.wait_exit(20) == 0, b.describe()
        wait_stable([a, c], parts, quiet_s=3)
        d = group.kafkawire("d", gid, topic, assignors=coop)
        wait_stable([a, c, d], parts, quiet_s=3)
        a.term()
        assert a.wait_exit(20) == 0, a.describe()
        wait_stable([c, d], parts, quiet_s=3)
        producer.stop()
    members = [a, b, c, d]
    assert not producer.errors, producer.errors[:5]
    seen = wait_consumed(members, topic, set(producer.acked.values()), timeout=30)
    check_no_gaps(members, topic)
    checked = check_cooperative_revocations(members, topic)
    kinds, unexplained = explain_duplicates(members, topic, seen)
    note("test4_cooperative_records", len(producer.acked))
    note("test4_cooperative_duplicates", dict(kinds))
    assert not unexplained, f"{len(unexplained)} duplicates outside the uncommitted window: {unexplained[:10]}\n{group.describe()}"
    print(f"[groups] cooperative churn: {checked} revocations checked, each moved its partitions elsewhere")
    for m in members:
        print(f"[groups]   {m.describe().splitlines()[0][:300]}")


# ------------------------------------------------------------------------------------------------
# 5. Static membership: a restart within the session timeout keeps the partitions, no rebalance

# Tansu 0.6.0 makes a static member's JoinGroup wait session.timeout.ms/2 and its SyncGroup 3 s, and
# does not count either as contact with the member (only heartbeats are; a rejoining static member
# keeps its predecessor's last contact): a restarted static member whose join and sync outlast what is
# left of its predecessor's session is dropped at its first heartbeat (UNKNOWN_MEMBER_ID), rejoins
# under a new member id and the group rebalances, again and again (seen with a 6 s session: 3 s + 3 s
# of waiting); 14 s leaves about 2.5 s to spare (7 s + 3 s + process start + first heartbeat).
STATIC_SESSION_MS = 14000


def test_static_member_restart_keeps_partitions(group):
    topic = new_topic("static", partitions=6)
    gid = f"static-{topic}"
    parts = all_partitions(topic, 6)
    # the dynamic member first: it leads the group, the static one follows
    b = group.kafkawire("dynamic", gid, topic, assignors="range", session_ms=STATIC_SESSION_MS)
    b.wait(lambda m: m.owned() == parts, 30, "all partitions")
    a = group.kafkawire("static", gid, topic, assignors="range", instance_id="static-a", session_ms=STATIC_SESSION_MS)
    wait_stable([a, b], parts, timeout=60, quiet_s=3)
    a_parts, b_parts = a.owned(), b.owned()
    b_events = len(b.events())

    a.kill()
    t_kill = time.monotonic()
    a2 = group.kafkawire("static-restarted", gid, topic, assignors="range", instance_id="static-a",
                         session_ms=STATIC_SESSION_MS)
    a2.wait(lambda m: m.owned() == a_parts, STATIC_SESSION_MS / 1000 + 10, "its partitions back")
    note("static_restart_to_partitions_back_s", round(a2.events()[0][0] - t_kill, 2))
    # stays so: a rebalance would show on the other member within a heartbeat or two
    time.sleep(3)
    assert a2.owned() == a_parts and [e for _, e in a2.events()] == [{"event": "assigned", "partitions": sorted([list(tp) for tp in a_parts])}], a2.describe()
    assert len(b.events()) == b_events and b.owned() == b_parts, f"the other member saw a rebalance\n{b.describe()}"
    # both consume
    metas = kafkawire_produce(topic, [{"value": f"s{i}".encode(), "partition": i % 6} for i in range(60)])
    wait_consumed([a2, b], topic, {(m["partition"], m["offset"]) for m in metas}, timeout=20)
    handovers([a2, b], topic)


# ------------------------------------------------------------------------------------------------
# 6. `describe-group` (KafkaAdmin.describeGroup): committed offsets, high watermarks and lag


def test_describe_group_lag_matches_the_broker(group):
    topic = new_topic("lag", partitions=3)
    gid = f"lag-{topic}"
    # Tansu 0.6.0 answers ListOffsets(latest) with the last batch's base offset + 1, not the high
    # watermark: the last batch of each partition is a single record here, so that both agree and the
    # lag can be checked against the true end of each partition.
    kafkawire_produce(topic, [{"value": f"bulk{i}".encode(), "partition": i % 3} for i in range(150)])
    for p in range(3):
        kafkawire_produce(topic, [{"value": f"last{p}".encode(), "partition": p}])
    ends = {p: 51 for p in range(3)}

    a = group.kafkawire("first", gid, topic, assignors="range", count=70, commit="each")
    assert a.wait_exit(60) == 0, a.describe()
    consumed = collections.defaultdict(list)
    for _, _, p, o, _ in a.records():
        consumed[p].append(o)
    committed = {p: (max(consumed[p]) + 1 if consumed[p] else -1) for p in range(3)}

    d = describe_group(gid)
    aio_committed, aio_ends = aiokafka_committed_and_ends(gid, topic, 3)
    print(f"[groups] describe-group after the member stopped: {json.dumps(d)}")
    assert d["state"] == "Empty" and d["members"] == [], d
    rows = {r["partition"]: r for r in d["partitions"] if r["topic"] == topic}
    assert aio_ends == ends, f"the broker's ListOffsets: {aio_ends}"
    for p in range(3):
        row = rows.get(p, {"committed": -1, "highWatermark": None, "lag": None})
        assert row["committed"] == committed[p] == aio_committed[p], (p, row, committed, aio_committed)
        if committed[p] >= 0:
            assert row["highWatermark"] == ends[p], (p, row)
            assert row["lag"] == ends[p] - committed[p], (p, row)
        else:
            # a partition without a commit is listed only while someone owns it; its lag is all of it
            assert p not in rows or (row["highWatermark"] == ends[p] and row["lag"] == ends[p]), (p, row)
    assert d["totalLag"] == sum(r["lag"] for r in d["partitions"])
    note("describe_group_lag_after_stop", {str(p): rows[p]["lag"] for p in sorted(rows)})

    # a live member: Stable with one member; once it has read everything, lag 0; after it closes
    # (final commit, LeaveGroup) the group is Empty and the lag still 0
    b = group.kafkawire("live", gid, topic, assignors="range")
    b.wait(lambda m: len(m.owned()) == 3, 30, "all partitions")
    wait_consumed([b], topic, {(p, o) for p in range(3) for o in range(max(committed[p], 0), ends[p])}, timeout=30)
    deadline = time.monotonic() + 15
    while True:
        d = describe_group(gid)
        if (d["state"] == "Stable" and len(d["members"]) == 1 and d["totalLag"] == 0
                and {r["partition"] for r in d["partitions"]} == {0, 1, 2}) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert d["state"] == "Stable" and len(d["members"]) == 1, d
    assert {(r["partition"], r["committed"], r["highWatermark"], r["lag"]) for r in d["partitions"]} == \
        {(p, ends[p], ends[p], 0) for p in range(3)}, d
    b.term()
    assert b.wait_exit(20) == 0, b.describe()
    d = describe_group(gid)
    assert d["state"] == "Empty" and d["members"] == [] and d["totalLag"] == 0, d
    aio_committed, _ = aiokafka_committed_and_ends(gid, topic, 3)
    assert aio_committed == ends


# ------------------------------------------------------------------------------------------------
# Throughput: 3 KafkaWire members against 3 librdkafka members on the same pre-filled topic

THROUGHPUT_RECORDS = int(os.environ.get("KWIRE_GROUP_BENCH_RECORDS", "200000"))


def fill(topic, partitions, n, size=100):
    """Produces n records of `size` bytes, spread evenly, with confluent-kafka (fast and not under test)."""
    from confluent_kafka import Producer as CProducer

    p = CProducer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 20, "batch.num.messages": 5000,
                   "queue.buffering.max.messages": 1_000_000})
    pad = b"x" * size
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=(b"%d " % i + pad)[:size], partition=i % partitions)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10000 == 0:
            p.poll(0)
    assert p.flush(120) == 0


def group_throughput(group, kind, topic, partitions, total):
    gid = f"bench-{kind}-{topic}"
    t0 = time.time()
    if kind == "kafkawire":
        members = [group.kafkawire(f"{kind}{i}", gid, topic, assignors="range", quiet=True) for i in range(3)]
    else:
        members = [group.peer(kind, f"{kind}{i}", gid, topic, assignors="range", quiet=True) for i in range(3)]
    # done when the group's committed offsets reach the end of every partition (auto-commit, 200 ms)
    deadline = time.monotonic() + 120
    while True:
        d = describe_group(gid)
        rows = [r for r in d["partitions"] if r["topic"] == topic]
        if len(rows) == partitions and all(r["lag"] == 0 for r in rows) and sum(r["committed"] for r in rows) == total:
            break
        assert time.monotonic() < deadline, f"{kind}: not consumed in 120s: {d}\n" + "\n".join(m.describe() for m in members)
        time.sleep(0.25)
    for m in members:
        m.term()
    for m in members:
        assert m.wait_exit(30) == 0, m.describe()
    closed = [o for m in members for _, o in m.snapshot() if o.get("event") == "closed"]
    assert len(closed) == 3, [m.describe() for m in members]
    consumed = sum(c["records"] for c in closed)
    assert consumed >= total, (kind, consumed, total)
    first = min(c["firstRecordMs"] for c in closed if c["firstRecordMs"]) / 1000
    last = max(c["lastRecordMs"] for c in closed if c["lastRecordMs"]) / 1000
    return {"records": total, "consumed_incl_duplicates": consumed, "per_member": [c["records"] for c in closed],
            "msgs_per_s_from_start": round(total / (last - t0)), "msgs_per_s_from_first_record": round(total / (last - first)),
            "seconds_from_start": round(last - t0, 2), "seconds_from_first_record": round(last - first, 2)}


def test_group_consumption_throughput(group):
    topic = new_topic("bench", partitions=6)
    fill(topic, 6, THROUGHPUT_RECORDS)
    build = "release" if "/release/" in DRIVER else "debug"
    kw = group_throughput(group, "kafkawire", topic, 6, THROUGHPUT_RECORDS)
    rd = group_throughput(group, "confluent", topic, 6, THROUGHPUT_RECORDS)
    note(f"throughput_3_kafkawire_members_{build}_build", kw)
    note("throughput_3_librdkafka_members", rd)
