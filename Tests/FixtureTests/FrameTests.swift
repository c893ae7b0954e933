import Foundation
import KafkaProtocol
import Testing

/// APIs the fixtures hold but the project does not generate, each with why that is fine. A frame of
/// any other API without generated types fails `frameDecodesAndReencodes`, so that a new peer
/// behaviour gets noticed. Their headers are still checked (with the header versions given here).
let notGeneratedApis: [ApiKey: (reason: String, requestHeaderVersion: Int16, responseHeaderVersion: Int16)] = [
    .getTelemetrySubscriptions: (
        "KIP-714 client telemetry: librdkafka 2.16 asks for a subscription after connecting to a broker that "
            + "advertises the API. KafkaWire does not push client metrics, so it has no use for the API and it "
            + "is not in Generator.defaultMessages. Version 0 is flexible: request header v2, response header v1.",
        2, 1),
]

/// Responses whose peer writes tagged fields that hold their default value. Kafka (and our generated
/// code) leaves a tagged field out when it has its default; Tansu 0.6.0 writes these top-level tagged
/// fields always. The bytes are valid and decode to the same values, but re-encoding omits the
/// fields, so for these the check is narrower than byte equality, not weaker: the re-encoded body
/// must be the captured body up to its top-level tagged-field section, that section must hold exactly
/// `tags` (all at their defaults, since the decoded value re-encodes without them), and the
/// re-encoded bytes must decode to the same value.
struct ExplicitDefaultTags {
    var api: ApiKey
    var version: Int16
    var tags: [UInt32]
    var reason: String
}

let explicitDefaultTags: [ExplicitDefaultTags] = [
    ExplicitDefaultTags(
        api: .apiVersions, version: 3, tags: [0, 1, 2, 3],
        reason: "Tansu writes SupportedFeatures (empty), FinalizedFeaturesEpoch (-1), FinalizedFeatures (empty) and ZkMigrationReady (false)"),
    ExplicitDefaultTags(api: .fetch, version: 16, tags: [0], reason: "Tansu writes NodeEndpoints (empty)"),
]

/// Requests whose body does not end where the schema says, with what is left over and why. The
/// frame must decode up to `trailing` exactly, and that prefix must re-encode to its own bytes.
struct TrailingBytes {
    var path: String
    var trailing: [UInt8]
    var reason: String
}

/// librdkafka 2.16 (rd_kafka_MetadataRequest0) reserves the topics array count as an int32
/// placeholder (rd_kafka_buf_write_arraycnt_pos) and, for "all topics" at v9+, leaves it as is
/// ("v9+: keep 0, varint encoded null") instead of shrinking it to the one-byte compact count as
/// rd_kafka_buf_finalize_arraycnt does. The body is then 00 00 00 00 01 00 00: a compact null topics
/// array, then the three stray zero bytes read as AllowAutoTopicCreation=false,
/// IncludeTopicAuthorizedOperations=false and no tagged fields, and librdkafka's intended
/// AllowAutoTopicCreation=true, IncludeTopicAuthorizedOperations=false and empty tags (01 00 00)
/// are left over. Kafka brokers do not check for trailing request bytes, so this goes unnoticed.
let librdkafkaAllTopicsMetadata =
    "librdkafka writes the compact null topics count of an all-topics Metadata v12 request as 4 bytes (see above)"
let trailingBytes: [TrailingBytes] = [
    TrailingBytes(path: "kcat-metadata-apiversions/0004-c2s-Metadata-v12-corr3.bin", trailing: [1, 0, 0], reason: librdkafkaAllTopicsMetadata),
    TrailingBytes(path: "kcat-metadata-apiversions/0010-c2s-Metadata-v12-corr3.bin", trailing: [1, 0, 0], reason: librdkafkaAllTopicsMetadata),
]

/// The header of a frame, decoded at the version the API and version of the index imply.
enum FrameHeader {
    case request(RequestHeader, version: Int16)
    case response(ResponseHeader, version: Int16)

