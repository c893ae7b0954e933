import Testing
import KafkaProtocol

/// Generated (see Generated/MessageSamples.swift) for every message type: a value with a non-default
/// value in every field the version has, one-element arrays, and an unknown tagged field when flexible.
protocol SampleProviding {
    static func sample(version: Int16) -> Self
}

/// One message type, as a test argument.
struct MessageCase: Sendable, CustomTestStringConvertible {
    let name: String
    let roundTrip: @Sendable () throws -> Void
    let truncations: @Sendable () throws -> Void
    let garbage: @Sendable () throws -> Void

    init<M: KafkaMessage & SampleProviding>(_ type: M.Type) {
        name = "\(M.self)"
        roundTrip = { try checkRoundTrip(M.self) }
        truncations = { try checkTruncations(M.self) }
        garbage = { try checkGarbage(M.self) }
    }

    var testDescription: String { name }
}

/// Every valid version: the sample encodes, decodes back equal, and re-encodes to the same bytes;
/// so does the default value (or it is refused for a null where the version allows none).
func checkRoundTrip<M: KafkaMessage & SampleProviding>(_ type: M.Type) throws {
    for version in M.validVersions {
        let sample = M.sample(version: version)
        let bytes = try sample.encoded(version: version)
        let decoded = try M.decode(bytes, version: version)
        #expect(decoded == sample, "\(M.self) v\(version) decodes to something else")
        #expect(try decoded.encoded(version: version) == bytes, "\(M.self) v\(version) re-encodes differently")
        if M.isFlexible(version) {
            #expect(!bytes.isEmpty)
        }

        do {
            let plain = try M().encoded(version: version)
            #expect(try M.decode(plain, version: version) == M(), "\(M.self)() v\(version)")
        } catch let error as KafkaEncodingError {
            guard case .nullNotAllowed = error else { throw error }
        }
    }
    let beyond = M.validVersions.upperBound + 1
    #expect(throws: KafkaEncodingError.unsupportedVersion(message: "\(M.self)", version: beyond, validVersions: M.validVersions)) {
        try M.sample(version: M.validVersions.upperBound).encoded(version: beyond)
    }
    #expect(throws: WireDecodingError.self) { try M.decode([], version: beyond) }
}

/// Every strict prefix of a sample's encoding fails with a WireDecodingError (never a crash, never success).
func checkTruncations<M: KafkaMessage & SampleProviding>(_ type: M.Type) throws {
    for version in M.validVersions {
        let bytes = try M.sample(version: version).encoded(version: version)
        for n in 0..<bytes.count {
            #expect(throws: WireDecodingError.self, "\(M.self) v\(version), \(n) of \(bytes.count) bytes") {
                try M.decode(Array(bytes[0..<n]), version: version)
            }
        }
    }
}

/// Random bytes, and samples with random bytes flipped, decode or fail with a WireDecodingError.
func checkGarbage<M: KafkaMessage & SampleProviding>(_ type: M.Type) throws {
    var rng = SplitMix64(seed: UInt64(truncatingIfNeeded: "\(M.self)".utf8.reduce(0) { $0 &* 31 &+ Int($1) }))
    for version in M.validVersions {
        let sample = try M.sample(version: version).encoded(version: version)
        for round in 0..<40 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                bytes = sample
                if !bytes.isEmpty {
                    for _ in 0..<3 { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
                }
            }
            do {
                _ = try M.decode(bytes, version: version)
            } catch is WireDecodingError {
            } catch {
                Issue.record("\(M.self) v\(version): unexpected error \(error)")
            }
        }
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Generated messages")
struct RoundTripTests {
    @Test("Round trip in every valid version", arguments: generatedMessageCases)
    func roundTrip(_ c: MessageCase) throws {
        try c.roundTrip()
    }

    @Test("Truncated input is a decoding error", arguments: generatedMessageCases)
    func truncations(_ c: MessageCase) throws {
        try c.truncations()
    }

    @Test("Garbage input is a decoding error or a value", arguments: generatedMessageCases)
    func garbage(_ c: MessageCase) throws {
        try c.garbage()
    }

    @Test func everyCommittedMessageIsCovered() {
        #expect(generatedMessageCases.count == 2 * 35 + 4)
    }
}
