import Foundation
import HRMSEvents
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import SQLiteNIO

// One small storage interface over SQLite (embedded default) and PostgreSQL. Services write portable
// SQL: TEXT ids (UUID strings), TEXT ISO 8601 timestamps, INTEGER booleans (0/1), BIGINT counts, and
// `?` placeholders (rewritten to $1, $2... for PostgreSQL).

/// A value bound to a placeholder or read from a column.
public enum DBValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
}

/// Anything that can be bound to a `?`.
public protocol DBBindable: Sendable {
    var dbValue: DBValue { get }
}
extension String: DBBindable { public var dbValue: DBValue { .text(self) } }
extension Int: DBBindable { public var dbValue: DBValue { .int(Int64(self)) } }
extension Int64: DBBindable { public var dbValue: DBValue { .int(self) } }
extension Double: DBBindable { public var dbValue: DBValue { .double(self) } }
extension Bool: DBBindable { public var dbValue: DBValue { .int(self ? 1 : 0) } }
extension DBValue: DBBindable { public var dbValue: DBValue { self } }
extension Optional: DBBindable where Wrapped: DBBindable {
    public var dbValue: DBValue { self?.dbValue ?? .null }
}

/// A stored value of the wrong type or a missing column: a bug or a schema mismatch, never bad input.
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// PSQLError hides everything behind a generic description: this keeps the SQLSTATE and the
    /// server's message (or the client-side code and cause), never the query's bound values.
    static func postgres(_ error: any Error) -> any Error {
        guard let e = error as? PSQLError else { return error }
        if let info = e.serverInfo {
            return DatabaseError("PostgreSQL \(info[.sqlState] ?? "?"): \(info[.message] ?? "?")")
        }
        return DatabaseError("PostgreSQL client: \(e.code)" + (e.underlying.map { " (\($0))" } ?? ""))
    }
}

/// One result row; columns by name (lower case, as both databases report unquoted names).
public struct DBRow: Sendable {
    public var values: [String: DBValue]

    public func value(_ column: String) -> DBValue { values[column] ?? .null }

    public func optionalString(_ column: String) -> String? {
        switch value(column) {
        case .text(let s): s
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .null: nil
        }
    }
    public func string(_ column: String) throws -> String {
        guard let s = optionalString(column) else { throw DatabaseError("column \(column) is null or missing") }
        return s
    }
    public func optionalInt(_ column: String) -> Int? {
        switch value(column) {
        case .int(let i): Int(i)
        case .double(let d): Int(d)
        case .text(let s): Int(s)
        case .null: nil
        }
    }
    public func int(_ column: String) throws -> Int {
        guard let i = optionalInt(column) else { throw DatabaseError("column \(column) is not an integer") }
        return i
    }
    public func optionalDouble(_ column: String) -> Double? {
        switch value(column) {
        case .int(let i): Double(i)
        case .double(let d): d
        case .text(let s): Double(s)
        case .null: nil
        }
    }
    public func bool(_ column: String) throws -> Bool { try int(column) != 0 }
}

public enum SQLDialect: Sendable { case sqlite, postgres }

/// What runs statements: the database itself (each statement alone) or a transaction.
public protocol DBExecutor: Sendable {
    var dialect: SQLDialect { get }
    func query(_ sql: String, _ binds: [any DBBindable]) async throws -> [DBRow]
}

extension DBExecutor {
    @discardableResult
    public func execute(_ sql: String, _ binds: [any DBBindable] = []) async throws -> [DBRow] {
        try await query(sql, binds)
    }
    public func queryOne(_ sql: String, _ binds: [any DBBindable] = []) async throws -> DBRow? {
        try await query(sql, binds).first
    }
    /// `SELECT COUNT(*) AS n ...`
    public func count(_ sql: String, _ binds: [any DBBindable] = []) async throws -> Int {
        try await queryOne(sql, binds)?.int("n") ?? 0
    }
}

/// A versioned schema change; `sql` gives the statements for a dialect (most are the same for both).
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    public var statements: @Sendable (SQLDialect) -> [String]

    public init(_ version: Int, _ name: String, statements: @escaping @Sendable (SQLDialect) -> [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }

    /// A migration whose statements are the same in both dialects.
    public init(_ version: Int, _ name: String, _ sql: [String]) {
        self.init(version, name) { _ in sql }
    }
}

