// Drives KafkaWire from the interop tests (tests_interop/), speaking JSON lines with base64 bytes so
// that binary keys, values and headers cross the process boundary exactly.
//
//   kafkawire-interop produce -b HOST:PORT -t TOPIC [-z CODEC] [--acks 0|1|all] < records.jsonl
//       input:  {"key": b64|null, "value": b64|null, "headers": [[name, b64|null]], "partition": n?, "timestamp": ms?}
//       output: {"partition": n, "offset": n} per record, in input order
//   kafkawire-interop produce-keyed -b HOST:PORT -t TOPIC [--keys 20] [--per-key 500] [--chunk 20]
//       [--pause-ms 10] [--settings k=v,k=v] [--close-ms 30000]
//       keyed records "k<key>" with value "k<key>:<seq>", seq counting per key, sent fire-and-forget
//       (delivery reports) in rounds over the keys, pausing every CHUNK records (so that a test can
//       cut the connection meanwhile); prints {"key", "seq", "partition", "offset"} or
//       {"key", "seq", "error"} per record as its report arrives, then {"summary": true, "acked",
//       "failed", "undelivered", "idempotent", "closeMs"}
//   kafkawire-interop consume -b HOST:PORT -t TOPIC -c COUNT [-p PARTITION] [-o beginning|end|OFFSET]
//       output: {"partition", "offset", "timestamp", "key", "value", "headers"} per record
//   kafkawire-interop group -b HOST:PORT -t TOPIC[,TOPIC] -g GROUP [-a range,cooperative-sticky]
//       [--instance-id ID] [--session-ms 6000] [--heartbeat-ms 500] [-c COUNT] [--commit auto|each]
//       [--reset earliest|latest] [--quiet]
//       a group member: prints {"event": "assigned"|"revoked"|"lost", "partitions": [[topic, p]]},
//       {"event": "committed", "offsets": [[topic, p, offset]]} after each successful automatic commit,
//       and {"topic", "partition", "offset", "value"} lines (with --quiet: {"progress": n} every 1000
//       records instead); SIGTERM closes it gracefully (commit, leave), SIGKILL is a crash; exits
//       after COUNT records if given, printing {"event": "closed", "records": n, "firstRecordMs",
//       "lastRecordMs"} last (wall-clock times of the first and last record, null if none).
//   kafkawire-interop describe-group -b HOST:PORT -g GROUP
//       output: one line {"group", "state", "protocolType", "assignor", "totalLag",
//       "members": [{"memberId", "groupInstanceId", "clientId", "clientHost", "assignment": [[topic, p]]}],
//       "partitions": [{"topic", "partition", "committed", "highWatermark", "lag", "memberId"}]}
import Foundation
import KafkaWire

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func flags(_ args: ArraySlice<String>) throws -> [String: String] {
    var out: [String: String] = [:]
    var i = args.startIndex
    while i < args.endIndex {
        let name = args[i]
        guard name.hasPrefix("-"), i + 1 < args.endIndex else { throw Failure("expected -flag value at \(name)") }
        out[name] = args[i + 1]
        i += 2
    }
    return out
}

func b64(_ bytes: [UInt8]?) -> Any { bytes.map { Data($0).base64EncodedString() } ?? NSNull() }
func unb64(_ any: Any?) throws -> [UInt8]? {
    guard let any, !(any is NSNull) else { return nil }
    guard let s = any as? String, let d = Data(base64Encoded: s) else { throw Failure("bad base64 \(any)") }
    return Array(d)
}

