import KafkaFakeBroker
import Logging
import Synchronization
import Testing
@testable import KafkaWire

/// Answers a fake broker gives to make a client consider it a healthy broker.
enum Scripted {
    static let supported: [(ApiKey, ClosedRange<Int16>)] = [
        (.produce, 3...9), (.fetch, 4...12), (.listOffsets, 1...7), (.metadata, 1...12),
        (.apiVersions, 0...3), (.createTopics, 0...7), (.describeConfigs, 0...4),
    ]

    static func apiVersions(version: Int16 = 3, errorCode: Int16 = 0, keys: [(ApiKey, ClosedRange<Int16>)] = supported) -> [UInt8] {
        var r = ApiVersionsResponse()
        r.errorCode = errorCode
        r.apiKeys = keys.map { .init(apiKey: $0.0.rawValue, minVersion: $0.1.lowerBound, maxVersion: $0.1.upperBound) }
        return try! r.encoded(version: version)
    }

    static func metadata(port: Int, version: Int16, topic: String = "t", partitions: Int32 = 1) -> [UInt8] {
        var r = MetadataResponse()
        r.brokers = [.init(nodeId: 1, host: "127.0.0.1", port: Int32(port))]
        r.controllerId = 1
        r.clusterId = "fake"
        r.topics = [.init(errorCode: 0, name: topic, partitions: (0..<partitions).map {
            .init(errorCode: 0, partitionIndex: $0, leaderId: 1, replicaNodes: [1], isrNodes: [1])
        })]
        return try! r.encoded(version: version)
    }

    /// A fake broker that answers ApiVersions and Metadata properly and hands everything else to `other`.
    static func broker(_ other: @escaping @Sendable (FakeBroker.Request, Int) -> FakeBroker.Action) throws -> FakeBroker {
        let port = Mutex(0)
        let broker = try FakeBroker { req in
            switch req.apiKey {
            case ApiKey.apiVersions.rawValue:
                return .respond(body: apiVersions(version: req.apiVersion), headerVersion: 0)
            case ApiKey.metadata.rawValue:
                return .respond(body: metadata(port: port.withLock { $0 }, version: req.apiVersion), headerVersion: req.apiVersion >= 9 ? 1 : 0)
            default:
                return other(req, port.withLock { $0 })
            }
        }
        port.withLock { $0 = broker.port }
        return broker
    }

    static func config(_ broker: FakeBroker, requestTimeoutMs: Int = 2_000) -> ClientConfig {
        var c = ClientConfig(bootstrapServers: "127.0.0.1:\(broker.port)")
        c.requestTimeoutMs = requestTimeoutMs
        c.connectTimeoutMs = 2_000
        c.reconnectBackoffMs = 10
        c.reconnectBackoffMaxMs = 50
        return c
    }

    static func frame(_ bytes: [UInt8]) -> [UInt8] {
        var w = WireWriter()
        w.writeInt32(Int32(bytes.count))
        w.writeRaw(bytes)
        return w.bytes
    }
}