    func encoded() throws -> [UInt8] {
        switch self {
        case let .request(h, v): try h.encoded(version: v)
        case let .response(h, v): try h.encoded(version: v)
        }
    }
}

/// Decodes the header of `bytes` at `headerVersion`; returns it and where the body starts.
func decodeHeader(_ frame: Frame, _ bytes: [UInt8], headerVersion: Int16) throws -> (FrameHeader, Int) {
    var r = WireReader(bytes)
    if frame.entry.isRequest {
        let h = try RequestHeader(from: &r, version: headerVersion)
        return (.request(h, version: headerVersion), r.position)
    }
    let h = try ResponseHeader(from: &r, version: headerVersion)
    return (.response(h, version: headerVersion), r.position)
}

/// The header version a frame of this API and version uses.
func headerVersion<R: KafkaRequest>(_: R.Type, _ entry: FrameEntry) -> Int16 {
    entry.isRequest ? R.requestHeaderVersion(entry.apiVersion) : R.Response.responseHeaderVersion(entry.apiVersion)
}

/// Decodes a frame's body as `M` (which must use the whole body), after its header.
func decodeBody<M: KafkaMessage>(_ frame: Frame, as _: M.Type, headerVersion: Int16) throws -> M {
    let bytes = try frame.bytes()
    let (_, bodyStart) = try decodeHeader(frame, bytes, headerVersion: headerVersion)
    return try M.decode(Array(bytes[bodyStart...]), version: frame.entry.apiVersion)
}

/// The body of a Produce/Fetch/JoinGroup/... frame, typed.
func body<R: KafkaRequest>(of frame: Frame, request _: R.Type) throws -> R {
    try decodeBody(frame, as: R.self, headerVersion: headerVersion(R.self, frame.entry))
}
func body<R: KafkaRequest>(of frame: Frame, responseTo _: R.Type) throws -> R.Response {
    try decodeBody(frame, as: R.Response.self, headerVersion: headerVersion(R.self, frame.entry))
}

func responseType<R: KafkaRequest>(of _: R.Type) -> any KafkaResponse.Type { R.Response.self }

func hex(_ b: ArraySlice<UInt8>) -> String { b.map { String(format: "%02x", $0) }.joined() }

/// Records an issue if `actual` differs from `expected`, saying where. (`#expect(a == b)` on arrays
/// of hundreds of bytes prints them whole.)
func expectSame(
    _ actual: [UInt8], _ expected: [UInt8], _ what: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard actual != expected else { return }
    Issue.record("\(what()): \(firstDifference(expected, actual))", sourceLocation: sourceLocation)
}

/// Where two byte arrays first differ, for failure messages.
func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> String {
    let i = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
    return "sizes \(a.count) and \(b.count), first difference at byte \(i): "
        + "\(hex(a[i..<min(a.count, i + 16)])) vs \(hex(b[i..<min(b.count, i + 16)]))"
}

@Suite("Captured frames")
struct FrameTests {
    @Test("The fixtures are present and indexed")
    func fixturesPresent() throws {
        #expect(Fixtures.folders.count >= 16, "Fixtures/ folders found at \(fixturesRoot.path): \(Fixtures.folders)")
        let frames = try Fixtures.loadFrames()
        #expect(frames.count == Fixtures.frames.count)
        #expect(frames.count >= 284)
        for folder in Fixtures.folders {
            let index = try Fixtures.index(folder)
            // The index lists exactly the .bin files of the folder.
            let files = try FileManager.default.contentsOfDirectory(atPath: fixturesRoot.appendingPathComponent(folder).path)
                .filter { $0.hasSuffix(".bin") }
            #expect(Set(files) == Set(index.frames.map(\.file)), "\(folder): index.json and the .bin files differ")
            // Every response answers a request of the same connection (the index's api key of a
            // response is taken from that request).
            let requests = Set(index.frames.filter(\.isRequest).map { "\($0.connection)/\($0.correlationId)/\($0.apiKey)/\($0.apiVersion)" })
            for e in index.frames where !e.isRequest {
                #expect(requests.contains("\(e.connection)/\(e.correlationId)/\(e.apiKey)/\(e.apiVersion)"), "\(folder)/\(e.file): no request")
            }
        }
    }