/// The connection of a service to its database.
public final class Database: DBExecutor, Sendable {
    enum Backend: Sendable {
        case sqlite(SQLiteConnection, AsyncLock)
        case postgres(PostgresClient)
    }
    let backend: Backend
    let logger: Logger
    /// Called after a transaction that wrote outbox rows commits (the relay's poke).
    private let outboxCommitted = NIOLockedValueBox<(@Sendable ([OutboxEvent]) async -> Void)?>(nil)
    private let migratedBox = NIOLockedValueBox(false)
    /// `migrate` has completed: the schema is the one this build expects.
    public var migrated: Bool { migratedBox.withLockedValue { $0 } }
    public var dialect: SQLDialect {
        switch backend {
        case .sqlite: .sqlite
        case .postgres: .postgres
        }
    }

    /// The PostgreSQL pool, which must run (as a service of the app) for queries to proceed.
    public var postgresClient: PostgresClient? {
        if case .postgres(let c) = backend { return c }
        return nil
    }

    init(backend: Backend, logger: Logger) {
        self.backend = backend
        self.logger = logger
    }

    /// Opens (SQLite: creates the file and its folder) the database a location names.
    public static func open(_ location: DatabaseLocation, logger: Logger) async throws -> Database {
        switch location {
        case .sqlite(let path):
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            let conn = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            let db = Database(backend: .sqlite(conn, AsyncLock()), logger: logger)
            // WAL lets readers proceed while a writer commits; a busy timeout instead of SQLITE_BUSY errors.
            _ = try await db.query("PRAGMA journal_mode=WAL", [])
            _ = try await db.query("PRAGMA busy_timeout=5000", [])
            _ = try await db.query("PRAGMA foreign_keys=ON", [])
            return db
        case .postgres(let url):
            return Database(backend: .postgres(PostgresClient(configuration: try postgresConfiguration(url))), logger: logger)
        }
    }

    static func postgresConfiguration(_ url: String) throws -> PostgresClient.Configuration {
        guard let u = URLComponents(string: url), let host = u.host, !host.isEmpty else {
            throw ConfigError(variable: "DATABASE_URL", reason: "cannot parse '\(url)'")
        }
        let database = u.path.hasPrefix("/") ? String(u.path.dropFirst()) : u.path
        let tls: PostgresClient.Configuration.TLS =
            (u.queryItems?.first { $0.name == "sslmode" }?.value).map { ["require", "verify-full", "verify-ca"].contains($0) } == true
            ? .require(.makeClientConfiguration()) : .disable
        var config = PostgresClient.Configuration(
            host: host, port: u.port ?? 5432, username: u.user ?? "postgres", password: u.password,
            database: database.isEmpty ? nil : database, tls: tls)
        config.options.minimumConnections = 0
        config.options.maximumConnections = 10
        return config
    }

    public func query(_ sql: String, _ binds: [any DBBindable]) async throws -> [DBRow] {
        switch backend {
        case .sqlite(let conn, let lock):
            return try await lock.withLock { try await Self.sqliteQuery(conn, sql, binds) }
        case .postgres(let client):
            do {
                return try await client.withConnection { conn in try await Self.postgresQuery(conn, sql, binds, self.logger) }
            } catch {
                throw DatabaseError.postgres(error)
            }
        }
    }

