#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import KafkaProtocol
import KafkaRecords

// Seed corpus, built at fuzz time (nothing generated is committed): scripts/fuzz.sh runs the fuzz
// binary once with KWIRE_FUZZ_WRITE_SEEDS=<dir> (and KWIRE_FUZZ_FIXTURE_MANIFEST=<file>, one
// "path<TAB>c2s|s2c<TAB>api key<TAB>api version" line per captured frame of Fixtures/*/index.json);
// libFuzzer calls LLVMFuzzerInitialize first, which writes the seeds and exits.

@_cdecl("LLVMFuzzerInitialize")
public func kafkaWireFuzzInitialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    guard let out = getenv("KWIRE_FUZZ_WRITE_SEEDS") else { return 0 }
    var seeds = SeedWriter(directory: String(cString: out))
    if let manifest = getenv("KWIRE_FUZZ_FIXTURE_MANIFEST") {
        seeds.addFixtures(manifest: String(cString: manifest))
    }
    seeds.addSynthetic()
    print("kafkawire-fuzz: wrote \(seeds.written) seeds (\(seeds.fixtureFrames) fixture frames) to \(seeds.directory)")
    fflush(nil)
    // _exit: no libFuzzer or leak checker work at exit for a run that fuzzed nothing.
    _exit(seeds.failed ? 1 : 0)
}

struct SeedWriter {
    let directory: String
    private var seen = Set<[UInt8]>()
    private(set) var written = 0
    private(set) var fixtureFrames = 0
    private(set) var failed = false

    init(directory: String) { self.directory = directory }

    mutating func add(_ mode: FuzzMode, _ selectors: [UInt8], _ data: [UInt8]) {
        let seed = [mode.rawValue] + selectors + data
        guard seen.insert(seed).inserted else { return }
        let path = "\(directory)/seed-\(written)"
        guard let f = fopen(path, "wb") else {
            print("kafkawire-fuzz: cannot write \(path)")
            failed = true
            return
        }
        let n = seed.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
        if n != seed.count { failed = true }
        written += 1
    }

    // MARK: Fixtures

