// libFuzzer entry point for every wire-facing decoder of KafkaProtocol and KafkaRecords.
//
// Built and run only by scripts/fuzz.sh (swiftc -sanitize=fuzzer,address); in a plain `swift build`
// this is an ordinary library that nothing links.
//
// Input layout: byte 0 picks a mode (`FuzzMode`, modulo the number of modes); the next bytes pick
// what the mode needs (a message type and version, a codec, a budget...); the rest is the data.
// Every decoder must either return a value or throw: a trap, a sanitizer report, a hang, or an
// unbounded allocation is a finding. Where a value decodes, the checks in Messages.swift and
// Records.swift also re-encode it and require the same value back.

/// What the first input byte selects.
enum FuzzMode: UInt8, CaseIterable {
    /// [mode, type index, version selector] + body: a request body (what a broker or tool decodes).
    case requestBody = 0
    /// [mode, type index, version selector] + body: a response body (what the client decodes).
    case responseBody
    /// [mode, type index, version selector] + body: headers and the consumer protocol messages.
    case otherMessage
    /// [mode] + frame: request header (version chosen by the frame's API key and version) + body.
    case requestFrame
    /// [mode, type index, version selector] + frame: response header + body.
    case responseFrame
    /// [mode, budget selector] + blob: `RecordSet.decode` on raw bytes.
    case recordSet
    /// [mode, budget selector] + blob: `RecordSet.decode` after fixing every entry's CRC, so that
    /// mutations get past the checksums.
    case recordSetFixedCRC
    /// [mode, attributes, count, flags] + payload: one v2 batch with a valid header and CRC whose
    /// records part is the payload, compressed with the attributes' codec (or left as is).
    case batchV2
    /// [mode, magic, attributes, flags] + inner message set: a legacy wrapper message (magic 0/1)
    /// around the inner messages (CRCs fixed), compressed with the attributes' codec.
    case legacyWrapper
    /// [mode, codec, output cap selector] + data: each codec's decompress, then compress round trip.
    case codec
    /// [mode] + program: WireReader primitives driven by the input.
    case primitives
}

/// Selector for "a version": below 0xF0 a valid version (lower bound + byte % count); 0xF0...0xFF
/// versions just outside the range, which every decoder must refuse.
func selectVersion(_ byte: UInt8, _ valid: ClosedRange<Int16>) -> Int16 {
    if byte < 0xF0 {
        let count = Int(valid.upperBound) - Int(valid.lowerBound) + 1
        return valid.lowerBound + Int16(Int(byte) % count)
    }
    if byte == 0xFF { return valid.lowerBound - 1 }
    return valid.upperBound + Int16(byte - 0xEF)
}

/// The inverse of `selectVersion` for valid versions (seed building).
func versionSelector(_ version: Int16, _ valid: ClosedRange<Int16>) -> UInt8 {
    UInt8(truncatingIfNeeded: version - valid.lowerBound)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func kafkaWireFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    fuzzOne(input)
    return 0
}

/// Runs one input.
func fuzzOne(_ input: [UInt8]) {
    guard let first = input.first else { return }
    let mode = FuzzMode(rawValue: first % UInt8(FuzzMode.allCases.count))!
    let rest = input[1...]
    switch mode {
    case .requestBody: fuzzMessageBody(rest, MessageRegistry.requests)
    case .responseBody: fuzzMessageBody(rest, MessageRegistry.responses)
    case .otherMessage: fuzzMessageBody(rest, MessageRegistry.others)
    case .requestFrame: fuzzRequestFrame(Array(rest))
    case .responseFrame: fuzzResponseFrame(rest)
    case .recordSet: fuzzRecordSet(rest, fixCRCs: false)
    case .recordSetFixedCRC: fuzzRecordSet(rest, fixCRCs: true)
    case .batchV2: fuzzBatchV2(rest)
    case .legacyWrapper: fuzzLegacyWrapper(rest)
    case .codec: fuzzCodec(rest)
    case .primitives: fuzzPrimitives(Array(rest))
    }
}

/// The next byte of `bytes` (0 past the end), advancing the slice.
func take(_ bytes: inout ArraySlice<UInt8>) -> UInt8 {
    bytes.popFirst() ?? 0
}

/// A finding that is not a crash by itself (asymmetric codec, broken invariant): trap with a
/// description, which libFuzzer records as a crash with its input.
/// (Called only on failure, so the message is a plain String: an autoclosure here crashed the -O
/// compiler's CopyPropagation pass in Swift 6.3.1.)
func finding(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("KafkaWireFuzz finding: \(message)", file: file, line: line)
}
