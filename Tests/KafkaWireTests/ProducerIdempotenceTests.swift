#if canImport(Glibc)
import Glibc
#endif
import KafkaFakeBroker
import Synchronization
import Testing
@testable import KafkaWire

/// A fake broker that keeps each partition's log and each producer's sequence state as Kafka's
/// ProducerStateManager does (a new epoch must start at sequence 0, the next batch must follow the
/// last one, a re-sent batch among the last five is a duplicate, an unknown producer must start at
/// 0), and fails chosen Produce requests on purpose.
final class SequencingBroker: Sendable {
    enum Fault: Sendable {
        case none
        /// Every partition of the request answers this code; nothing is written.
        case error(KafkaErrorCode)
        /// The connection closes before anything is written.
        case closeBeforeAppend
        /// Written, then the connection closes: the answer is lost.
        case closeAfterAppend
        /// The broker forgets every producer first (as retention does), then handles the request.
        case forgetProducers
        /// The broker restarted without its logs (as Tansu in memory does): it forgets every producer
        /// and the ids it gave out, refuses any id it did not give since (UNKNOWN_PRODUCER_ID at
        /// any sequence), and its next InitProducerId answers a new id.
        case restartWithoutState
        /// Waits, then acts as the inner fault (so later requests queue up behind this one).
        indirect case after(delayMs: Int, Fault)
    }

    /// One batch as received, with the answer it got.
    struct Received: Sendable, Equatable {
        var partition: Int32
        var producerId: Int64
        var epoch: Int16
        var baseSequence: Int32
        var values: [String]
        var answer: KafkaErrorCode
    }

    private let sim: Sim
    let broker: FakeBroker

    /// - Parameter producerId: what InitProducerId answers (nil: the API is not offered).
    init(partitions: Int32 = 2, producerId: (id: Int64, epoch: Int16, error: KafkaErrorCode)? = (4242, 3, .none),
         fault: @escaping @Sendable (Int) -> Fault = { _ in .none }) throws {
        let port = Mutex(0)
        var keys = Scripted.supported
        if producerId != nil { keys.append((.initProducerId, 0...4)) }
        let offered = keys
        let sim = Sim()
        self.sim = sim
        broker = try FakeBroker { req in
            switch req.apiKey {
            case ApiKey.apiVersions.rawValue:
                return .respond(body: Scripted.apiVersions(version: req.apiVersion, keys: offered), headerVersion: 0)
            case ApiKey.metadata.rawValue:
                return .respond(body: Scripted.metadata(port: port.withLock { $0 }, version: req.apiVersion, partitions: partitions),
                                headerVersion: req.apiVersion >= 9 ? 1 : 0)
            case ApiKey.initProducerId.rawValue:
                // A new id per request, as a broker gives a producer without a transactional id.
                let id = sim.state.withLock { s in
                    s.initRequests += 1
                    let id = producerId!.id + Int64(s.initRequests - 1)
                    s.issued.insert(id)
                    return id
                }
                var r = InitProducerIdResponse()
                r.errorCode = producerId!.error.rawValue
                r.producerId = id
                r.producerEpoch = producerId!.epoch
                return .respond(body: try! r.encoded(version: req.apiVersion), headerVersion: req.apiVersion >= 2 ? 1 : 0)
            case ApiKey.produce.rawValue:
                let n = sim.state.withLock { $0.produceRequests += 1; return $0.produceRequests }
                return sim.produce(req, fault: fault(n))
            default:
                return .close
            }
        }
        port.withLock { $0 = broker.port }
    }

    deinit { broker.stop() }

    var received: [Received] { sim.state.withLock { $0.received } }
    func log(_ partition: Int32) -> [String] { sim.state.withLock { $0.logs[partition] ?? [] } }
    var initRequests: Int { sim.state.withLock { $0.initRequests } }

