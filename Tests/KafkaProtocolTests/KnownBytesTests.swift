import Testing
import KafkaProtocol

/// Encodings written out by hand from the protocol guide, checked byte for byte.
@Suite("Known bytes")
struct KnownBytesTests {
    @Test func apiVersionsRequestV3() throws {
        let req = ApiVersionsRequest(clientSoftwareName: "kw", clientSoftwareVersion: "1")
        // client_software_name: COMPACT_STRING "kw" (length+1 = 3), client_software_version: "1", no tagged fields.
        let expected: [UInt8] = [0x03, 0x6B, 0x77, 0x02, 0x31, 0x00]
        #expect(try req.encoded(version: 3) == expected)
        #expect(try ApiVersionsRequest.decode(expected, version: 3) == req)
        // Versions 0-2 have no body at all.
        #expect(try req.encoded(version: 0) == [])
        #expect(ApiVersionsRequest.apiKey == 18)
        #expect(ApiVersionsRequest.requestHeaderVersion(3) == 2)
        #expect(ApiVersionsResponse.responseHeaderVersion(3) == 0)
    }

    @Test func requestHeaderV2WithClientId() throws {
        let header = RequestHeader(requestApiKey: 18, requestApiVersion: 3, correlationId: 7, clientId: "kw")
        // api key, api version, correlation id, client_id as a classic NULLABLE_STRING even though v2 is
        // flexible (the spec's "flexibleVersions": "none" on ClientId), then the empty tagged-field section.
        let expected: [UInt8] = [0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x02, 0x6B, 0x77, 0x00]
        #expect(try header.encoded(version: 2) == expected)
        #expect(try RequestHeader.decode(expected, version: 2) == header)
        #expect(try header.encoded(version: 1) == Array(expected.dropLast()))
        var anonymous = header
        anonymous.clientId = nil
        #expect(try anonymous.encoded(version: 1) == [0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0xFF, 0xFF])
        // Version 0 has no client id.
        #expect(try RequestHeader(requestApiKey: 7, requestApiVersion: 0, correlationId: 1).encoded(version: 0)
            == [0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01])
    }

    @Test func responseHeaders() throws {
        let h = ResponseHeader(correlationId: 0x0102_0304)
        #expect(try h.encoded(version: 0) == [0x01, 0x02, 0x03, 0x04])
        #expect(try h.encoded(version: 1) == [0x01, 0x02, 0x03, 0x04, 0x00])
    }

    @Test func metadataRequestV12OneTopic() throws {
        let req = MetadataRequest(topics: [.init(name: "t")])
        let expected: [UInt8] = [0x02] // one topic (compact array: count + 1)
            + [UInt8](repeating: 0, count: 16) // topic_id: zero UUID
            + [0x02, 0x74, 0x00] // name "t", the topic's tagged fields
            + [0x01] // allow_auto_topic_creation (default true)
            + [0x00] // include_topic_authorized_operations
            + [0x00] // tagged fields
        #expect(try req.encoded(version: 12) == expected)
        #expect(try MetadataRequest.decode(expected, version: 12) == req)
    }

    @Test func metadataRequestNullTopicsMeansAll() throws {
        let all = MetadataRequest(topics: nil)
        #expect(try all.encoded(version: 12) == [0x00, 0x01, 0x00, 0x00])
        #expect(try all.encoded(version: 1) == [0xFF, 0xFF, 0xFF, 0xFF])
        // Version 0 has no null: an empty array meant "all topics" there.
        #expect(throws: KafkaEncodingError.nullNotAllowed(field: "MetadataRequest.topics")) { try all.encoded(version: 0) }
        // A null topic name is only allowed from version 10.
        let byId = MetadataRequest(topics: [.init(topicId: KafkaUUID(high: 1, low: 2), name: nil)])
        #expect(throws: KafkaEncodingError.self) { try byId.encoded(version: 9) }
        #expect(try MetadataRequest.decode(try byId.encoded(version: 10), version: 10) == byId)
    }

    @Test func nonIgnorableFieldMissingFromVersionIsRefused() {
        // allow_auto_topic_creation only exists from version 4 and is not ignorable.
        let req = MetadataRequest(topics: [], allowAutoTopicCreation: false)
        #expect(throws: KafkaEncodingError.nonDefaultValue(field: "MetadataRequest.allowAutoTopicCreation", version: 3)) {
            try req.encoded(version: 3)
        }
    }

    @Test func produceRequestV3() throws {
        let req = ProduceRequest(
            transactionalId: nil, acks: -1, timeoutMs: 1000,
            topicData: [.init(name: "t", partitionData: [.init(index: 0, records: [1, 2, 3])])])
        let expected: [UInt8] = [0xFF, 0xFF] // transactional_id: null
            + [0xFF, 0xFF] // acks -1
            + [0x00, 0x00, 0x03, 0xE8] // timeout_ms
            + [0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x74] // one topic "t"
            + [0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00] // one partition, index 0
            + [0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03] // records
        #expect(try req.encoded(version: 3) == expected)
        #expect(try ProduceRequest.decode(expected, version: 3) == req)
    }

    /// ApiVersionsResponse v3 with known tagged fields (0, 1, 3) and an unknown one (7).
    static let apiVersionsV3: [UInt8] = [0x00, 0x00] // error_code
        + [0x02, 0x00, 0x12, 0x00, 0x00, 0x00, 0x04, 0x00] // api_keys: [ApiVersions 0-4], its tagged fields
        + [0x00, 0x00, 0x00, 0x00] // throttle_time_ms
        + [0x04] // four tagged fields
        + [0x00, 0x08, 0x02, 0x02, 0x66, 0x00, 0x01, 0x00, 0x02, 0x00] // 0: supported_features [f 1-2]
        + [0x01, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x05] // 1: finalized_features_epoch 5
        + [0x03, 0x01, 0x01] // 3: zk_migration_ready true
        + [0x07, 0x02, 0xAA, 0xBB] // 7: unknown

    @Test func apiVersionsResponseV3WithUnknownTaggedField() throws {
        let resp = try ApiVersionsResponse.decode(Self.apiVersionsV3, version: 3)
        #expect(resp.errorCode == 0)
        #expect(resp.apiKeys == [.init(apiKey: 18, minVersion: 0, maxVersion: 4)])
        #expect(resp.throttleTimeMs == 0)
        #expect(resp.supportedFeatures == [.init(name: "f", minVersion: 1, maxVersion: 2)])
        #expect(resp.finalizedFeaturesEpoch == 5)
        #expect(resp.finalizedFeatures == [])
        #expect(resp.zkMigrationReady == true)
        #expect(resp.unknownTaggedFields == [TaggedField(tag: 7, data: [0xAA, 0xBB])])
        #expect(try resp.encoded(version: 3) == Self.apiVersionsV3)
    }

    @Test func apiVersionsResponseV0() throws {
        let resp = ApiVersionsResponse(errorCode: 35, apiKeys: [.init(apiKey: 18, minVersion: 0, maxVersion: 3)])
        #expect(try resp.encoded(version: 0) == [0x00, 0x23, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x00, 0x00, 0x00, 0x03])
        #expect(KafkaErrorCode(rawValue: resp.errorCode) == .unsupportedVersion)
    }

    @Test func nullableStruct() throws {
        var resp = ConsumerGroupHeartbeatResponse(memberEpoch: 3, heartbeatIntervalMs: 5000)
        let base: [UInt8] = [0, 0, 0, 0, 0, 0, 0x00, 0x00, 0, 0, 0, 3, 0, 0, 0x13, 0x88]
        #expect(try resp.encoded(version: 0) == base + [0xFF, 0x00]) // null assignment: int8 -1
        resp.assignment = .init(topicPartitions: [.init(topicId: .zero, partitions: [1])])
        let present = try resp.encoded(version: 0)
        #expect(present == base + [0x01, 0x02] + [UInt8](repeating: 0, count: 16) + [0x02, 0, 0, 0, 1, 0x00, 0x00, 0x00])
        #expect(try ConsumerGroupHeartbeatResponse.decode(present, version: 0) == resp)
    }

    @Test func taggedStructFieldInFetchResponse() throws {
        var partition = FetchResponse.FetchableTopicResponse.PartitionData(partitionIndex: 0, records: [])
        partition.currentLeader = .init(leaderId: 2, leaderEpoch: 9)
        let resp = FetchResponse(responses: [.init(topic: "t", partitions: [partition])])
        let bytes = try resp.encoded(version: 12)
        let decoded = try FetchResponse.decode(bytes, version: 12)
        #expect(decoded.responses.first?.partitions.first?.currentLeader == .init(leaderId: 2, leaderEpoch: 9))
        #expect(decoded == resp)
        // The partition's tagged section: one field, tag 1, 9 bytes: leader id, leader epoch, no tagged fields.
        let taggedSection: [UInt8] = [0x01, 0x01, 0x09, 0, 0, 0, 2, 0, 0, 0, 9, 0x00]
        #expect(bytes.count >= taggedSection.count + 2)
        #expect(Array(bytes[(bytes.count - taggedSection.count - 2)..<(bytes.count - 2)]) == taggedSection)
    }

    @Test func unsupportedVersions() {
        #expect(throws: KafkaEncodingError.unsupportedVersion(message: "ProduceRequest", version: 99, validVersions: ProduceRequest.validVersions)) {
            try ProduceRequest().encoded(version: 99)
        }
        #expect(throws: WireDecodingError.self) { try ProduceResponse.decode([], version: -1) }
    }

    @Test func classicStringTooLong() {
        let req = DeleteGroupsRequest(groupsNames: [String(repeating: "x", count: 40_000)])
        #expect(throws: KafkaEncodingError.stringTooLong(field: "DeleteGroupsRequest.groupsNames[]", length: 40_000)) {
            try req.encoded(version: 1)
        }
        #expect(throws: Never.self) { try req.encoded(version: 2) }
    }

    @Test func apiKeys() {
        #expect(ApiKey.produce.rawValue == 0)
        #expect(ApiKey(rawValue: 18) == .apiVersions)
        #expect(ApiKey.apiVersions.name == "ApiVersions")
        #expect(ApiKey.name(for: 12_345) == "Unknown(12345)")
        #expect(ApiKey.allCases.count > 60)
        #expect(ApiKey.allCases.map(\.rawValue) == ApiKey.allCases.map(\.rawValue).sorted())
    }
}
