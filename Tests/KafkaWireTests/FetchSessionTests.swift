import Foundation
import KafkaFakeBroker
import Synchronization
import Testing
@testable import KafkaWire

/// A broker that keeps KIP-227 fetch sessions the way Apache Kafka does (one session at a time is
/// enough here), over a topic "t" with three partitions whose logs the test appends to.
final class SessionBroker: Sendable {
    let log: SessionLog
    let broker: FakeBroker

    init() throws {
        let log = SessionLog()
        self.log = log
        let port = Mutex(0)
        let b = try FakeBroker { req in log.answer(req, port: port.withLock { $0 }) }
        port.withLock { $0 = b.port }
        broker = b
    }

    func withState<T>(_ body: (inout SessionLog.State) -> T) -> T { log.state.withLock { body(&$0) } }
    func append(_ partition: Int32, _ count: Int64) { log.state.withLock { $0.logEnd[partition, default: 0] += count } }
    func evictSession() { log.state.withLock { $0.sessionId = 0; $0.session = [:] } }
    var fetches: [(request: FetchRequest, error: KafkaErrorCode)] { log.state.withLock { $0.fetches } }
}

final class SessionLog: Sendable {
    struct State {
        var logEnd: [Int32: Int64] = [0: 0, 1: 0, 2: 0]
        var nextSessionId: Int32 = 77
        var sessionId: Int32 = 0
        var expectedEpoch: Int32 = 0
        /// The session's partitions and the fetch offset it holds for each.
        var session: [Int32: Int64] = [:]
        /// Whether the broker hands out sessions at all (false: answers session id 0, as Tansu).
        var grantsSessions = true
        /// Fetch requests and the top-level error each got.
        var fetches: [(request: FetchRequest, error: KafkaErrorCode)] = []
    }
    let state = Mutex(State())

    func answer(_ req: FakeBroker.Request, port: Int) -> FakeBroker.Action {
            switch ApiKey(rawValue: req.apiKey) {
            case .apiVersions?:
                return .respond(body: Scripted.apiVersions(version: req.apiVersion), headerVersion: 0)
            case .metadata?:
                return .respond(body: Scripted.metadata(port: port, version: req.apiVersion, partitions: 3),
                                headerVersion: req.apiVersion >= 9 ? 1 : 0)
            case .listOffsets?:
                let request = try! ListOffsetsRequest.decode(req.body, version: req.apiVersion)
                var r = ListOffsetsResponse()
                let ends = state.withLock { $0.logEnd }
                r.topics = request.topics.map { t in
                    .init(name: t.name, partitions: t.partitions.map {
                        .init(partitionIndex: $0.partitionIndex, errorCode: 0, timestamp: -1, offset: $0.timestamp == -2 ? 0 : ends[$0.partitionIndex] ?? 0)
                    })
                }
                return GroupBroker.respond(r, req)
            case .fetch?:
                return GroupBroker.respond(fetch(try! FetchRequest.decode(req.body, version: req.apiVersion)), req)
            default:
                return .close
            }
    }

