#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KafkaFakeBroker
import Synchronization
import Testing
@testable import KafkaWire

/// How the client recovers from what a real broker does during leader changes and restarts.
@Suite(.timeLimit(.minutes(1))) struct RecoveryTests {
    /// A leader move: the first Produce is refused with NOT_LEADER_OR_FOLLOWER; the producer must
    /// refresh metadata and retry, and the record must be written exactly once.
    @Test(arguments: [KafkaErrorCode.notLeaderOrFollower, .leaderNotAvailable, .unknownTopicOrPartition])
    func produceRetriesAfterARetriableErrorAndRefreshesMetadata(code: KafkaErrorCode) async throws {
        let produces = Mutex(0)
        let broker = try Scripted.broker { req, _ in
            guard req.apiKey == ApiKey.produce.rawValue else { return .close }
            let attempt = produces.withLock { $0 += 1; return $0 }
            let asked = try! ProduceRequest.decode(req.body, version: req.apiVersion)
            var r = ProduceResponse()
            r.responses = [.init(name: asked.topicData[0].name, partitionResponses: [
                .init(index: 0, errorCode: attempt == 1 ? code.rawValue : 0, baseOffset: attempt == 1 ? -1 : 77),
            ])]
            return .respond(body: try! r.encoded(version: req.apiVersion), headerVersion: req.apiVersion >= 9 ? 1 : 0)
        }
        defer { broker.stop() }
        var config = ProducerConfig(client: Scripted.config(broker))
        config.client.retryBackoffMs = 10
        let producer = KafkaProducer(config: config)
        let meta = try await producer.send(ProducerRecord(topic: "t", value: [1]))
        #expect(meta.offset == 77)
        #expect(produces.withLock { $0 } == 2)
        let metadataRequests = broker.requests.filter { $0.apiKey == ApiKey.metadata.rawValue }.count
        #expect(metadataRequests >= 2, "metadata must be refreshed after \(code.name)")
        await producer.close()
    }

    @Test func nonRetriableProduceErrorIsReportedNotRetried() async throws {
        let produces = Mutex(0)
        let broker = try Scripted.broker { req, _ in
            guard req.apiKey == ApiKey.produce.rawValue else { return .close }
            produces.withLock { $0 += 1 }
            let asked = try! ProduceRequest.decode(req.body, version: req.apiVersion)
            var r = ProduceResponse()
            r.responses = [.init(name: asked.topicData[0].name, partitionResponses: [
                .init(index: 0, errorCode: KafkaErrorCode.messageTooLarge.rawValue, baseOffset: -1),
            ])]
            return .respond(body: try! r.encoded(version: req.apiVersion), headerVersion: req.apiVersion >= 9 ? 1 : 0)
        }
        defer { broker.stop() }
        let producer = KafkaProducer(config: ProducerConfig(client: Scripted.config(broker)))
        do {
            _ = try await producer.send(ProducerRecord(topic: "t", value: [1]))
            Issue.record("expected MESSAGE_TOO_LARGE")
        } catch {
            guard case .broker(.messageTooLarge, _) = error else { Issue.record("got \(error)"); return }
        }
        #expect(produces.withLock { $0 } == 1)
        await producer.close()
    }

    /// The connection drops in the middle of a Produce: the producer reconnects and retries.
    @Test func produceSurvivesADroppedConnection() async throws {
        let produces = Mutex(0)
        let broker = try Scripted.broker { req, _ in
            guard req.apiKey == ApiKey.produce.rawValue else { return .close }
            if produces.withLock({ $0 += 1; return $0 }) == 1 { return .close }
            let asked = try! ProduceRequest.decode(req.body, version: req.apiVersion)
            var r = ProduceResponse()
            r.responses = [.init(name: asked.topicData[0].name, partitionResponses: [.init(index: 0, errorCode: 0, baseOffset: 5)])]
            return .respond(body: try! r.encoded(version: req.apiVersion), headerVersion: req.apiVersion >= 9 ? 1 : 0)
        }
        defer { broker.stop() }
        var config = ProducerConfig(client: Scripted.config(broker))
        config.client.retryBackoffMs = 10
        let producer = KafkaProducer(config: config)
        let meta = try await producer.send(ProducerRecord(topic: "t", value: [1]))
        #expect(meta.offset == 5)
        #expect(broker.connectionCount >= 2)
        await producer.close()
    }

    /// The producer gives up at delivery.timeout.ms with the last error, instead of hanging.
    @Test func deliveryTimeoutEndsRetries() async throws {
        let broker = try Scripted.broker { req, _ in
            guard req.apiKey == ApiKey.produce.rawValue else { return .close }
            let asked = try! ProduceRequest.decode(req.body, version: req.apiVersion)
            var r = ProduceResponse()
            r.responses = [.init(name: asked.topicData[0].name, partitionResponses: [
                .init(index: 0, errorCode: KafkaErrorCode.notEnoughReplicas.rawValue, baseOffset: -1),
            ])]
            return .respond(body: try! r.encoded(version: req.apiVersion), headerVersion: req.apiVersion >= 9 ? 1 : 0)
        }
        defer { broker.stop() }
        var config = ProducerConfig(client: Scripted.config(broker))
        config.client.retryBackoffMs = 20
        config.deliveryTimeoutMs = 300
        let producer = KafkaProducer(config: config)
        do {
            _ = try await producer.send(ProducerRecord(topic: "t", value: [1]))
            Issue.record("expected a failure")
        } catch {
            guard case .broker(.notEnoughReplicas, _) = error else { Issue.record("got \(error)"); return }
        }
        await producer.close()
    }

    /// Opening and closing connections leaves no socket and no I/O thread behind. Counted by the
    /// fake broker's port, so that other suites running in parallel do not disturb the count.
    @Test func closeLeavesNoDescriptorOrThread() async throws {
        let broker = try Scripted.broker { _, _ in .close }
        defer { broker.stop() }
        var clusters: [KafkaCluster] = []
        for _ in 0..<10 {
            let cluster = KafkaCluster(config: Scripted.config(broker))
            _ = try await cluster.anyConnection().send(MetadataRequest())
            clusters.append(cluster)
        }
        #expect(clientSockets(toPort: broker.port) == 10)
        #expect(ioThreads(forPort: broker.port) == 10)
        for cluster in clusters { await cluster.close() }
        // close() returns once the I/O thread has released the socket; the thread itself ends
        // right after, so allow it a moment to be reaped.
        #expect(clientSockets(toPort: broker.port) == 0)
        var threads = ioThreads(forPort: broker.port)
        for _ in 0..<100 where threads > 0 {
            try await Task.sleep(nanoseconds: 10_000_000)
            threads = ioThreads(forPort: broker.port)
        }
        #expect(threads == 0)
    }

    /// Sockets of this process's client side to `port` that are still open (ESTABLISHED or
    /// CLOSE_WAIT: a socket the peer closed but we never did).
    func clientSockets(toPort port: Int) -> Int {
        let hexPort = String(format: ":%04X", port)
        var count = 0
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            // /proc files report size 0: read to the end rather than by size.
            guard let data = FileHandle(forReadingAtPath: table)?.readDataToEndOfFile() else { continue }
            let text = String(decoding: data, as: UTF8.self)
            for line in text.split(separator: "\n").dropFirst() {
                let cols = line.split(separator: " ")
                guard cols.count > 3 else { continue }
                if cols[2].hasSuffix(hexPort) && (cols[3] == "01" || cols[3] == "08") { count += 1 }
            }
        }
        return count
    }

    func ioThreads(forPort port: Int) -> Int {
        guard let dir = opendir("/proc/self/task") else { return -1 }
        defer { closedir(dir) }
        var n = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.first?.isNumber == true,
                  let comm = try? String(contentsOfFile: "/proc/self/task/\(name)/comm", encoding: .utf8) else { continue }
            if comm.trimmingCharacters(in: .whitespacesAndNewlines) == "kw-io:\(port)" { n += 1 }
        }
        return n
    }
}