    @Test("The exclusions are still needed: their APIs are not generated, and the fixtures use them")
    func exclusionsAreCurrent() {
        for (api, _) in notGeneratedApis {
            let generated = api.requestType != nil
            #expect(!generated, "\(api) is generated now: remove it from notGeneratedApis")
            #expect(Fixtures.frames.contains { $0.entry.apiKey == api.rawValue }, "no fixture uses \(api): remove it from notGeneratedApis")
        }
        for rule in explicitDefaultTags {
            let used = Fixtures.frames.contains {
                $0.entry.apiKey == rule.api.rawValue && $0.entry.apiVersion == rule.version && !$0.entry.isRequest
            }
            #expect(used, "no \(rule.api) v\(rule.version) response in the fixtures: remove it from explicitDefaultTags")
        }
        for t in trailingBytes {
            #expect(Fixtures.frame(t.path) != nil, "\(t.path) listed in trailingBytes does not exist")
        }
    }

    /// Header, whole-body decode with the generated type at the captured version, and byte-exact
    /// re-encoding of header and body.
    @Test("Every frame decodes with the generated types and re-encodes to its own bytes", arguments: Fixtures.frames)
    func frameDecodesAndReencodes(_ frame: Frame) throws {
        let e = frame.entry
        let bytes = try frame.bytes()
        #expect(bytes.count == e.length, "index length")
        #expect(e.file.contains("-\(e.direction)-\(e.apiName)-v\(e.apiVersion)-corr\(e.correlationId)"), "file name and index disagree")
        let api = try #require(ApiKey(rawValue: e.apiKey), "unknown API key \(e.apiKey)")
        #expect(api.name == e.apiName)

        guard let requestType = api.requestType else {
            guard let excluded = notGeneratedApis[api] else {
                Issue.record("\(api) (key \(e.apiKey)) v\(e.apiVersion) has no generated types: generate it, or list it in notGeneratedApis with a reason")
                return
            }
            // Header only: the body is opaque.
            let (header, _) = try decodeHeader(
                frame, bytes, headerVersion: e.isRequest ? excluded.requestHeaderVersion : excluded.responseHeaderVersion)
            try checkHeader(header, frame, bytes)
            return
        }
        let lookedUpResponse: ObjectIdentifier? = api.responseType.map { ObjectIdentifier($0) }
        #expect(lookedUpResponse == ObjectIdentifier(responseType(of: requestType)))
        #expect(requestType.validVersions.contains(e.apiVersion), "\(requestType) does not know version \(e.apiVersion)")
        try check(frame, bytes, api: requestType)
    }

    func check<R: KafkaRequest>(_ frame: Frame, _ bytes: [UInt8], api _: R.Type) throws {
        if frame.entry.isRequest {
            try roundTrip(frame, bytes, as: R.self, headerVersion: headerVersion(R.self, frame.entry))
        } else {
            try roundTrip(frame, bytes, as: R.Response.self, headerVersion: headerVersion(R.self, frame.entry))
        }
    }

