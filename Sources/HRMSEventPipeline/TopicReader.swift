import KafkaWire
import Logging

/// Reads every partition of a topic from its earliest offset to its end as it is when the read
/// starts (no group, nothing committed): the replay and the DLQ tool.
public enum TopicReader {
    public struct Stalled: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Calls `body` with chunks of up to `chunkSize` records, in order per partition.
    /// - Parameter idleTimeoutMs: throws `Stalled` when no record arrives for this long before the end.
    /// - Returns: the number of records read.
    @discardableResult
    public static func readToEnd(client: ClientConfig, topic: String, chunkSize: Int = 500, idleTimeoutMs: Int = 15_000,
                                 logger: Logger = Logger(label: "hrms.topic-reader"),
                                 _ body: ([ConsumerRecord]) async throws -> Void) async throws -> Int {
        let admin = KafkaAdmin(config: client)
        let bounds: [(partition: Int32, earliest: Int64, latest: Int64)]
        do {
            bounds = try await admin.offsets(topic: topic)
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
        // ListOffsets(latest) can say less than the high watermark (Tansu answers the last batch's
        // base offset + 1): a partition's end is raised to the high watermark of its first fetch.
        var end: [Int32: Int64] = [:]
        for b in bounds where b.latest > b.earliest { end[b.partition] = b.latest }
        if end.isEmpty { return 0 }
        var corrected = Set<Int32>()
        var position: [Int32: Int64] = [:]
        var cc = ConsumerConfig(client: client)
        cc.fetchMaxWaitMs = 200
        let consumer = KafkaConsumer(config: cc, logger: logger)
        let queue = RecordQueue(capacity: max(chunkSize, 1) * 2)
        var count = 0
        do {
            try await consumer.assign(topic: topic, partitions: end.keys.sorted(), from: .earliest)
            let reader = Task {
                do {
                    for try await r in consumer.records { await queue.send(r) }
                    queue.finish(nil)
                } catch {
                    queue.finish(error)
                }
            }
            defer { reader.cancel() }
            while !end.allSatisfy({ (position[$0.key] ?? 0) >= $0.value }) {
                switch await queue.receive(max: chunkSize, until: .now + .milliseconds(idleTimeoutMs)) {
                case .timedOut:
                    throw Stalled(description: "reading \(topic) stalled at \(position.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")) before the end \(end.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ","))")
                case let .finished(error):
                    throw error ?? Stalled(description: "reading \(topic): the consumer ended before the end")
                case let .records(records):
                    var chunk: [ConsumerRecord] = []
                    for r in records {
                        guard var e = end[r.partition] else { continue }
                        if !corrected.contains(r.partition) {
                            corrected.insert(r.partition)
                            e = max(e, consumer.highWatermarks()[topic]?[r.partition] ?? -1)
                            end[r.partition] = e
                        }
                        guard r.offset < e else { continue }
                        position[r.partition] = r.offset + 1
                        chunk.append(r)
                    }
                    if !chunk.isEmpty {
                        count += chunk.count
                        try await body(chunk)
                    }
                }
            }
        } catch {
            await consumer.close()
            throw error
        }
        await consumer.close()
        return count
    }
}