    func config(_ configure: (inout ProducerConfig) -> Void = { _ in }) -> ProducerConfig {
        var c = ProducerConfig(client: Scripted.config(broker))
        c.client.retryBackoffMs = 5
        c.retryBackoffMaxMs = 20
        c.lingerMs = 0
        c.deliveryTimeoutMs = 20_000
        configure(&c)
        return c
    }
}

private final class Sim: Sendable {
    typealias Fault = SequencingBroker.Fault
    typealias Received = SequencingBroker.Received

    struct ProducerState {
        var epoch: Int16
        var lastSequence: Int32
        var recent: [(first: Int32, last: Int32, offset: Int64)]
    }

    struct State {
        var logs: [Int32: [String]] = [:]
        var producers: [Int32: [Int64: ProducerState]] = [:]
        var received: [Received] = []
        var produceRequests = 0
        var initRequests = 0
        /// Producer ids given out since the last restart (checked only after a restart).
        var issued: Set<Int64> = []
        var restarted = false
    }

    let state = Mutex(State())

    func produce(_ req: FakeBroker.Request, fault: Fault) -> FakeBroker.Action {
        let asked = try! ProduceRequest.decode(req.body, version: req.apiVersion)
        switch fault {
        case .closeBeforeAppend: return .close
        case let .after(ms, inner):
            usleep(UInt32(ms) * 1000)
            return produce(req, fault: inner)
        case .forgetProducers: state.withLock { $0.producers.removeAll() }
        case .restartWithoutState:
            state.withLock {
                $0.producers.removeAll()
                $0.issued.removeAll()
                $0.restarted = true
            }
        default: break
        }
        var response = ProduceResponse()
        for t in asked.topicData {
            var answers: [ProduceResponse.TopicProduceResponse.PartitionProduceResponse] = []
            for p in t.partitionData {
                let batches = try! RecordSet.decode(p.records ?? []).batches
                var code = KafkaErrorCode.none
                var offset: Int64 = -1
                for b in batches {
                    if case let .error(c) = fault {
                        code = c
                    } else {
                        (code, offset) = append(p.index, b)
                    }
                    state.withLock {
                        $0.received.append(Received(
                            partition: p.index, producerId: b.producerId, epoch: b.producerEpoch, baseSequence: b.baseSequence,
                            values: b.records.map { String(decoding: $0.value ?? [], as: UTF8.self) }, answer: code))
                    }
                }
                answers.append(.init(index: p.index, errorCode: code.rawValue, baseOffset: offset, logStartOffset: 0))
            }
            response.responses.append(.init(name: t.name, partitionResponses: answers))
        }
        let answer = FakeBroker.Action.respond(body: try! response.encoded(version: req.apiVersion), headerVersion: req.apiVersion >= 9 ? 1 : 0)
        if case .closeAfterAppend = fault { return .close }
        return answer
    }

    /// Kafka's checks for one batch, then the append.
    func append(_ partition: Int32, _ b: RecordBatch) -> (KafkaErrorCode, Int64) {
        state.withLock { s in
            let values = b.records.map { String(decoding: $0.value ?? [], as: UTF8.self) }
            let first = b.baseSequence
            let last = first + Int32(values.count) - 1
            if b.producerId >= 0 && s.restarted && !s.issued.contains(b.producerId) {
                return (.unknownProducerId, -1)
            }
            if b.producerId >= 0 {
                let known = s.producers[partition]?[b.producerId]
                if let p = known {
                    if b.producerEpoch < p.epoch { return (.invalidProducerEpoch, -1) }
                    if b.producerEpoch > p.epoch {
                        if first != 0 { return (.outOfOrderSequenceNumber, -1) }
                    } else {
                        if let dup = p.recent.first(where: { $0.first == first && $0.last == last }) { return (.duplicateSequenceNumber, dup.offset) }
                        if first != p.lastSequence + 1 { return (.outOfOrderSequenceNumber, -1) }
                    }
                } else if first != 0 {
                    return (.unknownProducerId, -1)
                }
            }
            let offset = Int64(s.logs[partition, default: []].count)
            s.logs[partition, default: []] += values
            if b.producerId >= 0 {
                var p = s.producers[partition]?[b.producerId] ?? ProducerState(epoch: b.producerEpoch, lastSequence: -1, recent: [])
                if p.epoch != b.producerEpoch { p.recent = [] }
                p.epoch = b.producerEpoch
                p.lastSequence = last
                p.recent.append((first, last, offset))
                if p.recent.count > 5 { p.recent.removeFirst() }
                s.producers[partition, default: [:]][b.producerId] = p
            }
            return (.none, offset)
        }
    }
}

