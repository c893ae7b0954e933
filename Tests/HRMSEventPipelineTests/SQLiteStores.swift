import Foundation
import HRMSEventPipeline
import HRMSEvents
import SQLiteNIO

/// One SQLite database file, its statements run one caller at a time (a transaction's statements
/// must not interleave with another caller's).
actor SQLiteDB {
    let connection: SQLiteConnection
    let path: String
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    static func open(_ name: String) async throws -> SQLiteDB {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hrms-\(name)-\(UUID().uuidString).sqlite").path
        return SQLiteDB(try await SQLiteConnection.open(storage: .file(path: path)), path: path)
    }

    private init(_ c: SQLiteConnection, path: String) {
        connection = c
        self.path = path
    }

    private func lock() async {
        if !busy { busy = true; return }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func unlock() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }

    /// Runs `body` alone on the connection; with `transaction`, inside BEGIN IMMEDIATE / COMMIT
    /// (ROLLBACK when it throws).
    func exclusive<T: Sendable>(transaction: Bool = false, _ body: @Sendable (SQLiteConnection) async throws -> T) async throws -> T {
        await lock()
        defer { unlock() }
        if transaction { _ = try await connection.query("BEGIN IMMEDIATE") }
        do {
            let out = try await body(connection)
            if transaction { _ = try await connection.query("COMMIT") }
            return out
        } catch {
            if transaction { _ = try? await connection.query("ROLLBACK") }
            throw error
        }
    }

    func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await exclusive { try await $0.query(sql, binds) }
    }

    func close() async {
        try? await connection.close()
        try? FileManager.default.removeItem(atPath: path)
    }
}

func text(_ s: String?) -> SQLiteData { s.map { .text($0) } ?? .null }

/// The outbox table a service keeps (the service kit's will look alike).
final class SQLiteOutboxStore: OutboxStore {
    let db: SQLiteDB

    init(_ db: SQLiteDB) async throws {
        self.db = db
        _ = try await db.query("""
            CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL,
              event_type TEXT NOT NULL, message_key TEXT NOT NULL, correlation_id TEXT, source_service TEXT NOT NULL,
              payload TEXT NOT NULL, created_at REAL NOT NULL, sent_at REAL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
              http_sent_at REAL)
            """)
    }

    /// What a business transaction does: one row per event.
    func insert(_ events: [OutboxEvent], createdAt: Date = Date()) async throws {
        try await db.exclusive(transaction: true) { c in
            for e in events {
                _ = try await c.query("""
                    INSERT INTO outbox (event_id, stream, event_type, message_key, correlation_id, source_service, payload, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(e.eventId), .text(e.stream.rawValue), .text(e.eventType), .text(e.key), text(e.correlationId),
                          .text(e.sourceService), .text(String(decoding: e.payload, as: UTF8.self)), .float(createdAt.timeIntervalSince1970)])
            }
        }
    }

    func fetchPending(limit: Int) async throws -> [OutboxRow] {
        try await db.query("SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?", [.integer(limit)]).map { r in
            let event = OutboxEvent(
                eventId: r.column("event_id")!.string!, stream: EventStream(rawValue: r.column("stream")!.string!)!,
                eventType: r.column("event_type")!.string!, key: r.column("message_key")!.string!,
                correlationId: r.column("correlation_id")?.string, sourceService: r.column("source_service")!.string!,
                payload: Array(r.column("payload")!.string!.utf8))
            return OutboxRow(seq: Int64(r.column("seq")!.integer!), event: event,
                             createdAt: Date(timeIntervalSince1970: r.column("created_at")!.double!),
                             attempts: r.column("attempts")!.integer!,
                             httpDelivered: !(r.column("http_sent_at")?.isNull ?? true))
        }
    }

    func markSent(_ seqs: [Int64]) async throws {
        let now = Date().timeIntervalSince1970
        try await db.exclusive(transaction: true) { c in
            for s in seqs { _ = try await c.query("UPDATE outbox SET sent_at = ? WHERE seq = ?", [.float(now), .integer(Int(s))]) }
        }
    }

    func markHTTPDelivered(eventIds: [String], done: Bool) async throws {
        let now = Date().timeIntervalSince1970
        try await db.exclusive(transaction: true) { c in
            for id in eventIds {
                _ = try await c.query("UPDATE outbox SET http_sent_at = ?, sent_at = CASE WHEN ? THEN ? ELSE sent_at END WHERE event_id = ?",
                                      [.float(now), .integer(done ? 1 : 0), .float(now), .text(id)])
            }
        }
    }

    func recordFailure(seq: Int64, error: String) async throws {
        _ = try await db.query("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?", [.text(error), .integer(Int(seq))])
    }

    func depth() async throws -> Int {
        try await db.query("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")[0].column("n")!.integer!
    }

    func oldestPendingAge() async throws -> TimeInterval? {
        let rows = try await db.query("SELECT MIN(created_at) AS t FROM outbox WHERE sent_at IS NULL")
        return rows[0].column("t")?.double.map { Date().timeIntervalSince1970 - $0 }
    }

    /// (event_id, sent) in seq order.
    func all() async throws -> [(eventId: String, sent: Bool, attempts: Int)] {
        try await db.query("SELECT event_id, sent_at, attempts FROM outbox ORDER BY seq").map {
            ($0.column("event_id")!.string!, !($0.column("sent_at")?.isNull ?? true), $0.column("attempts")!.integer!)
        }
    }
}

final class SQLiteNotificationStore: NotificationStore {
    let db: SQLiteDB

    init(_ db: SQLiteDB) async throws {
        self.db = db
        _ = try await db.query("""
            CREATE TABLE notifications (event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, correlation_id TEXT,
              recipient TEXT NOT NULL, subject TEXT NOT NULL, body TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL,
              error TEXT, source_offset INTEGER NOT NULL)
            """)
    }

    func alreadyHandled(eventId: String) async throws -> Bool {
        try await !db.query("SELECT 1 FROM notifications WHERE event_id = ? AND status = 'sent'", [.text(eventId)]).isEmpty
    }

    func recordOutcome(_ o: NotificationOutcome) async throws {
        _ = try await db.query("""
            INSERT OR REPLACE INTO notifications (event_id, event_type, correlation_id, recipient, subject, body, status, attempts, error, source_offset)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(o.eventId), .text(o.eventType), text(o.correlationId), .text(o.recipientEmail), .text(o.subject),
                  text(o.body), .text(o.status.rawValue), .integer(o.attempts), text(o.error), .integer(Int(o.offset))])
    }

    func outcomes() async throws -> [String: (status: String, attempts: Int)] {
        var out: [String: (String, Int)] = [:]
        for r in try await db.query("SELECT event_id, status, attempts FROM notifications") {
            out[r.column("event_id")!.string!] = (r.column("status")!.string!, r.column("attempts")!.integer!)
        }
        return out
    }
}

final class SQLiteAuditStore: AuditStore {
    let db: SQLiteDB