@Suite(.timeLimit(.minutes(1))) struct BadBrokerTests {
    func metadataFailure(_ action: @escaping @Sendable (FakeBroker.Request) -> FakeBroker.Action) async throws -> (KafkaError, FakeBroker) {
        let broker = try FakeBroker { req in
            if req.apiKey == ApiKey.apiVersions.rawValue {
                return .respond(body: Scripted.apiVersions(version: req.apiVersion), headerVersion: 0)
            }
            return action(req)
        }
        let cluster = KafkaCluster(config: Scripted.config(broker, requestTimeoutMs: 500))
        defer { broker.stop() }
        do throws(KafkaError) {
            let c = try await cluster.anyConnection()
            _ = try await c.send(MetadataRequest())
            Issue.record("expected a failure")
            throw KafkaError.closed
        } catch {
            await cluster.close()
            return (error, broker)
        }
    }

    @Test func hugeLengthPrefixIsAProtocolViolation() async throws {
        let (error, _) = try await metadataFailure { _ in .raw([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1]) }
        guard case .network(.protocolViolation) = error else { Issue.record("got \(error)"); return }
    }

    @Test func negativeLengthPrefixIsAProtocolViolation() async throws {
        let (error, _) = try await metadataFailure { _ in .raw([0xff, 0xff, 0xff, 0xfe]) }
        guard case .network(.protocolViolation) = error else { Issue.record("got \(error)"); return }
    }

    @Test func wrongCorrelationIdIsAProtocolViolation() async throws {
        let (error, _) = try await metadataFailure { req in
            .raw(Scripted.frame([0, 0, 0x7f, 0x7f] + Scripted.metadata(port: 1, version: req.apiVersion).prefix(0)))
        }
        guard case .network(.protocolViolation(_, let why)) = error else { Issue.record("got \(error)"); return }
        #expect(why.contains("correlation"))
    }

    @Test func truncatedFrameThenCloseIsConnectionLost() async throws {
        let (error, _) = try await metadataFailure { _ in .sequence([.raw([0, 0, 0, 100, 0, 0]), .close]) }
        guard case .network(.connectionLost) = error else { Issue.record("got \(error)"); return }
    }

    @Test func garbageBodyIsMalformedResponse() async throws {
        let (error, _) = try await metadataFailure { req in
            var w = WireWriter()
            w.writeInt32(req.correlationId)
            if req.apiVersion >= 9 { w.writeUnsignedVarint(0) }
            w.writeRaw([0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff, 0x01])
            return .raw(Scripted.frame(w.bytes))
        }
        guard case .malformedResponse = error else { Issue.record("got \(error)"); return }
    }

    @Test func silenceIsARequestTimeout() async throws {
        let (error, _) = try await metadataFailure { _ in .silence }
        guard case .network(.requestTimedOut) = error else { Issue.record("got \(error)"); return }
    }

    @Test func closeIsConnectionLost() async throws {
        let (error, _) = try await metadataFailure { _ in .close }
        guard case .network(.connectionLost) = error else { Issue.record("got \(error)"); return }
    }

    @Test func garbageInReplyToEveryRequestTypeNeverCrashes() async throws {
        // Random bytes with the right correlation id, for each request kind the client sends.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let junk = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let (error, _) = try await metadataFailure { req in
                var w = WireWriter()
                w.writeInt32(req.correlationId)
                w.writeRaw(junk)
                return .raw(Scripted.frame(w.bytes))
            }
            switch error {
            case .malformedResponse, .network: break
            default: Issue.record("unexpected \(error)")
            }
        }
    }

    @Test func aMalformedAnswerClosesTheConnectionAndTheNextCallReconnects() async throws {
        let calls = Mutex(0)
        let broker = try Scripted.broker { req, _ in
            .respond(body: [1, 2, 3], headerVersion: 0)
        }
        defer { broker.stop() }
        let cluster = KafkaCluster(config: Scripted.config(broker))
        let first = try await cluster.anyConnection()
        do {
            _ = try await first.send(DescribeConfigsRequest())
            Issue.record("garbage decoded")
        } catch {
            guard case .malformedResponse = error else { Issue.record("got \(error)"); return }
        }
        #expect(first.isClosed)
        await cluster.connectionFailed(first)
        let second = try await cluster.anyConnection()
        #expect(second !== first)
        _ = try await second.send(MetadataRequest())
        #expect(broker.connectionCount == 2)
        _ = calls
        await cluster.close()
    }

    @Test func unknownErrorCodeIsRepresentable() async throws {
        let broker = try Scripted.broker { req, _ in
            var r = CreateTopicsResponse()
            r.topics = [.init(name: "x", errorCode: 31999)]
            return .respond(body: try! r.encoded(version: req.apiVersion), headerVersion: req.apiVersion >= 5 ? 1 : 0)
        }
        defer { broker.stop() }
        let admin = KafkaAdmin(config: Scripted.config(broker))
        do {
            try await admin.createTopics([.init(name: "x")])
            Issue.record("expected error")
        } catch {
            guard case let .broker(code, _) = error else { Issue.record("got \(error)"); return }
            #expect(code.rawValue == 31999)
            #expect(!code.isRetriable)
        }
        await admin.close()
    }

    @Test func unknownTaggedFieldsInAnAnswerAreSkipped() async throws {
        let broker = try FakeBroker { req in
            var r = ApiVersionsResponse()
            r.apiKeys = Scripted.supported.map { .init(apiKey: $0.0.rawValue, minVersion: $0.1.lowerBound, maxVersion: $0.1.upperBound) }
            r.unknownTaggedFields = [TaggedField(tag: 77, data: [1, 2, 3, 4])]
            return .respond(body: try! r.encoded(version: req.apiVersion), headerVersion: 0)
        }
        defer { broker.stop() }
        let cluster = KafkaCluster(config: Scripted.config(broker))
        let c = try await cluster.anyConnection()
        #expect(try c.versions.version(for: ProduceRequest.self) == 9)
        await cluster.close()
    }
}