    /// Runs `action` with the events after every commit of a transaction that enqueued outbox
    /// events (after, never inside: a failure in it cannot undo the change). `transaction` returns
    /// when it has: the `kafka` mode only pokes the relay, the `http`/`dual` modes make the old
    /// synchronous calls there, as the old stack did inside the request.
    public func onOutboxCommit(_ action: @escaping @Sendable ([OutboxEvent]) async -> Void) {
        outboxCommitted.withLockedValue { $0 = action }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    public func transaction<T: Sendable>(_ body: @Sendable (Transaction) async throws -> T) async throws -> T {
        let wrote = NIOLockedValueBox<[OutboxEvent]>([])
        let value = try await runTransaction(wrote, body)
        let events = wrote.withLockedValue { $0 }
        if !events.isEmpty, let committed = outboxCommitted.withLockedValue({ $0 }) { await committed(events) }
        return value
    }

    private func runTransaction<T: Sendable>(_ wrote: NIOLockedValueBox<[OutboxEvent]>, _ body: @Sendable (Transaction) async throws -> T) async throws -> T {
        switch backend {
        case .sqlite(let conn, let lock):
            return try await lock.withLock {
                // IMMEDIATE takes the write lock now, so two writers never deadlock on an upgrade.
                _ = try await Self.sqliteQuery(conn, "BEGIN IMMEDIATE", [])
                let tx = Transaction(dialect: .sqlite, wroteOutbox: wrote) { sql, binds in try await Self.sqliteQuery(conn, sql, binds) }
                do {
                    let value = try await body(tx)
                    _ = try await Self.sqliteQuery(conn, "COMMIT", [])
                    return value
                } catch {
                    _ = try? await Self.sqliteQuery(conn, "ROLLBACK", [])
                    throw error
                }
            }
        case .postgres(let client):
            let logger = self.logger
            do {
                return try await postgresTransaction(client, wrote, body, logger)
            } catch {
                throw DatabaseError.postgres(error)
            }
        }
    }

    private func postgresTransaction<T: Sendable>(_ client: PostgresClient, _ wrote: NIOLockedValueBox<[OutboxEvent]>,
                                                  _ body: @Sendable (Transaction) async throws -> T, _ logger: Logger) async throws -> T {
        try await client.withConnection { conn in
            _ = try await Self.postgresQuery(conn, "BEGIN", [], logger)
            let tx = Transaction(dialect: .postgres, wroteOutbox: wrote) { sql, binds in try await Self.postgresQuery(conn, sql, binds, logger) }
            do {
                let value = try await body(tx)
                _ = try await Self.postgresQuery(conn, "COMMIT", [], logger)
                return value
            } catch {
                _ = try? await Self.postgresQuery(conn, "ROLLBACK", [], logger)
                throw error
            }
        }
    }

    /// Liveness of the storage: a trivial query.
    public func ping() async throws { _ = try await query("SELECT 1 AS one", []) }

    public func close() async {
        if case .sqlite(let conn, _) = backend { try? await conn.close() }
    }

    /// Applies, in order, each migration not applied yet (each in its own transaction), after the
    /// kit's own (the outbox). Versions must be unique and positive per service.
    public func migrate(_ migrations: [Migration]) async throws {
        _ = try await query("CREATE TABLE IF NOT EXISTS schema_migrations (scope TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (scope, version))", [])
        for (scope, list) in [("kit", Outbox.migrations), ("service", migrations)] {
            let applied = Set(try await query("SELECT version FROM schema_migrations WHERE scope = ?", [scope]).map { try $0.int("version") })
            for m in list.sorted(by: { $0.version < $1.version }) where !applied.contains(m.version) {
                try await transaction { tx in
                    for statement in m.statements(tx.dialect) { try await tx.execute(statement) }
                    try await tx.execute("INSERT INTO schema_migrations (scope, version, name, applied_at) VALUES (?, ?, ?, ?)",
                                         [scope, m.version, m.name, Timestamp.now()])
                }
                logger.info("migration applied", metadata: ["scope": "\(scope)", "version": "\(m.version)", "name": "\(m.name)"])
            }
        }
        migratedBox.withLockedValue { $0 = true }
    }

    // MARK: backends

    static func sqliteQuery(_ conn: SQLiteConnection, _ sql: String, _ binds: [any DBBindable]) async throws -> [DBRow] {
        let data: [SQLiteData] = binds.map {
            switch $0.dbValue {
            case .null: .null
            case .int(let i): .integer(Int(i))
            case .double(let d): .float(d)
            case .text(let s): .text(s)
            }
        }
        let rows = NIOLockedValueBox<[DBRow]>([])
        try await conn.query(sql, data) { row in
            var values: [String: DBValue] = [:]
            for column in row.columns {
                let v: DBValue = switch column.data {
                case .integer(let i): .int(Int64(i))
                case .float(let d): .double(d)
                case .text(let s): .text(s)
                case .blob(let b): .text(String(buffer: b))
                case .null: .null
                }
                values[column.name.lowercased()] = v
            }
            rows.withLockedValue { $0.append(DBRow(values: values)) }
        }
        return rows.withLockedValue { $0 }
    }

    static func postgresQuery(_ conn: PostgresConnection, _ sql: String, _ binds: [any DBBindable], _ logger: Logger) async throws -> [DBRow] {
        var bindings = PostgresBindings(capacity: binds.count)
        for b in binds {
            switch b.dbValue {
            case .null: bindings.appendNull()
            case .int(let i): bindings.append(i)
            case .double(let d): bindings.append(d)
            case .text(let s): bindings.append(s)
            }
        }
        let rows = try await conn.query(PostgresQuery(unsafeSQL: numberPlaceholders(sql), binds: bindings), logger: logger)
        var result: [DBRow] = []
        for try await row in rows {
            var values: [String: DBValue] = [:]
            for cell in row {
                let v: DBValue
                if cell.bytes == nil {
                    v = .null
                } else {
                    switch cell.dataType {
                    case .int2, .int4, .int8: v = .int(Int64(try cell.decode(Int.self)))
                    case .float4, .float8: v = .double(try cell.decode(Double.self))
                    case .bool: v = .int(try cell.decode(Bool.self) ? 1 : 0)
                    case .numeric: v = .double(Double(try cell.decode(String.self)) ?? 0)
                    default: v = .text(try cell.decode(String.self))
                    }
                }
                values[cell.columnName.lowercased()] = v
            }
            result.append(DBRow(values: values))
        }
        return result
    }

    /// `?` -> `$1, $2, ...`, leaving `?` inside quoted strings and identifiers alone.
    public static func numberPlaceholders(_ sql: String) -> String {
        var out = ""
        var n = 0
        var quote: Character? = nil
        for ch in sql {
            if let q = quote {
                if ch == q { quote = nil }
                out.append(ch)
            } else if ch == "'" || ch == "\"" {
                quote = ch
                out.append(ch)
            } else if ch == "?" {
                n += 1
                out += "$\(n)"
            } else {
                out.append(ch)
            }
        }
        return out
    }
}

/// Statements inside one transaction, and the outbox write that must share it.
public struct Transaction: DBExecutor {
    public let dialect: SQLDialect
    let run: @Sendable (String, [any DBBindable]) async throws -> [DBRow]
    let wroteOutbox: NIOLockedValueBox<[OutboxEvent]>

