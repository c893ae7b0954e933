import Testing
@testable import KafkaWire

@Suite struct PartitionerTests {
    /// The Java client's own test vectors (UtilsTest.testMurmur2).
    @Test(arguments: [
        ("21", Int32(-973932308)),
        ("foobar", -790332482),
        ("a-little-bit-long-string", -985981536),
        ("a-little-bit-longer-string", -1486304829),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        ("abc", 479470107),
    ])
    func murmur2MatchesJava(input: String, expected: Int32) {
        #expect(murmur2(Array(input.utf8)) == expected)
    }

    @Test func partitionIsPositiveAndInRange() {
        for i in 0..<2000 {
            let p = partitionForKey(Array("key-\(i)".utf8), partitionCount: 7)
            #expect((0..<7).contains(p))
        }
        #expect(partitionForKey([], partitionCount: 3) == (murmur2([]) & 0x7fff_ffff) % 3)
    }

    @Test func brokerAddressParsing() {
        #expect(BrokerAddress("127.0.0.1:19092") == BrokerAddress(host: "127.0.0.1", port: 19092))
        #expect(BrokerAddress("tcp://kafka:9093") == BrokerAddress(host: "kafka", port: 9093))
        #expect(BrokerAddress("[::1]:9092") == BrokerAddress(host: "::1", port: 9092))
        #expect(BrokerAddress("broker") == BrokerAddress(host: "broker", port: 9092))
        #expect(BrokerAddress("host:0") == nil)
        #expect(BrokerAddress("host:notaport") == nil)
        #expect(BrokerAddress(":9092") == nil)
        #expect(BrokerAddress.list("a:1, b:2,,c:3").map(\.port) == [1, 2, 3])
    }
}

@Suite struct VersionNegotiationTests {
    @Test func picksHighestCommonVersion() throws {
        let table = ApiVersionTable(broker: [ApiKey.produce.rawValue: 0...9, ApiKey.fetch.rawValue: 0...17, ApiKey.metadata.rawValue: 0...12])
        #expect(try table.version(for: ProduceRequest.self) == 9)
        // Fetch is capped at 12 (v13+ addresses topics by id).
        #expect(try table.version(for: FetchRequest.self) == 12)
        #expect(try table.version(for: MetadataRequest.self) == 12)
    }

    @Test func respectsKafka4Floors() {
        // A broker that only speaks Produce v0-2 cannot take record batch v2.
        let table = ApiVersionTable(broker: [ApiKey.produce.rawValue: 0...2, ApiKey.fetch.rawValue: 0...3])
        #expect(throws: KafkaError.self) { try table.version(for: ProduceRequest.self) }
        #expect(throws: KafkaError.self) { try table.version(for: FetchRequest.self) }
        #expect(throws: KafkaError.self) { try table.version(for: ListOffsetsRequest.self) }
    }

    @Test func brokerFloorAboveOurs() throws {
        let table = ApiVersionTable(broker: [ApiKey.produce.rawValue: 3...11])
        #expect(try table.version(for: ProduceRequest.self) == min(11, ProduceRequest.validVersions.upperBound))
    }
}