@Suite(.timeLimit(.minutes(1))) struct NegotiationTests {
    @Test func modernBrokerNegotiatesV3() async throws {
        let broker = try Scripted.broker { _, _ in .close }
        defer { broker.stop() }
        let cluster = KafkaCluster(config: Scripted.config(broker))
        let c = try await cluster.anyConnection()
        #expect(try c.versions.version(for: FetchRequest.self) == 12)
        let first = broker.requests[0]
        #expect(first.apiKey == ApiKey.apiVersions.rawValue && first.apiVersion == 3)
        // v3 carries the client's software name and version.
        let body = try ApiVersionsRequest.decode(first.body, version: 3)
        #expect(body.clientSoftwareName == "kafkawire")
        await cluster.close()
    }

    /// A broker older than 2.4 does not know ApiVersions v3: it answers UNSUPPORTED_VERSION in the v0
    /// layout with its own range, and the client asks again at the version it offers.
    @Test func oldBrokerFallback() async throws {
        let broker = try FakeBroker { req in
            if req.apiVersion > 2 {
                return .respond(body: Scripted.apiVersions(version: 0, errorCode: 35, keys: [(.apiVersions, 0...2)]), headerVersion: 0)
            }
            return .respond(body: Scripted.apiVersions(version: req.apiVersion), headerVersion: 0)
        }
        defer { broker.stop() }
        let cluster = KafkaCluster(config: Scripted.config(broker))
        let c = try await cluster.anyConnection()
        #expect(broker.requests.map(\.apiVersion) == [3, 2])
        #expect(try c.versions.version(for: ProduceRequest.self) == 9)
        await cluster.close()
    }

    @Test func pipelinedRequestsAreMatchedInOrder() async throws {
        let broker = try Scripted.broker { _, _ in .close }
        defer { broker.stop() }
        let cluster = KafkaCluster(config: Scripted.config(broker))
        let c = try await cluster.anyConnection()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask { _ = try await c.send(MetadataRequest()) }
            }
            try await group.waitForAll()
        }
        #expect(broker.requests.count == 201)
        await cluster.close()
    }

    @Test func connectionRefusedIsATypedError() async throws {
        // Bind and close a port so nothing listens there.
        let broker = try FakeBroker { _ in .close }
        let port = broker.port
        broker.stop()
        var config = ClientConfig(bootstrapServers: "127.0.0.1:\(port)")
        config.connectTimeoutMs = 1000
        let cluster = KafkaCluster(config: config)
        do {
            _ = try await cluster.anyConnection()
            Issue.record("connected to nothing")
        } catch {
            guard case .network(.connectFailed) = error else { Issue.record("got \(error)"); return }
        }
        await cluster.close()
    }
}

@Suite(.timeLimit(.minutes(1))) struct OffsetLookupTests {
    /// ListOffsets by timestamp, as Apache Kafka answers it (the local broker does not implement it).
    @Test func startFromTimestampUsesTheBrokersAnswer() async throws {
        let broker = try Scripted.broker { req, _ in
            guard req.apiKey == ApiKey.listOffsets.rawValue else { return .close }
            let asked = try! ListOffsetsRequest.decode(req.body, version: req.apiVersion)
            let ts = asked.topics[0].partitions[0].timestamp
            var r = ListOffsetsResponse()
            // 1234 for the timestamp, 42 for latest, -1 (none) for a time after the last record.
            let offset: Int64 = ts == 1_600_000_000_000 ? 1234 : ts == -1 ? 42 : -1
            r.topics = [.init(name: asked.topics[0].name, partitions: [.init(partitionIndex: 0, errorCode: 0, timestamp: ts, offset: offset)])]
            return .respond(body: try! r.encoded(version: req.apiVersion), headerVersion: req.apiVersion >= 6 ? 1 : 0)
        }
        defer { broker.stop() }
        var config = ConsumerConfig(client: Scripted.config(broker))
        config.fetchMaxWaitMs = 10
        let consumer = KafkaConsumer(config: config)
        try await consumer.assign(topic: "t", from: .timestamp(1_600_000_000_000))
        #expect(consumer.positions()["t"]?[0] == 1234)
        await consumer.close()
        // No record at or after the time: start at the end, as the Java client does.
        let later = KafkaConsumer(config: config)
        try await later.assign(topic: "t", from: .timestamp(1_900_000_000_000))
        #expect(later.positions()["t"]?[0] == 42)
        await later.close()
        let timestamps = broker.requests.filter { $0.apiKey == ApiKey.listOffsets.rawValue }.map {
            try! ListOffsetsRequest.decode($0.body, version: $0.apiVersion).topics[0].partitions[0].timestamp
        }
        #expect(timestamps == [1_600_000_000_000, 1_900_000_000_000, -1])
    }
}