    init(dialect: SQLDialect, wroteOutbox: NIOLockedValueBox<[OutboxEvent]>, run: @escaping @Sendable (String, [any DBBindable]) async throws -> [DBRow]) {
        self.dialect = dialect
        self.wroteOutbox = wroteOutbox
        self.run = run
    }

    public func query(_ sql: String, _ binds: [any DBBindable]) async throws -> [DBRow] { try await run(sql, binds) }

    /// Writes events to the outbox in this transaction: they exist if and only if the change commits.
    public func enqueue(_ events: [OutboxEvent]) async throws {
        for e in events {
            try await execute(
                "INSERT INTO outbox (event_id, stream, event_type, message_key, payload, correlation_id, source_service, created_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                [e.eventId, e.stream.rawValue, e.eventType, e.key, String(decoding: e.payload, as: UTF8.self),
                 e.correlationId, e.sourceService, Timestamp.now()])
        }
        wroteOutbox.withLockedValue { $0 += events }
    }
}

/// The transactional outbox's table (the relay of issue 6 reads it; services only write).
public enum Outbox {
    public static let migrations: [Migration] = [
        Migration(1, "outbox") { dialect in
            let seq = dialect == .sqlite ? "seq INTEGER PRIMARY KEY AUTOINCREMENT" : "seq BIGSERIAL PRIMARY KEY"
            return [
                """
                CREATE TABLE outbox (\(seq), event_id TEXT UNIQUE NOT NULL, stream TEXT NOT NULL, event_type TEXT NOT NULL,
                message_key TEXT NOT NULL, payload TEXT NOT NULL, correlation_id TEXT, source_service TEXT NOT NULL,
                created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, sent_at TEXT, last_error TEXT)
                """,
                "CREATE INDEX outbox_unsent ON outbox (sent_at, seq)",
            ]
        },
        // The `dual` mode's synchronous HTTP call, made in the request: the relay repeats it only
        // for rows where it failed.
        Migration(2, "outbox http delivery", ["ALTER TABLE outbox ADD COLUMN http_sent_at TEXT"]),
    ]
}

/// ISO 8601 UTC timestamps with milliseconds, the stored and served format.
public enum Timestamp {
    public static func now() -> String { EventTime.format(Date()) }
}

/// A FIFO async mutex: one SQLite connection serves one statement or transaction at a time.
public final class AsyncLock: Sendable {
    private let state = NIOLockedValueBox<(locked: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    public init() {}

    public func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLockedValue { s -> Bool in
                if s.locked { s.waiters.append(c); return false }
                s.locked = true
                return true
            }
            if resumeNow { c.resume() }
        }
    }

    func release() {
        let next = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty { s.locked = false; return nil }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
