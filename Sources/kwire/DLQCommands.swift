// kwire dlq list | show | republish: the dead letters of the HRMS consumers (notification-dlq,
// audit-dlq), written by HRMSEventPipeline with the original record and `dlq.*` headers.
import ArgumentParser
import HRMSEventPipeline
import KafkaWire

struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "List, inspect and re-publish dead letters (notification-dlq, audit-dlq).",
        subcommands: [List.self, Show.self, Republish.self])

    /// Every dead letter of the topic (from the beginning to the end as it is now), with its place.
    static func read(_ client: ClientConfig, _ topic: String) async throws -> [(ConsumerRecord, DeadLetter?)] {
        var out: [(ConsumerRecord, DeadLetter?)] = []
        try await TopicReader.readToEnd(client: client, topic: topic, idleTimeoutMs: 10_000) { records in
            for r in records { out.append((r, DeadLetter(deadLetterRecord: r))) }
        }
        return out.sorted { ($0.0.partition, $0.0.offset) < ($1.0.partition, $1.0.offset) }
    }

    static func text(_ bytes: [UInt8]?) -> String {
        bytes.map { String(decoding: $0, as: UTF8.self) } ?? "(null)"
    }

    static func json(_ r: ConsumerRecord, _ d: DeadLetter?) -> JSON {
        var fields: [(String, JSON)] = [("partition", .int(r.partition)), ("offset", .int(r.offset))]
        if let d {
            fields += [
                ("original_topic", .string(d.originalTopic)), ("original_partition", .int(d.originalPartition)),
                ("original_offset", .int(d.originalOffset)), ("reason", .string(d.reason)), ("error", .string(d.error)),
                ("attempts", .int(d.attempts)), ("event_id", .optionalString(d.eventId)), ("group", .string(d.consumerGroup)),
                ("failed_at", .int(d.failedAt)),
            ]
        } else {
            fields.append(("error", .string("not a dead letter (no dlq.original.* headers)")))
        }
        return .object(fields)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every dead letter with its reason, error and attempts.")

        @OptionGroup var global: GlobalOptions

        @Option(name: .customShort("t"), help: "The DLQ topic.")
        var topic: String

        func run() async throws {
            global.setUp()
            let letters = try await DLQCommand.read(try global.clientConfig(), topic)
            emitListing(
                json: global.json,
                .array(letters.map { DLQCommand.json($0.0, $0.1) }),
                table: renderTable(
                    ["PARTITION", "OFFSET", "ORIGINAL", "REASON", "ATTEMPTS", "EVENT_ID", "ERROR"],
                    letters.map { r, d in
                        [String(r.partition), String(r.offset),
                         d.map { "\($0.originalTopic)/\($0.originalPartition)@\($0.originalOffset)" } ?? "-",
                         d?.reason ?? "-", d.map { String($0.attempts) } ?? "-", d?.eventId ?? "-",
                         d?.error ?? "not a dead letter"]
                    }))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One dead letter: where it came from, why, its headers, key and value.")

        @OptionGroup var global: GlobalOptions

        @Option(name: .customShort("t"), help: "The DLQ topic.")
        var topic: String

        @Option(name: .customShort("p"), help: "Its partition in the DLQ topic.")
        var partition: Int32

        @Option(name: .customShort("o"), help: "Its offset in the DLQ topic.")
        var offset: Int64

        func run() async throws {
            global.setUp()
            let letters = try await DLQCommand.read(try global.clientConfig(), topic)
            guard let (r, d) = letters.first(where: { $0.0.partition == partition && $0.0.offset == offset }) else {
                throw CLIError.failure("no record at \(topic)/\(partition)@\(offset)")
            }
            if global.json {
                guard case var .object(fields) = DLQCommand.json(r, d) else { return }
                fields += [
                    ("key", .optionalString(r.key.map { DLQCommand.text($0) })), ("value", .optionalString(r.value.map { DLQCommand.text($0) })),
                    ("headers", .object(r.headers.map { ($0.key, .optionalString($0.value.map { DLQCommand.text($0) })) })),
                ]
                stdoutWriter.write(JSON.object(fields).rendered + "\n")
                return
            }
            var out = "dead letter \(topic)/\(r.partition)@\(r.offset)\n"
            if let d {
                out += "original:  \(d.originalTopic)/\(d.originalPartition)@\(d.originalOffset)\n"
                out += "reason:    \(d.reason)\nattempts:  \(d.attempts)\nerror:     \(d.error)\ngroup:     \(d.consumerGroup)\n"
                out += "event_id:  \(d.eventId ?? "-")\nfailed_at: \(d.failedAt)\n"
            } else {
                out += "not a dead letter (no dlq.original.* headers)\n"
            }
            out += "headers:\n" + r.headers.map { "  \($0.key)=\(DLQCommand.text($0.value))\n" }.joined()
            out += "key:       \(DLQCommand.text(r.key))\nvalue:\n\(DLQCommand.text(r.value))\n"
            stdoutWriter.write(out)
        }
    }

    struct Republish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write dead letters back to their original topic (key, value and original headers as they were).",
            discussion: "The consumers are idempotent by event id: re-publishing an event that was meanwhile handled does nothing twice.")

        @OptionGroup var global: GlobalOptions

        @Option(name: .customShort("t"), help: "The DLQ topic.")
        var topic: String

        @Option(name: .customShort("p"), help: "Partition of the dead letter to re-publish (with -o).")
        var partition: Int32?

        @Option(name: .customShort("o"), help: "Offset of the dead letter to re-publish (with -p).")
        var offset: Int64?

        @Flag(name: .customLong("all"), help: "Re-publish every dead letter of the topic.")
        var all = false

        @Option(name: .customLong("to"), help: "Write to this topic instead of the original one.")
        var to: String?

        func validate() throws {
            guard all != (offset != nil) else { throw ValidationError("give either -p P -o OFFSET or --all") }
            guard (partition == nil) == (offset == nil) else { throw ValidationError("-p and -o go together") }
        }

        func run() async throws {
            global.setUp()
            let letters = try await DLQCommand.read(try global.clientConfig(), topic)
            let chosen = all ? letters : letters.filter { $0.0.partition == partition && $0.0.offset == offset }
            if !all && chosen.isEmpty { throw CLIError.failure("no record at \(topic)/\(partition ?? -1)@\(offset ?? -1)") }
            var records: [(ConsumerRecord, ProducerRecord)] = []
            for (r, d) in chosen {
                guard let d else {
                    if all { continue }
                    throw CLIError.failure("\(topic)/\(r.partition)@\(r.offset) is not a dead letter (no dlq.original.* headers)")
                }
                var p = d.republishRecord
                if let to { p.topic = to }
                records.append((r, p))
            }
            var pc = try global.producerConfig()
            pc.acks = .all
            let producer = KafkaProducer(config: pc)
            let results = await producer.send(records.map(\.1))
            await producer.close()
            var failed = 0
            var rows: [[String]] = []
            var docs: [JSON] = []
            for ((r, p), result) in zip(records, results) {
                switch result {
                case let .success(m):
                    rows.append(["\(topic)/\(r.partition)@\(r.offset)", "\(m.topic)/\(m.partition)@\(m.offset)"])
                    docs.append(.object([("from", .string("\(topic)/\(r.partition)@\(r.offset)")), ("topic", .string(m.topic)),
                                         ("partition", .int(m.partition)), ("offset", .int(m.offset))]))
                case let .failure(e):
                    failed += 1
                    printError("kwire: re-publishing \(topic)/\(r.partition)@\(r.offset) to \(p.topic) failed: \(Main.describe(e))")
                }
            }
            emitListing(json: global.json, .array(docs), table: renderTable(["DEAD_LETTER", "REPUBLISHED_TO"], rows))
            if failed > 0 { throw ExitCode(1) }
        }
    }
}