    init(_ db: SQLiteDB) async throws {
        self.db = db
        _ = try await db.query("""
            CREATE TABLE audit_logs (event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, timestamp TEXT NOT NULL,
              source_service TEXT NOT NULL, correlation_id TEXT, user_id TEXT, action TEXT NOT NULL, resource_type TEXT NOT NULL,
              resource_id TEXT NOT NULL, description TEXT, ip_address TEXT, user_agent TEXT, old_value TEXT, new_value TEXT, changes TEXT)
            """)
        _ = try await db.query("CREATE TABLE batches (id INTEGER PRIMARY KEY AUTOINCREMENT, size INTEGER NOT NULL)")
    }

    @discardableResult
    func insertBatch(_ entries: [AuditEntry]) async throws -> Int {
        try await db.exclusive(transaction: true) { c in
            var inserted = 0
            for e in entries {
                _ = try await c.query("""
                    INSERT OR IGNORE INTO audit_logs (event_id, event_type, timestamp, source_service, correlation_id, user_id, action,
                      resource_type, resource_id, description, ip_address, user_agent, old_value, new_value, changes)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(e.eventId), .text(e.eventType), .text(e.timestamp), .text(e.sourceService), text(e.correlationId),
                          text(e.data.userId), .text(e.data.action), .text(e.data.resourceType), .text(e.data.resourceId),
                          text(e.data.description), text(e.data.ipAddress), text(e.data.userAgent), json(e.data.oldValue),
                          json(e.data.newValue), json(e.data.changes)])
                inserted += try await c.query("SELECT changes() AS n")[0].column("n")!.integer!
            }
            _ = try await c.query("INSERT INTO batches (size) VALUES (?)", [.integer(entries.count)])
            return inserted
        }
    }

    /// Every row, every column, as text, ordered by event id (for comparing two stores).
    func dump() async throws -> [[String]] {
        try await db.query("SELECT * FROM audit_logs ORDER BY event_id").map { r in r.columns.map { "\($0.name)=\($0.data)" } }
    }

    func eventIds() async throws -> Set<String> {
        Set(try await db.query("SELECT event_id FROM audit_logs").map { $0.column("event_id")!.string! })
    }

    /// Sizes of the store calls made.
    func batchSizes() async throws -> [Int] {
        try await db.query("SELECT size FROM batches ORDER BY id").map { $0.column("size")!.integer! }
    }
}

private func json(_ v: JSONValue?) -> SQLiteData {
    guard let v else { return .null }
    let e = JSONEncoder()
    e.outputFormatting = .sortedKeys
    return (try? e.encode(v)).map { .text(String(decoding: $0, as: UTF8.self)) } ?? .null
}