    mutating func addFixtures(manifest: String) {
        guard let text = readFile(manifest) else {
            print("kafkawire-fuzz: cannot read the fixture manifest \(manifest)")
            failed = true
            return
        }
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: "\t").map(String.init)
            guard fields.count == 4, let key = Int16(fields[2]), let version = Int16(fields[3]) else {
                print("kafkawire-fuzz: bad manifest line: \(line)")
                failed = true
                continue
            }
            guard let frame = readFile(fields[0]) else {
                print("kafkawire-fuzz: cannot read \(fields[0])")
                failed = true
                continue
            }
            fixtureFrames += 1
            guard let index = MessageRegistry.requestTypes.firstIndex(where: { $0.apiKey == key }) else {
                // An API without generated messages (e.g. GetTelemetrySubscriptions): header only.
                if fields[1] == "c2s" { add(.requestFrame, [], frame) }
                continue
            }
            if fields[1] == "c2s" {
                addRequestFrame(MessageRegistry.requestTypes[index], UInt8(index), frame)
            } else {
                addResponseFrame(MessageRegistry.responseTypes[index], UInt8(index), version, frame)
            }
        }
    }

    private mutating func addRequestFrame<T: KafkaRequest>(_: T.Type, _ index: UInt8, _ frame: [UInt8]) {
        add(.requestFrame, [], frame)
        var r = WireReader(frame)
        guard frame.count >= 4 else { return }
        let version = Int16(bitPattern: UInt16(frame[2]) << 8 | UInt16(frame[3]))
        guard (try? RequestHeader(from: &r, version: T.requestHeaderVersion(version))) != nil,
              T.validVersions.contains(version)
        else { return }
        let body = Array(frame[r.position...])
        add(.requestBody, [index, versionSelector(version, T.validVersions)], body)
        if let value = try? T.decode(body, version: version) { addEmbedded(value) }
    }

    private mutating func addResponseFrame<T: KafkaResponse>(_: T.Type, _ index: UInt8, _ version: Int16, _ frame: [UInt8]) {
        guard T.validVersions.contains(version) else { return }
        let selector = versionSelector(version, T.validVersions)
        add(.responseFrame, [index, selector], frame)
        var r = WireReader(frame)
        guard (try? ResponseHeader(from: &r, version: T.responseHeaderVersion(version))) != nil else { return }
        let body = Array(frame[r.position...])
        add(.responseBody, [index, selector], body)
        if let value = try? T.decode(body, version: version) { addEmbedded(value) }
    }

    /// Record sets and consumer protocol bytes inside a decoded body.
    private mutating func addEmbedded<T: KafkaMessage>(_ value: T) {
        if let fetch = value as? FetchResponse {
            for topic in fetch.responses {
                for partition in topic.partitions { if let r = partition.records { addRecords(r) } }
            }
        } else if let produce = value as? ProduceRequest {
            for topic in produce.topicData {
                for partition in topic.partitionData { if let r = partition.records { addRecords(r) } }
            }
        } else if let join = value as? JoinGroupRequest {
            for p in join.protocols { addConsumerProtocol(ConsumerProtocolSubscription.self, p.metadata) }
        } else if let join = value as? JoinGroupResponse {
            for m in join.members { addConsumerProtocol(ConsumerProtocolSubscription.self, m.metadata) }
        } else if let sync = value as? SyncGroupRequest {
            for a in sync.assignments { addConsumerProtocol(ConsumerProtocolAssignment.self, a.assignment) }
        } else if let sync = value as? SyncGroupResponse {
            addConsumerProtocol(ConsumerProtocolAssignment.self, sync.assignment)
        }
    }

    private mutating func addConsumerProtocol<T: KafkaMessage>(_: T.Type, _ bytes: [UInt8]) {
        guard bytes.count >= 2, let index = MessageRegistry.others.firstIndex(where: { ObjectIdentifier($0) == ObjectIdentifier(T.self) }) else { return }
        let version = Int16(bitPattern: UInt16(bytes[0]) << 8 | UInt16(bytes[1]))
        guard T.validVersions.contains(version) else { return }
        add(.otherMessage, [UInt8(index), versionSelector(version, T.validVersions)], Array(bytes[2...]))
    }

    /// A records blob, and what its batches give the record modes: each v2 batch's records
    /// (re-encoded plain, for the mode that compresses them itself), its payload as it came
    /// (compressed by the peer), and that payload for the codec mode.
    mutating func addRecords(_ blob: [UInt8]) {
        add(.recordSet, [0], blob)
        add(.recordSetFixedCRC, [0], blob)
        guard let set = try? RecordSet.decode(blob) else { return }
        var p = 0
        for batch in set.batches {
            let end = p + batch.sizeInBytes
            defer { p = end }
            guard batch.magic == 2, !batch.records.isEmpty else { continue }
            let attributes = UInt8(truncatingIfNeeded: batch.attributes.rawValue & 0x7F)
            let count = UInt8(truncatingIfNeeded: batch.records.count & 0x3F)
            if let plain = try? RecordBatch.encode(records: batch.records, compression: .none) {
                add(.batchV2, [attributes, count, 0], Array(plain[RecordBatchBuilder.headerSize...]))
            }
            if batch.compression != .none, end <= blob.count {
                let payload = Array(blob[(p + RecordBatchBuilder.headerSize)..<end])
                add(.batchV2, [attributes, count, 1], payload)
                add(.codec, [UInt8(batch.compression.rawValue), 6], payload)
            }
        }
    }

    // MARK: Synthetic

    mutating func addSynthetic() {
        addDefaultMessages()
        addSyntheticRecords()
        addPrimitivePrograms()
    }

    /// Every message type at every valid version, default-valued: body, and frame for API bodies.
    private mutating func addDefaultMessages() {
        for (i, type) in MessageRegistry.requestTypes.enumerated() { addDefaultRequest(type, UInt8(i)) }
        for (i, type) in MessageRegistry.responseTypes.enumerated() { addDefaultResponse(type, UInt8(i)) }
        for (i, type) in MessageRegistry.others.enumerated() { addDefault(type, .otherMessage, UInt8(i)) }
    }

    private mutating func addDefault<T: KafkaMessage>(_: T.Type, _ mode: FuzzMode, _ index: UInt8) {
        for version in T.validVersions {
            if let body = try? T().encoded(version: version) {
                add(mode, [index, versionSelector(version, T.validVersions)], body)
            }
        }
    }

    private mutating func addDefaultRequest<T: KafkaRequest>(_: T.Type, _ index: UInt8) {
        addDefault(T.self, .requestBody, index)
        for version in T.validVersions {
            let header = RequestHeader(requestApiKey: T.apiKey, requestApiVersion: version, correlationId: 7, clientId: "kafkawire-fuzz")
            guard let h = try? header.encoded(version: T.requestHeaderVersion(version)),
                  let body = try? T().encoded(version: version)
            else { continue }
            add(.requestFrame, [], h + body)
        }
    }

    private mutating func addDefaultResponse<T: KafkaResponse>(_: T.Type, _ index: UInt8) {
        addDefault(T.self, .responseBody, index)
        for version in T.validVersions {
            guard let h = try? ResponseHeader(correlationId: 7).encoded(version: T.responseHeaderVersion(version)),
                  let body = try? T().encoded(version: version)
            else { continue }
            add(.responseFrame, [index, versionSelector(version, T.validVersions)], h + body)
        }
    }

    /// Batches v2 with every codec, legacy message sets v0/v1 plain and compressed, codec payloads.
    private mutating func addSyntheticRecords() {
        let records = [
            Record(timestamp: 1_700_000_000_000, key: Array("key-0".utf8), value: Array(repeating: 0x61, count: 40)),
            Record(timestamp: 1_700_000_000_005, key: nil, value: Array("value".utf8), headers: [RecordHeader(key: "h", value: [1, 2])]),
            Record(timestamp: 1_699_999_999_000, key: [], value: nil, headers: [RecordHeader(key: "", value: nil)]),
        ]
        let plainPayload = (try? RecordBatch.encode(records: records, compression: .none)).map { Array($0[RecordBatchBuilder.headerSize...]) } ?? []
        for codec in CompressionCodec.allCases {
            if let batch = try? RecordBatch.encode(records: records, compression: codec) {
                add(.recordSet, [0], batch)
                add(.recordSetFixedCRC, [0], batch + batch[0..<(batch.count / 2)])
            }
            if let control = try? RecordBatch.encode(
                records: [Record(timestamp: 0, key: ControlRecord(type: .commit).keyBytes, value: [0, 0, 0, 0, 0, 0])],
                compression: codec, producerId: 5, producerEpoch: 1, isTransactional: true, isControl: true)
            {
                add(.recordSetFixedCRC, [0], control)
            }
            add(.batchV2, [UInt8(codec.rawValue), UInt8(records.count), 0], plainPayload)
            add(.batchV2, [UInt8(codec.rawValue) | 0x08, UInt8(records.count), 0x08], plainPayload)
            if let compressed = try? codec.compress(plainPayload + plainPayload) {
                add(.codec, [UInt8(codec.rawValue), 6], compressed)
            }
        }
        for magic: UInt8 in [0, 1] {
            var set: [UInt8] = []
            for (i, r) in records.enumerated() {
                set += makeLegacyMessage(
                    offset: Int64(i), magic: magic, attributes: 0, timestamp: r.timestamp, key: r.key, value: r.value)
            }
            add(.recordSet, [0], set)
            add(.recordSetFixedCRC, [0], set + set[0..<(set.count - 3)])
            for codec: UInt8 in 0...3 {
                add(.legacyWrapper, [magic, codec, 0], set)
                add(.legacyWrapper, [magic, codec | 0x08, 4], set)
            }
        }
    }

    private mutating func addPrimitivePrograms() {
        add(.primitives, [], [2, 0x12, 0x34, 3, 0, 0, 0, 1, 4, 0, 0, 0, 0, 0, 0, 0, 9, 1, 0])
        add(.primitives, [], [7, 0x96, 0x01, 8, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 9, 0x80, 0x01, 10, 0x01])
        add(.primitives, [], [11, 0, 3, 0x61, 0x62, 0x63, 12, 4, 0x78, 0x79, 0x7A, 11, 0xFF, 0xFF, 12, 0])
        add(.primitives, [], [15, 0, 0, 0, 2, 0xAA, 0xBB, 16, 3, 1, 2, 17, 1, 18, 0, 0, 0, 0, 19, 1])
        add(.primitives, [], [20, 3, 0, 1, 0x41, 1, 2, 0x42, 0x43, 2, 1, 0x05, 20, 0, 6, 0x12, 0x34, 0x56, 0x78])
        add(.primitives, [], [21, 2, 0xC3, 0x28, 22, 1, 0, 23, 0, 4, 0x80, 0x80, 0x80, 0x80, 0x80])
    }
}

/// The whole file, or nil.
func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n > 0 { out += buffer[0..<n] }
        if n < buffer.count { break }
    }
    return ferror(f) == 0 ? out : nil
}
