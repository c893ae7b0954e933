import Foundation
import HRMSEventPipeline
import HRMSServiceKit
import HRMSServiceSupport

/// The Audit service's side of the audit consumer and the replay (issue 6).
extension AuditService {
    /// The consumer's settings; a bad value stops the start with a line naming it.
    static func consumerSettings(_ config: ServiceConfig) throws(ConfigError) -> AuditConsumer.Config {
        do {
            return try .fromEnvironment(config.env.values)
        } catch {
            throw ConfigError(variable: "audit consumer", reason: error.description)
        }
    }

    static func makeConsumer(_ settings: AuditConsumer.Config, env: ServiceEnvironment) -> AuditConsumer {
        AuditConsumer(config: settings, store: EventAuditStore(db: env.db), logger: env.logger)
    }

    /// `audit-service replay [--database-url URL]`: rebuilds the audit store from the audit topic's
    /// earliest offset into the database given (or DATABASE_URL / DATA_DIR), then prints the counts as
    /// one JSON line. Returns the exit status.
    public static func replayCommand(_ arguments: [String]) async -> Int32 {
        var values = ProcessInfo.processInfo.environment
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            if argument == "--database-url", let url = rest.popFirst() {
                values["DATABASE_URL"] = url
            } else if argument.hasPrefix("--database-url=") {
                values["DATABASE_URL"] = String(argument.dropFirst("--database-url=".count))
            } else {
                FileHandle.standardError.write(Data("usage: audit-service replay [--database-url URL]\n".utf8))
                return 2
            }
        }
        let config: ServiceConfig
        let settings: EventPipelineSettings
        do {
            config = try ServiceConfig(service: .audit, environment: HRMSServiceKit.Environment(values))
            settings = try EventPipelineSettings.fromEnvironment(values)
        } catch {
            FileHandle.standardError.write(Data("audit-service replay: \(error)\n".utf8))
            return 2
        }
        var logger = Logger(label: "audit-service.replay")
        logger.logLevel = config.logLevel
        do {
            let db = try await Database.open(config.database, logger: logger)
            let pool = db.postgresClient.map { pg in Task { await pg.run() } }
            defer { pool?.cancel() }
            do {
                try await db.migrate(migrations)
                let before = try await db.count("SELECT COUNT(*) AS n FROM audit_logs")
                let report = try await AuditReplay.run(client: settings.client, topic: settings.topics.audit,
                                                       into: EventAuditStore(db: db), logger: logger)
                let after = try await db.count("SELECT COUNT(*) AS n FROM audit_logs")
                print("{\"entries\":\(after),\"entries_before\":\(before),\"inserted\":\(report.inserted),\"invalid\":\(report.invalid),\"records\":\(report.records),\"topic\":\"\(settings.topics.audit)\"}")
            } catch {
                await db.close()
                throw error
            }
            await db.close()
            return 0
        } catch {
            FileHandle.standardError.write(Data("audit-service replay: \(error)\n".utf8))
            return 1
        }
    }
}

/// Audit events in the `audit_logs` table: one transaction per batch, idempotent by event id, the
/// event's source service as `service_name`, its timestamp as `created_at` and its id as the entry's
/// id (so replaying the topic into a fresh database gives the same rows).
struct EventAuditStore: AuditStore {
    let db: Database

    @discardableResult
    func insertBatch(_ entries: [HRMSEventPipeline.AuditEntry]) async throws -> Int {
        try await db.transaction { tx in
            var inserted = 0
            for e in entries {
                let eventId = e.eventId.lowercased()
                let stored = try await AuditService.store(e.data, eventId: eventId, serviceName: e.sourceService,
                                                          correlationId: e.correlationId, id: eventId, at: e.timestamp, in: tx)
                if stored.inserted { inserted += 1 }
            }
            return inserted
        }
    }
}