    func checkHeader(_ header: FrameHeader, _ frame: Frame, _ bytes: [UInt8]) throws {
        let e = frame.entry
        switch header {
        case let .request(h, version):
            #expect(h.requestApiKey == e.apiKey)
            #expect(h.requestApiVersion == e.apiVersion)
            #expect(h.correlationId == e.correlationId)
            #expect(h.clientId?.isEmpty == false, "client id")
            if version >= 2 { #expect(h.unknownTaggedFields.isEmpty, "request header tagged fields") }
        case let .response(h, _):
            #expect(h.correlationId == e.correlationId)
        }
        let encoded = try header.encoded()
        expectSame(encoded, Array(bytes.prefix(encoded.count)), "header re-encoding")
    }

    func roundTrip<M: KafkaMessage>(_ frame: Frame, _ bytes: [UInt8], as _: M.Type, headerVersion: Int16) throws {
        let e = frame.entry
        let (header, bodyStart) = try decodeHeader(frame, bytes, headerVersion: headerVersion)
        try checkHeader(header, frame, bytes)
        var body = Array(bytes[bodyStart...])
        if let t = trailingBytes.first(where: { $0.path == frame.path }) {
            // A known peer bug (see `trailingBytes`): exactly these bytes are left over.
            var r = WireReader(body)
            _ = try M(from: &r, version: e.apiVersion)
            #expect(Array(body[r.position...]) == t.trailing, "\(t.reason)")
            body = Array(body[..<r.position])
        }
        // Whole body consumed: `decode` throws on trailing bytes.
        let value = try M.decode(body, version: e.apiVersion)
        let encoded = try value.encoded(version: e.apiVersion)
        guard encoded != body else { return }
        guard let rule = explicitDefaultTags.first(where: { $0.api.rawValue == e.apiKey && $0.version == e.apiVersion && !e.isRequest }) else {
            Issue.record("\(M.self) v\(e.apiVersion) re-encoding: \(firstDifference(body, encoded))")
            return
        }
        // Top-level tagged fields written at their defaults (see `explicitDefaultTags`): ours has
        // none (a 0 count), theirs has exactly the rule's tags.
        let prefix = Array(encoded.dropLast())
        #expect(encoded.last == 0, "\(rule.reason)")
        expectSame(prefix, Array(body.prefix(prefix.count)), "\(M.self) v\(e.apiVersion) re-encoding, before the tagged fields (\(rule.reason))")
        var r = WireReader(body, range: min(prefix.count, body.count)..<body.count)
        let tags = try r.readTaggedFields()
        #expect(r.isAtEnd)
        #expect(tags.map(\.tag) == rule.tags, "tagged fields \(tags.map(\.tag)), expected \(rule.tags) (\(rule.reason))")
        #expect(try M.decode(encoded, version: e.apiVersion) == value)
    }
}

@Suite("Generated API registry")
struct RegistryTests {
    @Test("ApiKey.requestType, responseType and allRequestTypes agree with the generated types")
    func registry() {
        let typed = ApiKey.allCases.filter { $0.requestType != nil }
        #expect(allRequestTypes.count == typed.count)
        #expect(typed.count >= 35)
        for type in allRequestTypes {
            let key: Int16 = type.apiKey
            let response: any KafkaResponse.Type = responseType(of: type)
            guard let api = ApiKey(rawValue: key) else {
                Issue.record("\(type): unknown key \(key)")
                continue
            }
            let lookedUp: ObjectIdentifier? = api.requestType.map { ObjectIdentifier($0) }
            let lookedUpResponse: ObjectIdentifier? = api.responseType.map { ObjectIdentifier($0) }
            #expect(lookedUp == ObjectIdentifier(type), "\(api).requestType")
            #expect(lookedUpResponse == ObjectIdentifier(response), "\(api).responseType")
            #expect(response.apiKey == key)
            #expect("\(type)" == "\(api.name)Request")
        }
        let keys: [Int16] = allRequestTypes.map { $0.apiKey }
        #expect(keys == keys.sorted())
        #expect(ApiKey.getTelemetrySubscriptions.requestType == nil && ApiKey.getTelemetrySubscriptions.responseType == nil)
    }

    @Test("Every API and version of the fixtures is generated (or explicitly excluded)")
    func fixtureApisCovered() {
        var seen: Set<String> = []
        for f in Fixtures.frames {
            guard let api = ApiKey(rawValue: f.entry.apiKey) else {
                Issue.record("unknown api key \(f.entry.apiKey) in \(f)")
                continue
            }
            guard seen.insert("\(api) v\(f.entry.apiVersion)").inserted else { continue }
            if let t = api.requestType {
                #expect(t.validVersions.contains(f.entry.apiVersion), "\(api) v\(f.entry.apiVersion)")
            } else {
                #expect(notGeneratedApis[api] != nil, "\(api) (in \(f)) is neither generated nor excluded")
            }
        }
    }
}
