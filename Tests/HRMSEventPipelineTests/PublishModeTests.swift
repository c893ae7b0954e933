import Foundation
import HRMSEventPipeline
import HRMSEvents
import SQLiteNIO
import Testing

/// The old endpoints' side, kept in SQLite: what arrived over HTTP.
final class SQLiteHTTPEndpoint: HTTPEventFallback {
    let db: SQLiteDB
    init(_ db: SQLiteDB) async throws {
        self.db = db
        _ = try await db.query("CREATE TABLE received (event_id TEXT NOT NULL, stream TEXT NOT NULL)")
    }
    func deliver(_ event: OutboxEvent) async throws {
        _ = try await db.query("INSERT INTO received (event_id, stream) VALUES (?, ?)", [.text(event.eventId), .text(event.stream.rawValue)])
    }
    func received() async throws -> [String] {
        try await db.query("SELECT event_id FROM received ORDER BY rowid").map { $0.column("event_id")!.string! }
    }
}

/// EVENT_PUBLISH_MODE and OUTBOX_HTTP_FALLBACK_AFTER_MS, with no broker reachable (nothing listens
/// on port 1): what goes over HTTP is marked sent, what needs Kafka stays pending.
struct PublishModeTests {
    func setUp(_ name: String, mode: EventPublishMode, fallbackAfterMs: Int) async throws
        -> (OutboxRelay<SQLiteOutboxStore>, SQLiteOutboxStore, SQLiteHTTPEndpoint, SQLiteDB) {
        var settings = Broker.settings(name, bootstrap: "127.0.0.1:1")
        settings.client.connectTimeoutMs = 300
        settings.publishMode = mode
        settings.httpFallbackAfterMs = fallbackAfterMs
        let db = try await SQLiteDB.open(name)
        let store = try await SQLiteOutboxStore(db)
        let endpoint = try await SQLiteHTTPEndpoint(db)
        var config = OutboxRelay<SQLiteOutboxStore>.Config(settings: settings, serviceName: "leave-service")
        config.deliveryTimeoutMs = 500
        return (OutboxRelay(config: config, store: store, httpFallback: endpoint), store, endpoint, db)
    }

    @Test func httpModeSendsEverythingOverHTTPInOrder() async throws {
        let (relay, store, endpoint, db) = try await setUp("mode-http", mode: .http, fallbackAfterMs: 0)
        let events = (0..<6).map { $0 % 2 == 0 ? Samples.audit($0) : Samples.notification($0) }
        try await store.insert(events)
        #expect(await relay.relayOnce())
        #expect(try await endpoint.received() == events.map(\.eventId))
        #expect(try await store.depth() == 0)
        await db.close()
    }

    @Test func kafkaModeFallsBackToHTTPOnlyForRowsOlderThanTheThreshold() async throws {
        let (relay, store, endpoint, db) = try await setUp("mode-fallback", mode: .kafka, fallbackAfterMs: 2_000)
        let old = (0..<3).map { Samples.audit($0) }
        let fresh = (3..<5).map { Samples.notification($0) }
        try await store.insert(old, createdAt: Date().addingTimeInterval(-10))
        try await store.insert(fresh)
        #expect(await !relay.relayOnce())  // the fresh rows could not reach Kafka
        #expect(try await endpoint.received() == old.map(\.eventId))
        let rows = try await store.all()
        #expect(rows.filter(\.sent).map(\.eventId) == old.map(\.eventId))
        #expect(rows.filter { !$0.sent }.map(\.eventId) == fresh.map(\.eventId))
        await db.close()
    }

    @Test func dualModeMarksNothingSentWhileKafkaIsDown() async throws {
        let (relay, store, endpoint, db) = try await setUp("mode-dual", mode: .dual, fallbackAfterMs: 0)
        try await store.insert([Samples.audit(1)])
        #expect(await !relay.relayOnce())
        #expect(try await endpoint.received().isEmpty)
        #expect(try await store.depth() == 1)
        await db.close()
    }
}