/// Sends `count` records to one partition, each in its own batch (batch.size 1), all in flight
/// together, and returns their results in order.
private func sendSeparately(_ producer: KafkaProducer, partition: Int32 = 0, count: Int, prefix: String = "v") async -> [Result<RecordMetadata, KafkaError>] {
    await producer.send((0..<count).map { ProducerRecord(topic: "t", partition: partition, value: Array("\(prefix)\($0)".utf8)) })
}

@Suite(.timeLimit(.minutes(1))) struct ProducerIdempotenceTests {
    @Test func batchesCarryTheProducerIdEpochAndConsecutiveSequencesPerPartition() async throws {
        let fake = try SequencingBroker()
        let producer = KafkaProducer(config: fake.config { $0.batchSize = 1 })
        let results = await producer.send((0..<6).map {
            ProducerRecord(topic: "t", partition: Int32($0 % 2), value: Array("v\($0)".utf8))
        })
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        #expect(fake.initRequests == 1)
        for partition: Int32 in [0, 1] {
            let got = fake.received.filter { $0.partition == partition }
            #expect(got.map(\.producerId) == [4242, 4242, 4242])
            #expect(got.map(\.epoch) == [3, 3, 3])
            #expect(got.map(\.baseSequence) == [0, 1, 2])
            #expect(got.allSatisfy { $0.answer == .none })
        }
        #expect(fake.log(0) == ["v0", "v2", "v4"])
        #expect(fake.log(1) == ["v1", "v3", "v5"])
        // Several records in one batch: the next batch's sequence follows the record count.
        let more = await producer.send((0..<3).map { ProducerRecord(topic: "t", partition: 0, value: Array("w\($0)".utf8)) })
        #expect(more.allSatisfy { (try? $0.get()) != nil })
        let seqs = fake.received.filter { $0.partition == 0 }.map(\.baseSequence)
        #expect(seqs.count >= 4 && seqs[3] == 3)
        await producer.close()
    }

    /// The answer to a written batch is lost; the retry carries the same id, epoch and sequence,
    /// the broker recognises the duplicate, and the record is written once and reported delivered.
    @Test func aLostAnswerIsRetriedAsTheSameBatchAndTheDuplicateCountsAsDelivered() async throws {
        let fake = try SequencingBroker { n in n == 1 ? .closeAfterAppend : .none }
        let producer = KafkaProducer(config: fake.config())
        let meta = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array("once".utf8)))
        #expect(meta.partition == 0 && meta.offset == 0)
        #expect(fake.log(0) == ["once"])
        let got = fake.received
        #expect(got.count == 2)
        #expect(got.map(\.baseSequence) == [0, 0] && got.map(\.epoch) == [3, 3])
        #expect(got.map(\.answer) == [.none, .duplicateSequenceNumber])
        await producer.close()
    }

    /// The first of several in-flight batches fails with a retriable error; the later ones then
    /// fail with OUT_OF_ORDER_SEQUENCE_NUMBER at the broker. All are re-sent in their order with
    /// their original sequences (no epoch bump), and the log holds every record once, in order.
    @Test func aFailedBatchIsRetriedBeforeTheLaterOnesWhichKeepTheirSequences() async throws {
        let fake = try SequencingBroker { n in
            switch n {
            case 2: .after(delayMs: 150, .error(.notLeaderOrFollower))
            default: .none
            }
        }
        let producer = KafkaProducer(config: fake.config { $0.batchSize = 1 })
        // The broker knows the producer (a first batch acknowledged), so the batches behind the
        // failed one meet a sequence gap.
        _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array("v0".utf8)))
        let results = await producer.send((1..<6).map { ProducerRecord(topic: "t", partition: 0, value: Array("v\($0)".utf8)) })
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        #expect(fake.log(0) == (0..<6).map { "v\($0)" })
        let got = fake.received
        #expect(got.allSatisfy { $0.epoch == 3 })
        #expect(got[1].answer == .notLeaderOrFollower)
        #expect(got.contains { $0.answer == .outOfOrderSequenceNumber }, "later batches were in flight behind the failed one")
        // Every value went out with one sequence only, whatever the attempt.
        var sequenceOf: [String: Set<Int32>] = [:]
        for r in got { sequenceOf[r.values[0], default: []].insert(r.baseSequence) }
        #expect(sequenceOf == Dictionary(uniqueKeysWithValues: (0..<6).map { ("v\($0)", Set([Int32($0)])) }))
        // The accepted writes came in sequence order.
        #expect(got.filter { $0.answer == .none }.map(\.baseSequence) == [0, 1, 2, 3, 4, 5])
        await producer.close()
    }

    /// The broker reports a real gap (the batch is the next one it should have): the producer bumps
    /// its epoch and re-sends from sequence 0 under the new epoch.
    @Test func outOfOrderSequenceForTheNextBatchBumpsTheEpoch() async throws {
        let fake = try SequencingBroker { n in n == 2 ? .error(.outOfOrderSequenceNumber) : .none }
        let producer = KafkaProducer(config: fake.config())
        _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array("a".utf8)))
        _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array("b".utf8)))
        _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array("c".utf8)))
        #expect(fake.log(0) == ["a", "b", "c"])
        let got = fake.received.map { "\($0.values[0]) e\($0.epoch) s\($0.baseSequence) \($0.answer.name)" }
        #expect(got == ["a e3 s0 NONE", "b e3 s1 OUT_OF_ORDER_SEQUENCE_NUMBER", "b e4 s0 NONE", "c e4 s1 NONE"])
        await producer.close()
    }

    /// The broker forgot the producer (retention removed its state): UNKNOWN_PRODUCER_ID with a log
    /// start offset bumps the epoch and the batch goes again from sequence 0.
    @Test func unknownProducerIdBumpsTheEpochAndRestartsSequences() async throws {
        let fake = try SequencingBroker { n in n == 3 ? .forgetProducers : .none }
        let producer = KafkaProducer(config: fake.config())
        for v in ["a", "b", "c", "d"] {
            _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array(v.utf8)))
        }
        #expect(fake.log(0) == ["a", "b", "c", "d"])
        let got = fake.received.map { "\($0.values[0]) e\($0.epoch) s\($0.baseSequence) \($0.answer.name)" }
        #expect(got == ["a e3 s0 NONE", "b e3 s1 NONE", "c e3 s2 UNKNOWN_PRODUCER_ID", "c e4 s0 NONE", "d e4 s1 NONE"])
        await producer.close()
    }

    /// The broker restarted without its state and does not know the producer id at all: the epoch
    /// bump (sequence 0 under a new epoch) is refused too, so the producer asks for a new id and
    /// the partition's sequences restart under it; every record is in the log once, in order.
    @Test func aBrokerThatLostTheProducerIdGivesANewOne() async throws {
        let fake = try SequencingBroker { n in n == 3 ? .restartWithoutState : .none }
        let producer = KafkaProducer(config: fake.config())
        for v in ["a", "b", "c", "d"] {
            _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array(v.utf8)))
        }
        #expect(fake.log(0) == ["a", "b", "c", "d"])
        let got = fake.received.map { "\($0.values[0]) p\($0.producerId) e\($0.epoch) s\($0.baseSequence) \($0.answer.name)" }
        #expect(got == ["a p4242 e3 s0 NONE", "b p4242 e3 s1 NONE", "c p4242 e3 s2 UNKNOWN_PRODUCER_ID",
                        "c p4242 e4 s0 UNKNOWN_PRODUCER_ID", "c p4243 e3 s0 NONE", "d p4243 e3 s1 NONE"])
        #expect(fake.initRequests == 2)
        await producer.close()
    }

    /// DUPLICATE_SEQUENCE_NUMBER for a batch's first send: the broker holds somebody else's batch
    /// under our id and sequence (a broker that lost its state gave our id out again). Counting it
    /// delivered would lose the record: the producer takes a new id and the record is written.
    @Test func aDuplicateOfABatchNeverSentBeforeIsNotTakenAsDelivered() async throws {
        let fake = try SequencingBroker { n in n == 2 ? .error(.duplicateSequenceNumber) : .none }
        let producer = KafkaProducer(config: fake.config())
        for v in ["a", "b", "c"] {
            _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array(v.utf8)))
        }
        #expect(fake.log(0) == ["a", "b", "c"])
        let got = fake.received.map { "\($0.values[0]) p\($0.producerId) e\($0.epoch) s\($0.baseSequence) \($0.answer.name)" }
        #expect(got == ["a p4242 e3 s0 NONE", "b p4242 e3 s1 DUPLICATE_SEQUENCE_NUMBER", "b p4243 e3 s0 NONE", "c p4243 e3 s1 NONE"])
        await producer.close()
    }

    /// PRODUCER_FENCED without transactions means the broker gave our id to someone else (it lost
    /// its state): the producer takes a new id and restarts the partition's sequences.
    @Test func aFencedProducerTakesANewProducerId() async throws {
        let fake = try SequencingBroker { n in n == 2 ? .error(.producerFenced) : .none }
        let producer = KafkaProducer(config: fake.config())
        for v in ["a", "b", "c"] {
            _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array(v.utf8)))
        }
        #expect(fake.log(0) == ["a", "b", "c"])
        let got = fake.received.map { "\($0.values[0]) p\($0.producerId) e\($0.epoch) s\($0.baseSequence) \($0.answer.name)" }
        #expect(got == ["a p4242 e3 s0 NONE", "b p4242 e3 s1 PRODUCER_FENCED", "b p4243 e3 s0 NONE", "c p4243 e3 s1 NONE"])
        #expect(fake.initRequests == 2)
        await producer.close()
    }

    /// Several batches in flight; the connection drops right after the broker wrote one of them, so
    /// its answer and the requests behind it are lost. All go again in order with their sequences:
    /// the written one is recognised as a duplicate, and every record is in the log once, in order.
    @Test func aConnectionLostAfterAWriteInThePipelineLeavesEachRecordOnceInOrder() async throws {
        let fake = try SequencingBroker { n in n == 2 ? .after(delayMs: 100, .closeAfterAppend) : .none }
        let producer = KafkaProducer(config: fake.config { $0.batchSize = 1 })
        _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: Array("v0".utf8)))
        let results = await producer.send((1..<6).map { ProducerRecord(topic: "t", partition: 0, value: Array("v\($0)".utf8)) })
        let offsets = results.map { (try? $0.get())?.offset }
        #expect(offsets == [1, 2, 3, 4, 5])
        #expect(fake.log(0) == (0..<6).map { "v\($0)" })
        let got = fake.received
        #expect(got.contains { $0.values == ["v1"] && $0.answer == .duplicateSequenceNumber })
        #expect(got.allSatisfy { $0.epoch == 3 && $0.baseSequence == Int32($0.values[0].dropFirst())! })
        await producer.close()
    }

    /// A connection dropped before the broker read the request: the batch is re-sent unchanged.
    @Test func aDroppedConnectionResendsTheSameBatch() async throws {
        let fake = try SequencingBroker { n in n == 1 ? .closeBeforeAppend : .none }
        let producer = KafkaProducer(config: fake.config { $0.batchSize = 1 })
        let results = await sendSeparately(producer, count: 3)
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        #expect(fake.log(0) == ["v0", "v1", "v2"])
        #expect(fake.received.filter { $0.answer == .none }.map(\.baseSequence) == [0, 1, 2])
        #expect(fake.received.allSatisfy { $0.epoch == 3 && $0.producerId == 4242 })
        await producer.close()
    }

    /// Tansu 0.6 answers InitProducerId with producer id -1: idempotence on by default falls back
    /// to plain batches; asked for explicitly, every send fails with a clear error.
    @Test func withoutAProducerIdTheDefaultFallsBackAndExplicitIdempotenceFails() async throws {
        let fake = try SequencingBroker(producerId: (-1, -1, .none))
        let fallback = KafkaProducer(config: fake.config())
        let meta = try await fallback.send(ProducerRecord(topic: "t", partition: 0, value: Array("x".utf8)))
        #expect(meta.offset == 0)
        #expect(fake.received.map(\.producerId) == [-1])
        #expect(fake.received.map(\.baseSequence) == [-1])
        await fallback.close()

        let strict = KafkaProducer(config: fake.config { $0.enableIdempotence = true })
        do {
            _ = try await strict.send(ProducerRecord(topic: "t", partition: 0, value: Array("y".utf8)))
            Issue.record("expected a failure")
        } catch {
            guard case let .invalidConfiguration(why) = error else { Issue.record("got \(error)"); return }
            #expect(why.contains("enable.idempotence=true"))
        }
        #expect(fake.log(0) == ["x"])
        await strict.close()
    }

    /// A broker without InitProducerId at all: the same fallback.
    @Test func aBrokerWithoutInitProducerIdGetsPlainBatches() async throws {
        let fake = try SequencingBroker(producerId: nil)
        let producer = KafkaProducer(config: fake.config())
        _ = try await producer.send(ProducerRecord(topic: "t", partition: 1, value: Array("x".utf8)))
        #expect(fake.received.map(\.producerId) == [-1])
        await producer.close()
    }

    @Test func explicitIdempotenceWithTooManyInFlightIsAConfigurationError() async throws {
        let fake = try SequencingBroker()
        let producer = KafkaProducer(config: fake.config { $0.enableIdempotence = true; $0.maxInFlightPerConnection = 6 })
        do {
            _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: [1]))
            Issue.record("expected a failure")
        } catch {
            guard case let .invalidConfiguration(why) = error else { Issue.record("got \(error)"); return }
            #expect(why.contains("max.in.flight.requests.per.connection <= 5"))
        }
        #expect(fake.received.isEmpty)
        await producer.close()
    }

    /// A retriable error that lasts: retried with backoff until delivery.timeout.ms, then the
    /// record fails with that error; the attempts are bounded by `retries` when it is smaller.
    @Test func retriesStopAtTheRetriesCount() async throws {
        let fake = try SequencingBroker { _ in .error(.notEnoughReplicas) }
        let producer = KafkaProducer(config: fake.config { $0.retries = 2 })
        do {
            _ = try await producer.send(ProducerRecord(topic: "t", partition: 0, value: [1]))
            Issue.record("expected a failure")
        } catch {
            guard case .broker(.notEnoughReplicas, _) = error else { Issue.record("got \(error)"); return }
        }
        #expect(fake.received.count == 3)
        await producer.close()
    }

    /// Without idempotence the order across retries is kept too: the failed batch and the ones
    /// behind it go again in their order.
    @Test func orderIsKeptAcrossRetriesWithoutIdempotence() async throws {
        let fake = try SequencingBroker { n in n == 1 ? .after(delayMs: 100, .closeBeforeAppend) : .none }
        let producer = KafkaProducer(config: fake.config { $0.batchSize = 1; $0.enableIdempotence = false })
        let results = await sendSeparately(producer, count: 5)
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        #expect(fake.log(0) == (0..<5).map { "v\($0)" })
        #expect(fake.received.allSatisfy { $0.producerId == -1 })
        await producer.close()
    }
}
