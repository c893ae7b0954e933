import KafkaProtocol
import KafkaRecords

/// Every generated message type, in a fixed order (a type's index is part of the fuzz input).
enum MessageRegistry {
    /// All request types, from the generated `allRequestTypes` (ordered by API key).
    static let requestTypes: [any KafkaRequest.Type] = allRequestTypes
    /// The matching response types, same order.
    static let responseTypes: [any KafkaResponse.Type] = allRequestTypes.map { responseType(of: $0) }

    static let requests: [any KafkaMessage.Type] = requestTypes.map { $0 as any KafkaMessage.Type }
    static let responses: [any KafkaMessage.Type] = responseTypes.map { $0 as any KafkaMessage.Type }
    /// Messages that are not API bodies: the frame headers, and the consumer protocol's embedded
    /// subscription and assignment (the bytes of JoinGroup metadata and SyncGroup assignments).
    static let others: [any KafkaMessage.Type] = [
        RequestHeader.self, ResponseHeader.self, ConsumerProtocolSubscription.self, ConsumerProtocolAssignment.self,
    ]

    static func requestType(apiKey: Int16) -> (any KafkaRequest.Type)? {
        requestTypes.first { $0.apiKey == apiKey }
    }

    private static func responseType<R: KafkaRequest>(of _: R.Type) -> any KafkaResponse.Type { R.Response.self }
}

// MARK: - Bodies

func fuzzMessageBody(_ bytes: ArraySlice<UInt8>, _ types: [any KafkaMessage.Type]) {
    var rest = bytes
    let type = types[Int(take(&rest)) % types.count]
    let versionByte = take(&rest)
    checkMessage(type, versionByte: versionByte, Array(rest))
}

func checkMessage<T: KafkaMessage>(_: T.Type, versionByte: UInt8, _ body: [UInt8]) {
    let version = selectVersion(versionByte, T.validVersions)
    guard T.validVersions.contains(version) else {
        checkRefusesVersion(T.self, body, version: version)
        return
    }
    checkBody(T.self, body, version: version)
}

/// A version outside `validVersions` must be an error, whatever the bytes.
func checkRefusesVersion<T: KafkaMessage>(_: T.Type, _ body: [UInt8], version: Int16) {
    var r = WireReader(body)
    if let value = try? T(from: &r, version: version) {
        finding("\(T.self) decoded at unsupported version \(version): \(value)")
    }
}

/// Decodes a body as a stream reader does (trailing bytes allowed), then checks the round trip of
/// whatever decoded and decodes what the value embeds (record sets, consumer protocol bytes).
func checkBody<T: KafkaMessage>(_: T.Type, _ body: [UInt8], version: Int16) {
    var r = WireReader(body)
    let value: T
    do {
        value = try T(from: &r, version: version)
    } catch {
        return
    }
    guard r.position >= 0, r.position <= r.end else {
        finding("\(T.self) v\(version): reader position \(r.position) outside 0...\(r.end) after decoding")
    }
    checkRoundTrip(value, version: version)
    decodeEmbedded(value, version: version)
}

/// decode(encode(v)) == v, and encoding is stable: a decoded value must encode (nothing the decoder
/// accepts may be unencodable) and come back unchanged.
func checkRoundTrip<T: KafkaMessage>(_ value: T, version: Int16) {
    let encoded: [UInt8]
    do {
        encoded = try value.encoded(version: version)
    } catch {
        finding("\(T.self) v\(version): decoded, but encoding the value again failed: \(error)\nvalue: \(value)")
    }
    let again: T
    do {
        again = try T.decode(encoded, version: version)
    } catch {
        finding("\(T.self) v\(version): its own encoding does not decode: \(error)\nvalue: \(value)\nencoded: \(hex(encoded))")
    }
    guard again == value else {
        finding("\(T.self) v\(version): decode(encode(v)) != v\nv:  \(value)\nv': \(again)\nencoded: \(hex(encoded))")
    }
    let reencoded = try? again.encoded(version: version)
    guard reencoded == encoded else {
        finding("\(T.self) v\(version): encoding is not stable\nfirst:  \(hex(encoded))\nsecond: \(reencoded.map(hex) ?? "error")")
    }
}

