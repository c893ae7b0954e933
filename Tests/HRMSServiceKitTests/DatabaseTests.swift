import Foundation
import HRMSServiceKit
import Logging
import Testing

/// The storage layer on SQLite always, and on PostgreSQL when HRMS_TEST_POSTGRES_URL names a server
/// (a database of its own is created and dropped per test).
struct DatabaseTests {
    static var backends: [String] {
        ProcessInfo.processInfo.environment["HRMS_TEST_POSTGRES_URL"].map { _ in ["sqlite", "postgres"] } ?? ["sqlite"]
    }

    /// Opens a fresh database of the backend, runs `body`, then removes it.
    static func withDatabase(_ backend: String, _ body: (Database) async throws -> Void) async throws {
        let logger = Logger(label: "test")
        if backend == "postgres", let base = ProcessInfo.processInfo.environment["HRMS_TEST_POSTGRES_URL"] {
            let name = "kit_\(UUID().uuidString.prefix(8).lowercased())"
            try psql(base, "CREATE DATABASE \(name)")
            let db = try await Database.open(.postgres(url: "\(base)/\(name)"), logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await db.postgresClient!.run() }
                do { try await body(db) } catch { group.cancelAll(); throw error }
                group.cancelAll()
            }
            try psql(base, "DROP DATABASE \(name) WITH (FORCE)")
        } else {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kit-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let db = try await Database.open(.sqlite(path: dir.appendingPathComponent("t.sqlite").path), logger: logger)
            try await body(db)
            await db.close()
        }
    }

    static func psql(_ base: String, _ sql: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        p.arguments = ["\(base)/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw DatabaseError("psql failed: \(sql)") }
    }

    static let migrations = [
        Migration(1, "things", ["CREATE TABLE things (id TEXT PRIMARY KEY, n BIGINT NOT NULL, flag INTEGER NOT NULL, note TEXT, ratio DOUBLE PRECISION)"]),
        Migration(2, "things index", ["CREATE INDEX things_n ON things (n)"]),
    ]

    @Test(arguments: backends)
    func migrationsRunOnceAndInOrder(backend: String) async throws {
        try await Self.withDatabase(backend) { db in
            try await db.migrate(Self.migrations)
            try await db.migrate(Self.migrations)   // again: nothing to do, no error
            let applied = try await db.query("SELECT scope, version FROM schema_migrations ORDER BY scope, version", [])
            let versions = try applied.map { "\(try $0.string("scope"))/\(try $0.int("version"))" }
            #expect(versions == ["kit/1", "kit/2", "service/1", "service/2"])
            // A later release adds a migration: only it runs.
            try await db.migrate(Self.migrations + [Migration(3, "column", ["ALTER TABLE things ADD COLUMN extra TEXT"])])
            #expect(try await db.count("SELECT COUNT(*) AS n FROM schema_migrations") == 5)
        }
    }

    @Test(arguments: backends)
    func typedValuesRoundTrip(backend: String) async throws {
        try await Self.withDatabase(backend) { db in
            try await db.migrate(Self.migrations)
            let note: String? = nil
            try await db.execute("INSERT INTO things (id, n, flag, note, ratio) VALUES (?, ?, ?, ?, ?)", ["a", 9_000_000_000, true, note, 0.25])
            try await db.execute("INSERT INTO things (id, n, flag, note, ratio) VALUES (?, ?, ?, ?, ?)", ["b?'x", -3, false, "it's ? here", nil as Double?])
            let a = try #require(try await db.queryOne("SELECT * FROM things WHERE id = ?", ["a"]))
            #expect(try a.int("n") == 9_000_000_000)
            #expect(try a.bool("flag"))
            #expect(a.optionalString("note") == nil)
            #expect(a.optionalDouble("ratio") == 0.25)
            // A `?` inside a literal is not a placeholder.
            let b = try #require(try await db.queryOne("SELECT * FROM things WHERE note = 'it''s ? here' AND n = ?", [-3]))
            #expect(try b.string("id") == "b?'x")
            #expect(try b.bool("flag") == false)
            #expect(try await db.count("SELECT COUNT(*) AS n FROM things WHERE n > ?", [0]) == 1)
        }
    }

    @Test(arguments: backends)
    func transactionRollsBackWithItsOutboxRows(backend: String) async throws {
        struct Boom: Error {}
        try await Self.withDatabase(backend) { db in
            try await db.migrate(Self.migrations)
            let event = OutboxEvent.audit(.employeeCreate, key: "e1", source: "employee-service", correlationId: "c1",
                                          data: AuditData(userId: "u", action: "create", resourceType: "employee", resourceId: "e1"))
            await #expect(throws: Boom.self) {
                try await db.transaction { tx in
                    try await tx.execute("INSERT INTO things (id, n, flag) VALUES ('x', 1, 0)")
                    try await tx.enqueue([event])
                    throw Boom()
                }
            }
            #expect(try await db.count("SELECT COUNT(*) AS n FROM things") == 0)
            #expect(try await db.count("SELECT COUNT(*) AS n FROM outbox") == 0)

            try await db.transaction { tx in
                try await tx.execute("INSERT INTO things (id, n, flag) VALUES ('x', 1, 0)")
                try await tx.enqueue([event])
            }
            let row = try #require(try await db.queryOne("SELECT * FROM outbox", []))
            #expect(try row.string("event_id") == event.eventId)
            #expect(try row.string("stream") == "audit")
            #expect(try row.string("event_type") == "audit.employee.create")
            #expect(try row.string("message_key") == "e1")
            #expect(try row.string("correlation_id") == "c1")
            #expect(try row.string("payload") == String(decoding: event.payload, as: UTF8.self))
            #expect(try row.int("attempts") == 0)
            #expect(row.optionalString("sent_at") == nil)
            #expect(try row.int("seq") >= 1)
            // event_id is unique: the same event twice is refused (and rolled back).
            await #expect(throws: (any Error).self) { try await db.transaction { tx in try await tx.enqueue([event]) } }
            #expect(try await db.count("SELECT COUNT(*) AS n FROM outbox") == 1)
        }
    }

    @Test(arguments: backends)
    func concurrentTransactionsDoNotInterleave(backend: String) async throws {
        try await Self.withDatabase(backend) { db in
            try await db.migrate(Self.migrations)
            try await db.execute("INSERT INTO things (id, n, flag) VALUES ('counter', 0, 0)")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await db.transaction { tx in
                            // Read-modify-write: lost updates would show if transactions overlapped.
                            let n = try await tx.queryOne("SELECT n FROM things WHERE id = 'counter'" + (tx.dialect == .postgres ? " FOR UPDATE" : ""))!.int("n")
                            try await tx.execute("UPDATE things SET n = ? WHERE id = 'counter'", [n + 1])
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await db.queryOne("SELECT n FROM things WHERE id = 'counter'")?.int("n") == 20)
        }
    }

    @Test func placeholdersAreNumberedOutsideQuotes() {
        #expect(Database.numberPlaceholders("SELECT * FROM t WHERE a = ? AND b = '?' AND \"c?\" = ?") == "SELECT * FROM t WHERE a = $1 AND b = '?' AND \"c?\" = $2")
    }
}
