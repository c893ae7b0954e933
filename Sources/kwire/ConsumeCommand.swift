// kwire consume: print records (kcat -C), or consume as a member of a group (kcat -G).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Dispatch
import KafkaWire
import Synchronization

/// Where -o starts.
enum StartSpec: Equatable {
    case beginning, end, stored
    case offset(Int64)
    /// N records from the end of each partition (-o -N).
    case tail(Int64)
    /// The first record at or after this time, ms since the epoch (-o @MS or kcat's s@MS).
    case timestamp(Int64)

    init?(_ text: String) {
        switch text {
        case "beginning", "earliest": self = .beginning
        case "end", "latest": self = .end
        case "stored": self = .stored
        default:
            if text.hasPrefix("@") || text.hasPrefix("s@") {
                guard let ms = Int64(text.drop(while: { $0 != "@" }).dropFirst()), ms >= 0 else { return nil }
                self = .timestamp(ms)
            } else if let n = Int64(text) {
                self = n >= 0 ? .offset(n) : .tail(-n)
            } else {
                return nil
            }
        }
    }
}

struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Print records of a topic (kcat -C), or consume them as a member of a group (-G, kcat -G).",
        discussion: """
            Without -G, reads the partitions directly, from the beginning unless -o says otherwise. With -G, \
            joins GROUP, reads the partitions it is assigned from the group's committed offsets (-o beginning \
            or end: where to start when there is none) and commits what it printed. -e stops at the end of \
            the partitions as they were at the start (with -G: when they were assigned). SIGINT or SIGTERM \
            stops cleanly: commits, leaves the group, exits 0.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customShort("t"), help: "The topic.")
    var topic: String

    @Option(name: .customShort("p"), help: "Only this partition (not with -G).")
    var partition: Int32?

    @Option(
        name: .customShort("o"), parsing: .unconditional,
        help: ArgumentHelp(
            "Where to start: beginning, end, stored (with -G), OFFSET, -N (N from the end of each partition), @TIMESTAMP_MS.",
            valueName: "offset"))
    var offset: String?

    @Option(name: .customShort("c"), help: "Exit after this many records.")
    var count: Int?

    @Flag(name: .customShort("e"), help: "Exit at the end of the partitions.")
    var exitAtEnd = false

    @Option(name: .customShort("G"), help: "Consume as a member of this group, committing what was printed.")
    var group: String?

    @Option(name: .customShort("f"), help: ArgumentHelp("Output format: %t %p %o %k %K %s %S %R %T %h, \\n \\t \\xNN escapes.", valueName: "format"))
    var format: String?

    @Flag(name: .customShort("J"), help: "One JSON object a line: topic, partition, offset, timestamp, key, value, headers.")
    var jsonRecords = false

    @Option(name: .customShort("K"), help: ArgumentHelp("Print the key, then this delimiter, then the value.", valueName: "delim"))
    var keyDelimiter: String?

    @Option(name: .customShort("D"), help: ArgumentHelp("Delimiter after each record (default \\n).", valueName: "delim"))
    var delimiter: String = "\\n"

    @Flag(name: .customShort("Z"), help: "Print a null key or value as NULL.")
    var nullAsText = false

    @Flag(name: .customShort("u"), help: "Unbuffered output: write every record at once.")
    var unbuffered = false

    func validate() throws {
        if let o = offset, StartSpec(o) == nil {
            throw ValidationError("-o expects beginning, end, stored, OFFSET, -N or @TIMESTAMP_MS, got \"\(o)\"")
        }
        if format != nil && jsonRecords { throw ValidationError("-f and -J exclude each other") }
        if let c = count, c < 1 { throw ValidationError("-c expects a positive count") }
        if let p = partition, p < 0 { throw ValidationError("-p expects a partition number") }
    }

    func run() async throws {
        global.setUp()
        let settings = try global.parsedSettings()
        let groupId = group ?? settings["group.id"]
        let start = offset.flatMap(StartSpec.init) ?? (groupId == nil ? .beginning : .stored)
        if groupId != nil {
            if partition != nil { throw CLIError.usage("-p cannot be used with -G: the group assigns the partitions") }
            switch start {
            case .beginning, .end, .stored: break
            default: throw CLIError.usage("-o with -G takes beginning, end or stored")
            }
        } else if start == .stored {
            throw CLIError.usage("-o stored needs -G GROUP (the offsets are the group's)")
        }

        let printer: RecordPrinter
        let recordDelimiter = try parseEscapes(delimiter)
        let nullText = nullAsText ? Array("NULL".utf8) : []
        if jsonRecords || global.json {
            printer = .json(delimiter: recordDelimiter)
        } else if let format {
            printer = .format(try RecordFormat(format, nullText: nullText))
        } else if let keyDelimiter {
            // kcat's default output: the value (after the key and -K's delimiter), then -D's delimiter.
            printer = .format(RecordFormat(tokens: [.key, .literal(try parseEscapes(keyDelimiter)), .value, .literal(recordDelimiter)], nullText: nullText))
        } else {
            printer = .format(RecordFormat(tokens: [.value, .literal(recordDelimiter)], nullText: nullText))
        }

        let session = ConsumeSession(printer: printer, limit: count ?? .max, exitAtEnd: exitAtEnd, unbuffered: unbuffered)
        let signals = installSignalHandlers(session)
        defer { withExtendedLifetime(signals) {} }

        if let groupId {
            var config = try global.groupConfig(group: groupId)
            if settings["session.timeout.ms"] == nil { config.sessionTimeoutMs = 10_000 }
            if settings["heartbeat.interval.ms"] == nil { config.heartbeatIntervalMs = 1_000 }
            switch start {
            case .beginning: config.consumer.autoOffsetReset = .earliest
            case .end: config.consumer.autoOffsetReset = .latest
            default: break
            }
            try await consumeInGroup(config, session)
        } else {
            try await consumeDirectly(try global.consumerConfig(), start, session)
        }
    }

    // MARK: Without a group

    private func consumeDirectly(_ config: ConsumerConfig, _ start: StartSpec, _ session: ConsumeSession) async throws {
        let topic = self.topic, partition = self.partition
        // Metadata and, for -o -N, the ends of the partitions, before reading anything.
        let (partitions, tailStarts) = try await withAdmin(config.client) { admin -> ([Int32], [Int32: Int64]) in
            try await checkPartition(admin, topic, partition)
            let all = try await admin.cluster.topic(topic).partitions.map(\.partition)
            let chosen = partition.map { [$0] } ?? all
            guard case let .tail(n) = start else { return (chosen, [:]) }
            var starts: [Int32: Int64] = [:]
            for o in try await admin.offsets(topic: topic) where chosen.contains(o.partition) {
                starts[o.partition] = max(o.earliest, o.latest - n)
            }
            return (chosen, starts)
        }
        let consumer = KafkaConsumer(config: config)
        guard session.attach(Hooks(
            highWatermarks: { consumer.highWatermarks()[topic] ?? [:] },
            positions: { consumer.positions()[topic] ?? [:] },
            commit: nil,
            close: { await consumer.close() }))
        else { await consumer.close(); return }
        session.track(Set(partitions.map { TopicPartition(topic: topic, partition: $0) }))
        do {
            switch start {
            case .beginning: try await consumer.assign(topic: topic, partitions: partitions, from: .earliest)
            case .end: try await consumer.assign(topic: topic, partitions: partitions, from: .latest)
            case let .offset(o): try await consumer.assign(topic: topic, partitions: partitions, from: .offset(o))
            case let .timestamp(ms): try await consumer.assign(topic: topic, partitions: partitions, from: .timestamp(ms))
            case .tail:
                for p in partitions {
                    try await consumer.assign(topic: topic, partitions: [p], from: .offset(tailStarts[p] ?? 0))
                }
            case .stored: break
            }
        } catch {
            await session.shutdown()
            if session.interrupted && isClosed(error) { return }
            throw error
        }
        try await session.run(consumer.records)
    }

    // MARK: As a group member

    private func consumeInGroup(_ config: GroupConsumerConfig, _ session: ConsumeSession) async throws {
        let topic = self.topic
        try await withAdmin(config.consumer.client) { admin in _ = try await admin.cluster.topic(topic) }
        var config = config
        // Commits are the session's: of what was printed, periodically, before giving partitions up
        // and on the way out. The library's own would also count a record handed over but not printed.
        let commits = config.enableAutoCommit
        let interval = config.autoCommitIntervalMs
        config.enableAutoCommit = false
        config.onRebalance = { event in await session.rebalanced(event) }
        let consumer = KafkaGroupConsumer(config: config, topics: [topic])
        let commit: @Sendable ([TopicPartition: Int64]) async throws(KafkaError) -> Void = { offsets throws(KafkaError) in
            try await consumer.commit(offsets)
        }
        guard session.attach(Hooks(
            highWatermarks: { consumer.highWatermarks()[topic] ?? [:] },
            positions: { consumer.positions()[topic] ?? [:] },
            commit: commits ? commit : nil,
            close: { await consumer.close() }))
        else { await consumer.close(); return }
        let committer = commits ? Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(interval) * 1_000_000)
                if Task.isCancelled { break }
                await session.commitPrinted(nil)
            }
        } : nil
        defer { committer?.cancel() }
        try await session.run(consumer.records)
    }

    private func installSignalHandlers(_ session: ConsumeSession) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { session.interrupt() }
            source.resume()
            return source
        }
    }
}

/// Whether an error only says the consumer was closed (by a signal, or at the end).
func isClosed(_ error: any Error) -> Bool {
    if let e = error as? KafkaError, case .closed = e { return true }
    return false
}

enum RecordPrinter: Sendable {
    case json(delimiter: [UInt8])
    case format(RecordFormat)

    func render(_ r: ConsumerRecord) -> [UInt8] {
        var out: [UInt8] = []
        switch self {
        case let .json(delimiter):
            out = Array(recordJSON(r).rendered.utf8)
            out += delimiter
        case let .format(f):
            f.render(r, into: &out)
        }
        return out
    }
}

extension RecordFormat {
    init(tokens: [Token], nullText: [UInt8]) {
        self.tokens = tokens
        self.nullText = nullText
    }
}

/// What the session needs from the consumer it drives.
struct Hooks: Sendable {
    var highWatermarks: @Sendable () -> [Int32: Int64]
    var positions: @Sendable () -> [Int32: Int64]
    var commit: (@Sendable ([TopicPartition: Int64]) async throws(KafkaError) -> Void)?
    var close: @Sendable () async -> Void
}

/// One consume run: prints records, knows what was printed (for commits and -c), when every
/// partition reached its end (-e), and shuts down once (count reached, end reached, signal,
/// closed output).
final class ConsumeSession: Sendable {
    let printer: RecordPrinter
    let limit: Int
    let exitAtEnd: Bool
    let unbuffered: Bool

    private struct State {
        var hooks: Hooks?
        var stopped = false
        var interrupts = 0
        var shutdownTask: Task<Void, Never>?
        var printed = 0
        /// Offset after the last printed record, per partition.
        var next: [TopicPartition: Int64] = [:]
        var committed: [TopicPartition: Int64] = [:]
        /// The partitions -e waits for, and where each ends (its first high watermark seen).
        var active: Set<TopicPartition> = []
        var targets: [TopicPartition: Int64] = [:]
        /// The reader is waiting for a record; with `printed` unchanged over a whole monitor tick, it
        /// has printed everything fetched.
        var waiting = false
        var idleTicks = 0
        var printedAtTick = -1
        /// Partitions whose fetch position had reached the end at the previous monitor tick: what a
        /// fetch delivered by then is in the reader's hands by now.
        var reached: Set<TopicPartition> = []
    }
    private let state = Mutex(State())

    init(printer: RecordPrinter, limit: Int, exitAtEnd: Bool, unbuffered: Bool) {
        self.printer = printer
        self.limit = limit
        self.exitAtEnd = exitAtEnd
        self.unbuffered = unbuffered
    }

    var interrupted: Bool { state.withLock { $0.interrupts > 0 } }

    /// False if the session already stopped (a signal came first): the caller closes the consumer.
    func attach(_ hooks: Hooks) -> Bool {
        state.withLock { s in
            s.hooks = hooks
            return !s.stopped
        }
    }

    func track(_ partitions: Set<TopicPartition>) { state.withLock { $0.active.formUnion(partitions) } }

    /// Reads until the records end (after a shutdown) or the session decides to stop.
    func run<S: AsyncSequence>(_ records: S) async throws where S.Element == ConsumerRecord {
        let monitor = Task { await self.monitor() }
        defer { monitor.cancel() }
        var iterator = records.makeAsyncIterator()
        var failure: (any Error)?
        do {
            while true {
                state.withLock { $0.waiting = true }
                guard let r = try await iterator.next() else { break }
                state.withLock { $0.waiting = false }
                if !emit(r) { break }
            }
        } catch {
            failure = error
        }
        await shutdown()
        stdoutWriter.flush()
        if let failure, !(interrupted && isClosed(failure)) { throw failure }
    }

    /// Prints a record unless the session stopped or the record is past its partition's end (-e);
    /// false once consuming should stop.
    private func emit(_ r: ConsumerRecord) -> Bool {
        let tp = TopicPartition(topic: r.topic, partition: r.partition)
        return state.withLock { s in
            if s.stopped { return false }
            if exitAtEnd {
                if s.targets[tp] == nil, let h = s.hooks?.highWatermarks()[tp.partition], h >= 0 { s.targets[tp] = h }
                if let t = s.targets[tp], r.offset >= t { return !Self.allDone(s, idleAtEnd: []) }
            }
            let bytes = printer.render(r)
            stdoutWriter.write(bytes)
            if unbuffered { stdoutWriter.flush() }
            if stdoutWriter.broken { return false }
            s.printed += 1
            s.next[tp] = r.offset + 1
            if s.printed >= limit { return false }
            if exitAtEnd && Self.allDone(s, idleAtEnd: []) { return false }
            return true
        }
    }

    /// Whether every tracked partition reached its end: its last record is printed, or it is in
    /// `idleAtEnd` (fetching reached the end and the reader has been idle since).
    private static func allDone(_ s: State, idleAtEnd: Set<TopicPartition>) -> Bool {
        if s.active.isEmpty { return false }
        for tp in s.active {
            guard let target = s.targets[tp] else { return false }
            if let n = s.next[tp], n >= target { continue }
            if idleAtEnd.contains(tp) { continue }
            return false
        }
        return true
    }

    /// -e: learns each partition's end, and ends the session when all are reached. Also flushes
    /// buffered output regularly.
    private func monitor() async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 20_000_000)
            stdoutWriter.flush()
            if stdoutWriter.broken {
                Task { await self.shutdown() }
                return
            }
            guard exitAtEnd, let hooks = state.withLock({ $0.hooks }) else { continue }
            // Positions first: a high watermark still unknown afterwards means no fetch had
            // answered yet when the positions were read.
            let positions = hooks.positions()
            let hws = hooks.highWatermarks()
            let done = state.withLock { s -> Bool in
                for tp in s.active where s.targets[tp] == nil {
                    if let h = hws[tp.partition], h >= 0 { s.targets[tp] = h }
                }
                if s.waiting && s.printed == s.printedAtTick { s.idleTicks += 1 } else { s.idleTicks = 0 }
                s.printedAtTick = s.printed
                let reachedNow = Set(s.active.filter { tp in
                    guard let t = s.targets[tp], let p = positions[tp.partition] else { return false }
                    return p >= t
                })
                // Fetching was at the end one tick ago, and the reader has waited, printing nothing,
                // for two ticks: nothing of those partitions is left to print.
                let idleAtEnd = s.idleTicks >= 2 ? s.reached.intersection(reachedNow) : []
                s.reached = reachedNow
                return !s.stopped && Self.allDone(s, idleAtEnd: idleAtEnd)
            }
            if done {
                Task { await self.shutdown() }
                return
            }
        }
    }

    /// Group rebalances: commit what was printed before partitions go, track the new ones.
    func rebalanced(_ event: RebalanceEvent) async {
        switch event {
        case let .assigned(partitions):
            state.withLock { s in
                for tp in partitions {
                    s.active.insert(tp)
                    s.targets[tp] = nil
                    s.next[tp] = nil
                    s.committed[tp] = nil
                }
            }
        case let .revoked(partitions):
            await commitPrinted(Set(partitions))
            forget(partitions)
        case let .lost(partitions):
            forget(partitions)
        }
    }

    private func forget(_ partitions: [TopicPartition]) {
        state.withLock { s in
            for tp in partitions {
                s.active.remove(tp)
                s.targets[tp] = nil
                s.next[tp] = nil
                s.committed[tp] = nil
            }
        }
    }

    /// Commits the position after the last printed record of each partition (of `only`, if given)
    /// that moved since the last commit.
    func commitPrinted(_ only: Set<TopicPartition>?) async {
        let (commit, offsets) = state.withLock { s in
            (s.hooks?.commit, s.next.filter { entry in (only.map { $0.contains(entry.key) } ?? true) && s.committed[entry.key] != entry.value })
        }
        guard let commit, !offsets.isEmpty else { return }
        do {
            try await commit(offsets)
            state.withLock { s in
                for (tp, o) in offsets where s.next[tp] != nil { s.committed[tp] = o }
            }
        } catch {
            printError("kwire: warning: commit failed: \(Main.describe(error))")
        }
    }

    /// Stops printing, commits (group), closes the consumer: once, whoever asks first; the others wait.
    func shutdown() async {
        let task = state.withLock { s -> Task<Void, Never> in
            if let t = s.shutdownTask { return t }
            s.stopped = true
            let hooks = s.hooks
            let t = Task {
                await self.commitPrinted(nil)
                await hooks?.close()
            }
            s.shutdownTask = t
            return t
        }
        await task.value
    }

    /// SIGINT/SIGTERM: the first shuts down cleanly; a second one while that hangs exits at once.
    func interrupt() {
        let n = state.withLock { s -> Int in
            s.interrupts += 1
            return s.interrupts
        }
        if n == 1 {
            Task { await self.shutdown() }
        } else {
            stdoutWriter.flush()
            exit(130)
        }
    }
}