/// What the client (or a broker) decodes next from a decoded body.
func decodeEmbedded<T: KafkaMessage>(_ value: T, version: Int16) {
    if let fetch = value as? FetchResponse {
        for topic in fetch.responses {
            for partition in topic.partitions {
                if let records = partition.records { checkRecordSet(records, budget: 1 << 20) }
            }
        }
    } else if let produce = value as? ProduceRequest {
        for topic in produce.topicData {
            for partition in topic.partitionData {
                if let records = partition.records { checkRecordSet(records, budget: 1 << 20) }
            }
        }
    } else if let join = value as? JoinGroupRequest {
        for p in join.protocols { checkConsumerProtocol(ConsumerProtocolSubscription.self, p.metadata) }
    } else if let join = value as? JoinGroupResponse {
        for m in join.members { checkConsumerProtocol(ConsumerProtocolSubscription.self, m.metadata) }
    } else if let sync = value as? SyncGroupRequest {
        for a in sync.assignments { checkConsumerProtocol(ConsumerProtocolAssignment.self, a.assignment) }
    } else if let sync = value as? SyncGroupResponse {
        checkConsumerProtocol(ConsumerProtocolAssignment.self, sync.assignment)
    }
}

/// Consumer protocol bytes: an int16 version, then the message at that version.
func checkConsumerProtocol<T: KafkaMessage>(_: T.Type, _ bytes: [UInt8]) {
    var r = WireReader(bytes)
    guard let version = try? r.readInt16(), T.validVersions.contains(version) else { return }
    checkBody(T.self, Array(bytes[r.position...]), version: version)
}

// MARK: - Frames

/// A request frame as a broker reads it: API key and version first, then the header of the version
/// they imply, then the body.
func fuzzRequestFrame(_ frame: [UInt8]) {
    guard frame.count >= 4 else { return }
    let key = Int16(bitPattern: UInt16(frame[0]) << 8 | UInt16(frame[1]))
    guard let type = MessageRegistry.requestType(apiKey: key) else {
        // An API without generated messages: the header (v1, as for any non-flexible request) must
        // still decode or fail cleanly.
        var r = WireReader(frame)
        if let header = try? RequestHeader(from: &r, version: 1) { checkRoundTrip(header, version: 1) }
        return
    }
    checkRequestFrame(type, frame)
}

func checkRequestFrame<T: KafkaRequest>(_: T.Type, _ frame: [UInt8]) {
    let version = Int16(bitPattern: UInt16(frame[2]) << 8 | UInt16(frame[3]))
    let headerVersion = T.requestHeaderVersion(version)
    var r = WireReader(frame)
    let header: RequestHeader
    do {
        header = try RequestHeader(from: &r, version: headerVersion)
    } catch {
        return
    }
    guard header.requestApiKey == T.apiKey, header.requestApiVersion == version else {
        finding("RequestHeader v\(headerVersion) decoded key/version \(header.requestApiKey)/\(header.requestApiVersion), frame starts with \(T.apiKey)/\(version)")
    }
    checkRoundTrip(header, version: headerVersion)
    let body = Array(frame[r.position...])
    if T.validVersions.contains(version) {
        checkBody(T.self, body, version: version)
    } else {
        checkRefusesVersion(T.self, body, version: version)
    }
}

/// A response frame as the client reads it: the header version follows from the request's API and
/// version (ApiVersions always uses v0), then the body.
func fuzzResponseFrame(_ bytes: ArraySlice<UInt8>) {
    var rest = bytes
    let type = MessageRegistry.responseTypes[Int(take(&rest)) % MessageRegistry.responseTypes.count]
    let versionByte = take(&rest)
    checkResponseFrame(type, versionByte: versionByte, Array(rest))
}

func checkResponseFrame<T: KafkaResponse>(_: T.Type, versionByte: UInt8, _ frame: [UInt8]) {
    let version = selectVersion(versionByte, T.validVersions)
    let headerVersion = T.responseHeaderVersion(version)
    var r = WireReader(frame)
    let header: ResponseHeader
    do {
        header = try ResponseHeader(from: &r, version: headerVersion)
    } catch {
        return
    }
    checkRoundTrip(header, version: headerVersion)
    let body = Array(frame[r.position...])
    if T.validVersions.contains(version) {
        checkBody(T.self, body, version: version)
    } else {
        checkRefusesVersion(T.self, body, version: version)
    }
}

// MARK: - Helpers

func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}