    private func fetch(_ request: FetchRequest) -> FetchResponse {
        var r = FetchResponse()
        let (error, partitions, incremental) = state.withLock { s -> (KafkaErrorCode, [Int32: Int64], Bool) in
            let listed = Dictionary(request.topics.flatMap { t in t.partitions.map { ($0.partition, $0.fetchOffset) } }) { $1 }
            var outcome: (KafkaErrorCode, [Int32: Int64], Bool)
            switch (request.sessionId, request.sessionEpoch) {
            case (0, -1):
                outcome = (.none, listed, false)
            case (let id, -1):
                // Closes the session; a sessionless fetch of what is listed (nothing, when closing).
                if id == s.sessionId { s.sessionId = 0; s.session = [:] }
                outcome = (.none, listed, false)
            case (_, 0):
                if s.grantsSessions {
                    s.sessionId = s.nextSessionId
                    s.nextSessionId += 1
                    s.expectedEpoch = 1
                    s.session = listed
                    r.sessionId = s.sessionId
                } else {
                    s.sessionId = 0
                }
                outcome = (.none, listed, false)
            case (let id, let epoch):
                if id != s.sessionId || s.sessionId == 0 {
                    outcome = (.fetchSessionIdNotFound, [:], true)
                } else if epoch != s.expectedEpoch {
                    outcome = (.invalidFetchSessionEpoch, [:], true)
                } else {
                    s.expectedEpoch += 1
                    for (p, o) in listed { s.session[p] = o }
                    for t in request.forgottenTopicsData { for p in t.partitions { s.session[p] = nil } }
                    r.sessionId = id
                    outcome = (.none, s.session, true)
                }
            }
            s.fetches.append((request, outcome.0))
            return outcome
        }
        r.errorCode = error.rawValue
        guard error == .none else { return r }
        let ends = state.withLock { $0.logEnd }
        var data: [FetchResponse.FetchableTopicResponse.PartitionData] = []
        for (p, offset) in partitions.sorted(by: { $0.key < $1.key }) {
            let end = ends[p] ?? 0
            // An incremental answer leaves out partitions with nothing new.
            if incremental && offset >= end { continue }
            var d = FetchResponse.FetchableTopicResponse.PartitionData()
            d.partitionIndex = p
            d.highWatermark = end
            d.lastStableOffset = end
            d.logStartOffset = 0
            if offset < end {
                let records = (offset..<end).map { Record(timestamp: 1_700_000_000_000, key: nil, value: Array("p\(p)-\($0)".utf8)) }
                d.records = try! RecordBatch.encode(records: records, baseOffset: offset)
            }
            data.append(d)
        }
        if !data.isEmpty { r.responses = [.init(topic: "t", partitions: data)] }
        // Nothing new: hold the answer a little, as a broker waits up to fetch.max.wait.ms.
        if data.allSatisfy({ $0.records == nil }) { usleep(20_000) }
        return r
    }
}

/// What a Fetch request lists: partition -> fetch offset.
private func listed(_ r: FetchRequest) -> [Int32: Int64] {
    Dictionary(r.topics.flatMap { t in t.partitions.map { ($0.partition, $0.fetchOffset) } }) { $1 }
}

private func forgotten(_ r: FetchRequest) -> [Int32] { r.forgottenTopicsData.flatMap(\.partitions) }

extension ConsumerRecord {
    /// The value as text (tests write text values).
    var text: String { String(decoding: value ?? [], as: UTF8.self) }
}

