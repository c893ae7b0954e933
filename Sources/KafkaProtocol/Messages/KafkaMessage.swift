/// A message body generated from one of Kafka's JSON definitions.
///
/// One type serves every version in `validVersions`: encode and decode take the version and include
/// exactly the fields that version has, as Kafka's own generated Java code does.
public protocol KafkaMessage: Sendable, Equatable {
    /// The versions this type can encode and decode.
    static var validVersions: ClosedRange<Int16> { get }
    /// The first flexible version (compact encodings and tagged fields), or nil if none is.
    static var firstFlexibleVersion: Int16? { get }

    init()
    func encode(into writer: inout WireWriter, version: Int16) throws
    init(from reader: inout WireReader, version: Int16) throws
}

extension KafkaMessage {
    public static func isFlexible(_ version: Int16) -> Bool {
        guard let first = firstFlexibleVersion else { return false }
        return version >= first
    }

    /// Encodes the message body alone into a fresh buffer.
    public func encoded(version: Int16) throws -> [UInt8] {
        var w = WireWriter()
        try encode(into: &w, version: version)
        return w.bytes
    }

    /// Decodes a whole buffer holding exactly one message body.
    public static func decode(_ bytes: [UInt8], version: Int16) throws -> Self {
        var r = WireReader(bytes)
        let m = try Self(from: &r, version: version)
        guard r.isAtEnd else { throw WireDecodingError.trailingBytes(r.remaining, message: "\(Self.self)") }
        return m
    }
}

/// A request body: knows its API key and the response type it is answered with.
public protocol KafkaRequest: KafkaMessage {
    associatedtype Response: KafkaResponse
    static var apiKey: Int16 { get }
}

public protocol KafkaResponse: KafkaMessage {
    static var apiKey: Int16 { get }
}

extension KafkaRequest {
    /// Request header v2 for flexible versions, v1 otherwise (v0 exists only for ControlledShutdown v0).
    public static func requestHeaderVersion(_ version: Int16) -> Int16 {
        isFlexible(version) ? 2 : 1
    }
}

extension KafkaResponse {
    /// Response header v1 for flexible versions, v0 otherwise. ApiVersions responses always use v0,
    /// so that a client can read the error of a version it asked for but the broker does not speak.
    public static func responseHeaderVersion(_ version: Int16) -> Int16 {
        if apiKey == 18 { return 0 }
        return isFlexible(version) ? 1 : 0
    }
}
