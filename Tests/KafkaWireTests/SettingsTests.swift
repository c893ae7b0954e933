import KafkaWire
import Testing

/// Client settings by their Kafka names: each config takes its own and delegates the shared ones.
@Suite struct SettingsTests {
    @Test func clientSettings() throws {
        var c = ClientConfig(bootstrapServers: "a:1")
        try c.apply([
            "bootstrap.servers": "h1:9092, [::1]:9093,h3", "client.id": "svc", "request.timeout.ms": "1500",
            "socket.connection.setup.timeout.ms": "700", "metadata.max.age.ms": "0", "retry.backoff.ms": "5",
            "reconnect.backoff.ms": "10", "reconnect.backoff.max.ms": "20",
        ])
        #expect(c.bootstrapServers == [BrokerAddress(host: "h1", port: 9092), BrokerAddress(host: "::1", port: 9093), BrokerAddress(host: "h3", port: 9092)])
        #expect(c.clientId == "svc")
        #expect(c.requestTimeoutMs == 1500 && c.connectTimeoutMs == 700 && c.metadataMaxAgeMs == 0)
        #expect(c.retryBackoffMs == 5 && c.reconnectBackoffMs == 10 && c.reconnectBackoffMaxMs == 20)
        #expect(c.settings["bootstrap.servers"] == "h1:9092,[::1]:9093,h3:9092")
        #expect(Set(c.settings.keys) == ClientConfig.settingNames)
    }

    @Test func producerSettingsDelegateTheClientOnes() throws {
        var p = ProducerConfig(bootstrapServers: "a:1")
        try p.apply([
            "acks": "1", "linger.ms": "20", "batch.size": "1000", "compression.type": "zstd", "delivery.timeout.ms": "9000",
            "buffer.memory": "4096", "max.block.ms": "0", "max.in.flight.requests.per.connection": "2", "client.id": "prod",
        ])
        #expect(p.acks == .leader && p.lingerMs == 20 && p.batchSize == 1000 && p.compression == .zstd)
        #expect(p.deliveryTimeoutMs == 9000 && p.bufferMemory == 4096 && p.maxBlockMs == 0 && p.maxInFlightPerConnection == 2)
        #expect(p.client.clientId == "prod")
        // acks=1 turns the default idempotence off (as the Java client does), without an error.
        #expect(p.enableIdempotence == nil && !p.wantsIdempotence && p.settings["enable.idempotence"] == "false")
        try p.apply([
            "enable.idempotence": "false", "retries": "7", "retry.backoff.max.ms": "900", "queue.buffering.max.messages": "33",
        ])
        #expect(p.enableIdempotence == false && p.retries == 7 && p.retryBackoffMaxMs == 900 && p.maxBufferedRecords == 33)
        for (text, acks) in [("0", Acks.none), ("all", .all), ("-1", .all)] {
            try p.apply(["acks": text])
            #expect(p.acks == acks)
        }
        #expect(Set(p.settings.keys) == ProducerConfig.settingNames)
        let round = try ProducerConfig(settings: p.settings)
        #expect(round.settings == p.settings)
    }

    @Test func consumerAndGroupSettings() throws {
        var g = GroupConsumerConfig(bootstrapServers: "a:1", groupId: "g")
        try g.apply([
            "group.id": "audit", "group.instance.id": "i-1", "session.timeout.ms": "6000", "heartbeat.interval.ms": "500",
            "max.poll.interval.ms": "10000", "partition.assignment.strategy": "cooperative-sticky,org.apache.kafka.clients.consumer.RangeAssignor",
            "enable.auto.commit": "false", "auto.commit.interval.ms": "100",
            "fetch.min.bytes": "10", "fetch.max.bytes": "2000", "max.partition.fetch.bytes": "1000", "fetch.max.wait.ms": "50",
            "isolation.level": "read_committed", "auto.offset.reset": "earliest", "client.id": "grp",
            "max.partition.buffered.bytes": "65536", "enable.fetch.sessions": "false",
        ])
        #expect(g.groupId == "audit" && g.groupInstanceId == "i-1" && g.sessionTimeoutMs == 6000 && g.heartbeatIntervalMs == 500)
        #expect(g.maxPollIntervalMs == 10000 && g.assignors.map(\.name) == ["cooperative-sticky", "range"])
        #expect(!g.enableAutoCommit && g.autoCommitIntervalMs == 100)
        #expect(g.consumer.fetchMinBytes == 10 && g.consumer.fetchMaxBytes == 2000 && g.consumer.maxPartitionFetchBytes == 1000)
        #expect(g.consumer.fetchMaxWaitMs == 50 && g.consumer.readCommitted && g.consumer.autoOffsetReset == .earliest)
        #expect(g.consumer.client.clientId == "grp")
        #expect(g.consumer.maxPartitionBufferedBytes == 65536 && !g.consumer.fetchSessions)
        #expect(Set(g.settings.keys) == GroupConsumerConfig.settingNames)
        let round = try GroupConsumerConfig(settings: g.settings)
        #expect(round.settings == g.settings)
    }