@Suite(.timeLimit(.minutes(1))) struct FetchSessionTests {
    static func consumer(_ b: SessionBroker, sessions: Bool = true) -> KafkaConsumer {
        var c = ConsumerConfig(client: Scripted.config(b.broker))
        c.fetchMaxWaitMs = 20
        c.client.retryBackoffMs = 10
        c.fetchSessions = sessions
        return KafkaConsumer(config: c)
    }

    static func read(_ it: inout KafkaConsumer.Records.AsyncIterator, _ n: Int) async throws -> [String] {
        var out: [String] = []
        while out.count < n, let r = try await it.next() { out.append(r.text) }
        return out
    }

    @Test func incrementalFetchesListOnlyWhatChanged() async throws {
        let b = try SessionBroker()
        defer { b.broker.stop() }
        b.append(0, 3)
        b.append(2, 2)
        let consumer = Self.consumer(b)
        try await consumer.assign(topic: "t", from: .earliest)
        var it = consumer.records.makeAsyncIterator()
        let first = try await Self.read(&it, 5)
        #expect(first.sorted() == ["p0-0", "p0-1", "p0-2", "p2-0", "p2-1"])

        // Idle for a while: incremental requests that list nothing.
        #expect(await GroupTesting.eventually { b.fetches.count >= 4 })
        // New data on partition 1 only.
        b.append(1, 2)
        #expect(try await Self.read(&it, 2) == ["p1-0", "p1-1"])
        #expect(await GroupTesting.eventually { b.fetches.contains { listed($0.request) == [1: 2] } })
        // Partition 2 leaves: forgotten once, never listed again.
        consumer.unassign([TopicPartition(topic: "t", partition: 2)])
        #expect(await GroupTesting.eventually { b.fetches.contains { forgotten($0.request) == [2] } })
        b.append(0, 1)
        #expect(try await Self.read(&it, 1) == ["p0-3"])
        await consumer.close()

        let log = b.fetches
        // 1: a full request opens the session.
        #expect(log[0].request.sessionId == 0 && log[0].request.sessionEpoch == 0)
        #expect(listed(log[0].request) == [0: 0, 1: 0, 2: 0])
        // 2: only the partitions that moved, at their new offsets, with epoch 1.
        #expect(log[1].request.sessionId == 77 && log[1].request.sessionEpoch == 1)
        #expect(listed(log[1].request) == [0: 3, 2: 2])
        // Every request of the session carries the next epoch; each lists only changed partitions.
        let session = log.dropFirst().filter { $0.request.sessionEpoch != -1 }
        for (i, f) in session.enumerated() {
            #expect(f.request.sessionId == 77)
            #expect(f.request.sessionEpoch == Int32(i + 1))
            #expect(f.error == .none)
        }
        #expect(session.contains { listed($0.request).isEmpty && forgotten($0.request).isEmpty })
        let forgetting = session.filter { !forgotten($0.request).isEmpty }
        #expect(forgetting.count == 1)
        let afterForget = session.drop { forgotten($0.request).isEmpty }.dropFirst()
        #expect(afterForget.allSatisfy { listed($0.request)[2] == nil })
        // Every listing of partition 1 after its first is at offset 2 (its only move).
        #expect(session.compactMap { listed($0.request)[1] } == [2])
        // close(): the final epoch ends the session, listing nothing.
        let last = try #require(log.last?.request)
        #expect(last.sessionId == 77 && last.sessionEpoch == -1 && last.topics.isEmpty)
        #expect(b.withState { $0.sessionId } == 0)
    }

    @Test func aLostSessionStartsAgainWithAFullFetch() async throws {
        let b = try SessionBroker()
        defer { b.broker.stop() }
        b.append(0, 2)
        b.append(1, 1)
        let consumer = Self.consumer(b)
        try await consumer.assign(topic: "t", partitions: [0, 1], from: .earliest)
        var it = consumer.records.makeAsyncIterator()
        #expect(try await Self.read(&it, 3).sorted() == ["p0-0", "p0-1", "p1-0"])
        #expect(await GroupTesting.eventually { b.fetches.count >= 3 })
        b.evictSession()
        #expect(await GroupTesting.eventually { b.fetches.contains { $0.error == .fetchSessionIdNotFound } })
        b.append(1, 1)
        #expect(try await Self.read(&it, 1) == ["p1-1"])
        #expect(await GroupTesting.eventually { b.fetches.contains { $0.request.sessionId == 78 && $0.request.sessionEpoch == 1 } })
        await consumer.close()

        let log = b.fetches
        let failed = try #require(log.firstIndex { $0.error == .fetchSessionIdNotFound })
        #expect(log[failed].request.sessionId == 77 && log[failed].request.sessionEpoch > 0)
        // The next request opens a new session, full, at the positions reached: nothing re-read.
        let retry = log[failed + 1].request
        #expect(retry.sessionId == 0 && retry.sessionEpoch == 0)
        #expect(listed(retry) == [0: 2, 1: 1])
        #expect(log[failed + 2].request.sessionId == 78 && log[failed + 2].request.sessionEpoch == 1)
        #expect(log.filter { $0.error != .none }.count == 1)
    }

    @Test func aWrongEpochClosesAndReopensTheSession() async throws {
        let b = try SessionBroker()
        defer { b.broker.stop() }
        b.append(0, 1)
        let consumer = Self.consumer(b)
        try await consumer.assign(topic: "t", partitions: [0], from: .earliest)
        var it = consumer.records.makeAsyncIterator()
        #expect(try await Self.read(&it, 1) == ["p0-0"])
        #expect(await GroupTesting.eventually { b.fetches.count >= 3 })
        b.withState { $0.expectedEpoch += 5 }
        #expect(await GroupTesting.eventually { b.fetches.contains { $0.error == .invalidFetchSessionEpoch } })
        b.append(0, 1)
        #expect(try await Self.read(&it, 1) == ["p0-1"])
        #expect(await GroupTesting.eventually { b.fetches.contains { $0.request.sessionId == 78 && $0.request.sessionEpoch == 1 } })
        await consumer.close()
        let log = b.fetches
        let failed = try #require(log.firstIndex { $0.error == .invalidFetchSessionEpoch })
        // The session id is still valid: epoch 0 with it closes it and opens a new one.
        #expect(log[failed + 1].request.sessionId == 77 && log[failed + 1].request.sessionEpoch == 0)
        #expect(listed(log[failed + 1].request) == [0: 1])
        #expect(log[failed + 2].request.sessionId == 78 && log[failed + 2].request.sessionEpoch == 1)
    }

    @Test(arguments: [true, false])
    func withoutSessionsEveryFetchIsFull(brokerGrants: Bool) async throws {
        // Either the client has sessions off, or the broker answers session id 0 (as Tansu does).
        let b = try SessionBroker()
        defer { b.broker.stop() }
        b.withState { $0.grantsSessions = brokerGrants }
        b.append(0, 2)
        let consumer = Self.consumer(b, sessions: !brokerGrants)
        try await consumer.assign(topic: "t", from: .earliest)
        var it = consumer.records.makeAsyncIterator()
        #expect(try await Self.read(&it, 2) == ["p0-0", "p0-1"])
        #expect(await GroupTesting.eventually { b.fetches.count >= 3 })
        b.append(2, 1)
        #expect(try await Self.read(&it, 1) == ["p2-0"])
        await consumer.close()
        for f in b.fetches {
            #expect(f.request.sessionId == 0)
            #expect(f.request.sessionEpoch == (brokerGrants ? -1 : 0))
            #expect(Set(listed(f.request).keys) == [0, 1, 2])
            #expect(f.error == .none)
        }
    }

    /// A group member fetches through the same sessions: full first, then incremental, closed
    /// when the member closes.
    @Test func aGroupMemberFetchesInASession() async throws {
        let b = try GroupBroker(topics: ["t": 3])
        defer { b.stop() }
        let log = SessionLog()
        b.with { $0.custom = { req in req.apiKey == ApiKey.fetch.rawValue ? log.answer(req, port: 0) : nil } }
        log.state.withLock { $0.logEnd = [0: 2, 1: 1, 2: 0] }
        let consumer = KafkaGroupConsumer(config: GroupTesting.config(b), topics: ["t"])
        var got: [String] = []
        for try await r in consumer.records {
            got.append(r.text)
            if got.count == 3 { break }
        }
        #expect(got.sorted() == ["p0-0", "p0-1", "p1-0"])
        #expect(await GroupTesting.eventually { log.state.withLock { $0.fetches.count } >= 3 })
        await consumer.close()
        let fetches = log.state.withLock { $0.fetches }
        #expect(fetches[0].request.sessionId == 0 && fetches[0].request.sessionEpoch == 0)
        #expect(fetches[1].request.sessionId == 77 && fetches[1].request.sessionEpoch == 1)
        #expect(listed(fetches[1].request) == [0: 2, 1: 1])
        #expect(fetches.allSatisfy { $0.error == .none })
        #expect(fetches.last?.request.sessionEpoch == -1)
    }

    @Test func planEpochsAndSessionlessPlans() {
        var s = FetchSession(enabled: true)
        let tp = TopicPartition(topic: "a", partition: 0)
        let wanted = [tp: FetchSession.PartitionData(fetchOffset: 5, maxBytes: 10)]
        var plan = s.plan(wanted)
        #expect(plan.isFull && plan.sessionId == 0 && plan.sessionEpoch == 0)
        s.accepted(plan, sessionId: 9)
        for _ in 0..<3 {
            plan = s.plan(wanted)
            #expect(!plan.isFull && plan.send.isEmpty)
            s.accepted(plan, sessionId: 9)
        }
        #expect(s.epoch == 4)
        // An incremental answer naming another session: start over with a full request.
        s.accepted(s.plan(wanted), sessionId: 10)
        #expect(s.plan(wanted).isFull && s.plan(wanted).sessionId == 9)
        // Changed max bytes alone makes a partition listed.
        s.accepted(s.plan(wanted), sessionId: 9)
        let changed = s.plan([tp: .init(fetchOffset: 5, maxBytes: 11)])
        #expect(changed.send.map(\.0) == [tp])
        #expect(s.closeRequest()?.sessionEpoch == -1)
        #expect(FetchSession(enabled: false).plan(wanted).sessionEpoch == -1)
        #expect(FetchSession(enabled: false).closeRequest() == nil)
    }
}