func emit(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

@main
struct Interop {
    static func main() async {
        let args = CommandLine.arguments
        do {
            guard args.count >= 2 else { throw Failure("usage: kafkawire-interop produce|consume|group|describe-group ...") }
            let f = try flags(args.dropFirst(2))
            guard let bootstrap = f["-b"] else { throw Failure("-b is required") }
            if args[1] == "describe-group" {
                try await describeGroup(bootstrap, f)
                return
            }
            guard let topic = f["-t"] else { throw Failure("-t is required") }
            switch args[1] {
            case "produce": try await produce(bootstrap, topic, f)
            case "produce-keyed": try await produceKeyed(bootstrap, topic, f)
            case "consume": try await consume(bootstrap, topic, f)
            case "group": try await group(bootstrap, topic, f)
            default: throw Failure("unknown command \(args[1])")
            }
        } catch {
            FileHandle.standardError.write(Data("kafkawire-interop: \(error)\n".utf8))
            exit(1)
        }
    }

    static func produce(_ bootstrap: String, _ topic: String, _ f: [String: String]) async throws {
        var config = ProducerConfig(bootstrapServers: bootstrap)
        if let z = f["-z"] {
            guard let c = CompressionCodec.allCases.first(where: { "\($0)" == z }) else { throw Failure("unknown codec \(z)") }
            config.compression = c
        }
        switch f["--acks"] ?? "all" {
        case "0": config.acks = .none
        case "1": config.acks = .leader
        case "all", "-1": config.acks = .all
        case let other: throw Failure("bad --acks \(other)")
        }
        let input = FileHandle.standardInput.readDataToEndOfFile()
        var records: [ProducerRecord] = []
        for line in input.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            guard let o = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { throw Failure("bad line") }
            let headers = try ((o["headers"] as? [[Any]]) ?? []).map { pair in
                guard pair.count == 2, let name = pair[0] as? String else { throw Failure("bad header \(pair)") }
                return RecordHeader(key: name, value: try unb64(pair[1]))
            }
            records.append(ProducerRecord(
                topic: topic, partition: (o["partition"] as? Int).map(Int32.init), key: try unb64(o["key"]),
                value: try unb64(o["value"]), headers: headers, timestamp: (o["timestamp"] as? Int).map(Int64.init)))
        }
        let producer = KafkaProducer(config: config)
        let results = await producer.send(records)
        await producer.close()
        var failed = 0
        for r in results {
            switch r {
            case let .success(m): try emit(["partition": Int(m.partition), "offset": Int(m.offset)])
            case let .failure(e):
                failed += 1
                try emit(["error": "\(e)"])
            }
        }
        if failed > 0 { throw Failure("\(failed) records failed") }
    }

    static func produceKeyed(_ bootstrap: String, _ topic: String, _ f: [String: String]) async throws {
        var config = ProducerConfig(bootstrapServers: bootstrap)
        var settings: [String: String] = [:]
        for part in (f["--settings"] ?? "").split(separator: ",") {
            guard let (k, v) = KafkaSettings.parseAssignment(String(part)) else { throw Failure("bad setting \(part)") }
            settings[k] = v
        }
        try config.apply(settings)
        let keys = Int(f["--keys"] ?? "20") ?? 20
        let perKey = Int(f["--per-key"] ?? "500") ?? 500
        let chunk = max(1, Int(f["--chunk"] ?? "20") ?? 20)
        let pauseMs = Int(f["--pause-ms"] ?? "10") ?? 10
        let closeMs = Int(f["--close-ms"] ?? "30000") ?? 30000
        let producer = KafkaProducer(config: config)
        let total = keys * perKey
        // Reports are read while sending: unread ones hold buffer space.
        let reader = Task { () -> (acked: Int, failed: Int) in
            var acked = 0, failed = 0, seen = 0
            for await r in producer.deliveryReports {
                let key = Int(r.reportId) % keys, seq = Int(r.reportId) / keys
                switch r.result {
                case let .success(m):
                    acked += 1
                    try? emit(["key": "k\(key)", "seq": seq, "partition": Int(m.partition), "offset": Int(m.offset)])
                case let .failure(e):
                    failed += 1
                    try? emit(["key": "k\(key)", "seq": seq, "error": "\(e)"])
                }
                seen += 1
                if seen == total { break }
            }
            return (acked, failed)
        }
        var notQueued = 0
        for id in 0..<total {
            let key = id % keys, seq = id / keys
            do {
                try await producer.enqueue(
                    ProducerRecord(topic: topic, key: Array("k\(key)".utf8), value: Array("k\(key):\(seq)".utf8)), reportId: UInt64(id))
            } catch {
                notQueued += 1
                try emit(["key": "k\(key)", "seq": seq, "error": "not queued: \(error)"])
            }
            if id % chunk == chunk - 1 && pauseMs > 0 { try? await Task.sleep(nanoseconds: UInt64(pauseMs) * 1_000_000) }
        }
        let idempotent = producer.producerIdentity != nil
        let start = ContinuousClock.now
        let undelivered = await producer.close(timeoutMs: closeMs)
        let closeTook = ContinuousClock.now - start
        let (acked, failed) = await reader.value
        try emit([
            "summary": true, "acked": acked, "failed": failed + notQueued, "undelivered": undelivered.count, "idempotent": idempotent,
            "closeMs": Int(closeTook.components.seconds * 1000 + closeTook.components.attoseconds / 1_000_000_000_000_000),
        ])
    }

    static func group(_ bootstrap: String, _ topics: String, _ f: [String: String]) async throws {
        guard let groupId = f["-g"] else { throw Failure("-g GROUP is required") }
        var config = GroupConsumerConfig(bootstrapServers: bootstrap, groupId: groupId)
        config.consumer.fetchMaxWaitMs = 100
        config.consumer.autoOffsetReset = f["--reset"] == "latest" ? .latest : .earliest
        config.sessionTimeoutMs = Int(f["--session-ms"] ?? "6000") ?? 6000
        config.heartbeatIntervalMs = Int(f["--heartbeat-ms"] ?? "500") ?? 500
        config.maxPollIntervalMs = Int(f["--max-poll-ms"] ?? "20000") ?? 20000
        config.autoCommitIntervalMs = 200
        config.groupInstanceId = f["--instance-id"]
        if let names = f["-a"] {
            config.assignors = try names.split(separator: ",").map {
                guard let a = Assignors.named(String($0)) else { throw Failure("unknown assignor \($0)") }
                return a
            }
        }
        let commitEach = f["--commit"] == "each"
        let quiet = f["--quiet"].map { $0 != "0" && $0 != "false" } ?? false
        config.enableAutoCommit = !commitEach
        config.onAutoCommit = { result in
            guard case let .success(offsets) = result else { return }
            try? emit(["event": "committed", "offsets": offsets.keys.sorted().map { [$0.topic, Int($0.partition), Int(offsets[$0]!)] as [Any] }])
        }
        config.onRebalance = { event in
            let (name, partitions): (String, [TopicPartition]) = switch event {
            case let .assigned(p): ("assigned", p)
            case let .revoked(p): ("revoked", p)
            case let .lost(p): ("lost", p)
            }
            try? emit(["event": name, "partitions": partitions.map { [$0.topic, Int($0.partition)] as [Any] }])
        }
        let consumer = KafkaGroupConsumer(config: config, topics: topics.split(separator: ",").map(String.init))
        signal(SIGTERM, SIG_IGN)
        let stop = DispatchSource.makeSignalSource(signal: SIGTERM)
        stop.setEventHandler { Task { await consumer.close() } }
        stop.resume()
        let count = f["-c"].flatMap(Int.init) ?? Int.max
        var seen = 0
        var firstMs: Int?
        var lastMs: Int?
        for try await r in consumer.records {
            lastMs = Int(Date().timeIntervalSince1970 * 1000)
            if firstMs == nil { firstMs = lastMs }
            if !quiet {
                try emit(["topic": r.topic, "partition": Int(r.partition), "offset": Int(r.offset), "value": b64(r.value)])
            } else if (seen + 1) % 1000 == 0 {
                try emit(["progress": seen + 1])
            }
            if commitEach { try await consumer.commit(r) }
            seen += 1
            if seen >= count { break }
        }
        await consumer.close()
        try emit(["event": "closed", "records": seen, "firstRecordMs": firstMs ?? NSNull(), "lastRecordMs": lastMs ?? NSNull()])
    }

    static func describeGroup(_ bootstrap: String, _ f: [String: String]) async throws {
        guard let groupId = f["-g"] else { throw Failure("-g GROUP is required") }
        let admin = KafkaAdmin(config: ClientConfig(bootstrapServers: bootstrap))
        let d: KafkaAdmin.GroupDescription
        do {
            d = try await admin.describeGroup(groupId)
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
        try emit([
            "group": d.groupId, "state": d.state, "protocolType": d.protocolType, "assignor": d.assignor,
            "totalLag": Int(d.totalLag),
            "members": d.members.map { m -> [String: Any] in
                ["memberId": m.memberId, "groupInstanceId": m.groupInstanceId ?? NSNull(), "clientId": m.clientId,
                 "clientHost": m.clientHost, "assignment": m.assignment.map { [$0.topic, Int($0.partition)] as [Any] }]
            },
            "partitions": d.partitions.map { p -> [String: Any] in
                ["topic": p.partition.topic, "partition": Int(p.partition.partition), "committed": Int(p.committedOffset),
                 "highWatermark": Int(p.highWatermark), "lag": Int(p.lag), "memberId": p.memberId ?? NSNull()]
            },
        ])
    }

    static func consume(_ bootstrap: String, _ topic: String, _ f: [String: String]) async throws {
        guard let count = f["-c"].flatMap(Int.init) else { throw Failure("-c COUNT is required") }
        var config = ConsumerConfig(bootstrapServers: bootstrap)
        config.fetchMaxWaitMs = 100
        let start: StartOffset = switch f["-o"] ?? "beginning" {
        case "beginning": .earliest
        case "end": .latest
        case let o: .offset(Int64(o) ?? 0)
        }
        let consumer = KafkaConsumer(config: config)
        try await consumer.assign(topic: topic, partitions: f["-p"].flatMap(Int32.init).map { [$0] }, from: start)
        let timeout = Task {
            try await Task.sleep(nanoseconds: UInt64(Int(f["--timeout-ms"] ?? "30000") ?? 30000) * 1_000_000)
            await consumer.close()
        }
        var seen = 0
        if count > 0 {
            for try await r in consumer.records {
                try emit([
                    "partition": Int(r.partition), "offset": Int(r.offset), "timestamp": Int(r.timestamp),
                    "key": b64(r.key), "value": b64(r.value),
                    "headers": r.headers.map { [$0.key, b64($0.value)] },
                ])
                seen += 1
                if seen == count { break }
            }
        }
        timeout.cancel()
        await consumer.close()
        if seen < count { throw Failure("timed out after \(seen) of \(count) records") }
    }
}