    @Test func unknownNamesAndBadValuesAreRejectedAndLeaveTheConfigAsItWas() throws {
        var p = ProducerConfig(bootstrapServers: "a:1")
        let before = p.settings
        for bad in [
            ["no.such.setting": "1"], ["group.id": "g"], ["linger.ms": "soon"], ["linger.ms": "-1"], ["acks": "2"],
            ["compression.type": "brotli"], ["batch.size": "0"], ["bootstrap.servers": ""], ["bootstrap.servers": "h:99999"],
            ["linger.ms": "20", "request.timeout.ms": "x"], ["enable.idempotence": "yes"], ["queue.buffering.max.messages": "0"],
            // Idempotence asked for explicitly with settings it cannot work with.
            ["enable.idempotence": "true", "max.in.flight.requests.per.connection": "6"],
            ["enable.idempotence": "true", "acks": "1"], ["enable.idempotence": "true", "retries": "0"],
        ] {
            #expect(throws: KafkaError.self) { try p.apply(bad) }
            #expect(p.settings == before)
        }
        var c = ConsumerConfig(bootstrapServers: "a:1")
        #expect(throws: KafkaError.self) { try c.apply(["isolation.level": "dirty"]) }
        #expect(throws: KafkaError.self) { try c.apply(["linger.ms": "1"]) }
        #expect(throws: KafkaError.self) { try c.apply(["max.partition.buffered.bytes": "0"]) }
        #expect(throws: KafkaError.self) { try c.apply(["enable.fetch.sessions": "maybe"]) }
        var g = GroupConsumerConfig(bootstrapServers: "a:1", groupId: "g")
        #expect(throws: KafkaError.self) { try g.apply(["partition.assignment.strategy": "sticky"]) }
        #expect(throws: KafkaError.self) { try g.apply(["enable.auto.commit": "yes"]) }
        #expect(throws: KafkaError.self) { try GroupConsumerConfig(settings: ["bootstrap.servers": "a:1"]) }
        #expect(throws: KafkaError.self) { try ClientConfig(settings: ["client.id": "x"]) }
        do {
            try p.apply(["no.such.setting": "1"])
        } catch {
            #expect(error.description.contains("no.such.setting"))
        }
        do {
            try p.apply(["enable.idempotence": "true", "max.in.flight.requests.per.connection": "6"])
        } catch {
            #expect(error.description.contains("max.in.flight.requests.per.connection <= 5"))
        }
        // By default, a setting idempotence cannot work with turns it off instead of failing.
        try p.apply(["max.in.flight.requests.per.connection": "6"])
        #expect(!p.wantsIdempotence)
    }

    @Test func fromTheEnvironment() throws {
        let env = [
            "KAFKA_BOOTSTRAP_SERVERS": "h:1", "KAFKA_GROUP_ID": "g", "KAFKA_LINGER_MS": "7",
            "KAFKA_MAX_POLL_INTERVAL_MS": "1000", "KAFKA_HOME": "/opt/kafka", "OTHER": "x",
        ]
        let settings = KafkaSettings.environment(env)
        #expect(settings == ["bootstrap.servers": "h:1", "group.id": "g", "linger.ms": "7", "max.poll.interval.ms": "1000"])
        let g = try GroupConsumerConfig(settings: settings.filter { GroupConsumerConfig.settingNames.contains($0.key) })
        #expect(g.groupId == "g" && g.maxPollIntervalMs == 1000 && g.consumer.client.bootstrapServers == [BrokerAddress(host: "h", port: 1)])
        #expect(KafkaSettings.environment(prefix: "APP_", ["APP_CLIENT_ID": "svc"]) == ["client.id": "svc"])
        #expect(KafkaSettings.parseAssignment("a=b=c")! == ("a", "b=c"))
        #expect(KafkaSettings.parseAssignment("=x") == nil && KafkaSettings.parseAssignment("x") == nil)
    }
}
