import AsyncHTTPClient
import Foundation
import HRMSEvents
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// What a service's routes and setup get: settings, storage, the token verifier, the client for
/// other services, and the event factory for the outbox.
public struct ServiceEnvironment: Sendable {
    public let config: ServiceConfig
    public let db: Database
    public let http: HTTPClient
    public let client: ServiceClient
    public let verifier: TokenVerifier
    public let events: EventFactory
    public let logger: Logger
}

/// A readiness check: nil when fine, else why not (the 503's detail).
public typealias ReadinessCheck = @Sendable () async -> String?

/// Everything that makes one service: its name, its schema, its routes, its OpenAPI document.
public struct ServiceDefinition: Sendable {
    public var name: HRMSServiceName
    public var migrations: [Migration]
    /// The service's own OpenAPI paths and schemas; the kit adds health, metrics, errors and security.
    public var openAPI: OpenAPIDocument
    /// Registers the routes (under `/api/v1` and anywhere else).
    public var routes: @Sendable (Router<HRMSRequestContext>, ServiceEnvironment) throws -> Void
    /// Runs once migrations are applied, before the server accepts requests (e.g. the first admin).
    public var setup: @Sendable (ServiceEnvironment) async throws -> Void
    /// How this service mints tokens for its own calls (default: ask User Management).
    public var tokenSource: (@Sendable (ServiceConfig, HTTPClient) -> any ServiceTokenSource)?
    /// Extra readiness checks, each with a name.
    public var readiness: @Sendable (ServiceEnvironment) -> [(String, ReadinessCheck)]
    /// Long-running companions of the server (e.g. the outbox relay of issue 6), shut down with it.
    public var services: @Sendable (ServiceEnvironment) -> [any Service]
    /// Installs the keys the verifier uses without fetching them (User Management).
    public var verifierSetup: (@Sendable (TokenVerifier, ServiceEnvironment) async throws -> Void)?

    public init(
        name: HRMSServiceName, migrations: [Migration], openAPI: OpenAPIDocument,
        routes: @escaping @Sendable (Router<HRMSRequestContext>, ServiceEnvironment) throws -> Void,
        setup: @escaping @Sendable (ServiceEnvironment) async throws -> Void = { _ in },
        tokenSource: (@Sendable (ServiceConfig, HTTPClient) -> any ServiceTokenSource)? = nil,
        readiness: @escaping @Sendable (ServiceEnvironment) -> [(String, ReadinessCheck)] = { _ in [] },
        services: @escaping @Sendable (ServiceEnvironment) -> [any Service] = { _ in [] },
        verifierSetup: (@Sendable (TokenVerifier, ServiceEnvironment) async throws -> Void)? = nil
    ) {
        self.name = name
        self.migrations = migrations
        self.openAPI = openAPI
        self.routes = routes
        self.setup = setup
        self.tokenSource = tokenSource
        self.readiness = readiness
        self.services = services
        self.verifierSetup = verifierSetup
    }
}

public enum HRMSApp {
    /// The executable's whole `main`: settings from the environment (exit 2 with a clear line on a bad
    /// value), then the service until SIGTERM/SIGINT (graceful shutdown).
    public static func main(_ definition: ServiceDefinition) async {
        await main(definition.name) { _ in definition }
    }

    /// The same for a service whose definition needs its settings first (e.g. to load a key).
    public static func main(_ name: HRMSServiceName, _ make: @Sendable (ServiceConfig) async throws -> ServiceDefinition) async {
        let config: ServiceConfig
        do {
            config = try ServiceConfig(service: name)
        } catch {
            FileHandle.standardError.write(Data("\(name.serviceName): \(error)\n".utf8))
            exit(2)
        }
        HRMSMetrics.bootstrapProcess()
        do {
            let app = try await build(try await make(config), config: config)
            try await app.runService()
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("\(name.serviceName): \(error)\n".utf8))
            exit(2)
        } catch {
            FileHandle.standardError.write(Data("\(name.serviceName): \(error)\n".utf8))
            exit(1)
        }
    }

    /// The application (not yet running): tests drive it with HummingbirdTesting.
    public static func build(_ definition: ServiceDefinition, config: ServiceConfig) async throws -> some ApplicationProtocol {
        let logger = {
            var logger = Logger(label: config.service.serviceName)
            logger.logLevel = config.logLevel
            return logger
        }()
        ServiceRuntime.maxBodyBytes.withLockedValue { $0 = config.maxBodyBytes }

        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let db = try await Database.open(config.database, logger: logger)
        let verifier = TokenVerifier(jwksURL: config.jwksURL, issuer: config.jwtIssuer, audience: config.jwtAudience,
                                     http: http, timeoutMs: config.httpClientTimeoutMs, logger: logger)
        let tokens = definition.tokenSource?(config, http) ?? RemoteTokenSource(config: config, http: http)
        let env = ServiceEnvironment(
            config: config, db: db, http: http, client: ServiceClient(config: config, http: http, tokens: tokens, logger: logger),
            verifier: verifier, events: EventFactory(source: config.service.serviceName), logger: logger)

        let router = Router(context: HRMSRequestContext.self)
        router.middlewares.add(CorrelationMiddleware())
        router.middlewares.add(AccessLogMiddleware())
        router.middlewares.add(MetricsMiddleware())
        router.middlewares.add(ErrorMiddleware())
        router.middlewares.add(AuthMiddleware(verifier: verifier))

        // The outbox relay of a producing service: poked after each commit that wrote events, it
        // publishes on its own task (a request never waits for, nor fails with, the broker). In the
        // `http`/`dual` modes the request makes the old synchronous calls after its commit.
        var readiness = definition.readiness(env)
        var companions: [any Service] = []
        if config.service.producesEvents {
            let relay = try OutboxPublishing.makeRelay(config: config, db: db, tokens: tokens, http: http, logger: logger)
            db.onOutboxCommit { events in await relay.committed(events) }
            readiness.append(("outbox relay", OutboxPublishing.readiness(relay)))
            companions.append(OutboxRelayService(relay: relay, db: db))
        }
        let checks = readiness

        let document = definition.openAPI.complete(service: config.service)
        router.get("/health") { _, _ in JSONResponse(["status": "ok", "service": config.service.serviceName]) }
        router.get("/health/ready") { _, _ in
            var failures: [String] = []
            do { try await db.ping() } catch { failures.append("database unreachable") }
            for (name, check) in checks {
                if let why = await check() { failures.append("\(name): \(why)") }
            }
            if !failures.isEmpty { throw APIError.unavailable("not ready: " + failures.joined(separator: "; ")) }
            return JSONResponse(["status": "ready", "service": config.service.serviceName])
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: HRMSMetrics.exposition())))
        }
        router.get("/openapi.json") { _, _ in JSONResponse(document) }
        try definition.routes(router, env)

        var services: [any Service] = definition.services(env) + companions
        if let pg = db.postgresClient { services.insert(PostgresService(client: pg), at: 0) }
        services.append(ShutdownHook { try? await http.shutdown(); await db.close() })
        var app = Application(
            router: router,
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: config.service.serviceName),
            services: services,
            logger: logger)
        app.beforeServerStarts {
            do {
                try await db.migrate(definition.migrations)
            } catch {
                logger.critical("migrations failed", metadata: ["error": "\(String(reflecting: error))"])
                throw error
            }
            if let verifierSetup = definition.verifierSetup { try await verifierSetup(verifier, env) }
            try await definition.setup(env)
            logger.info("ready to serve", metadata: ["port": "\(config.port)", "database": "\(config.database.kind)"])
        }
        return app
    }
}

extension DatabaseLocation {
    var kind: String {
        switch self {
        case .sqlite(let path): "sqlite \(path)"
        case .postgres: "postgres"
        }
    }
}

import PostgresNIO

/// Runs the PostgreSQL pool for as long as the app runs.
struct PostgresService: Service {
    let client: PostgresClient
    func run() async throws {
        await cancelWhenGracefulShutdown { await client.run() }
    }
}

/// Waits for shutdown, then releases what the app owns (HTTP client, database).
struct ShutdownHook: Service {
    let action: @Sendable () async -> Void
    func run() async throws {
        try? await gracefulShutdown()
        await action()
    }
}

/// Builds the events a service's state changes enqueue; stamps the service's name.
public struct EventFactory: Sendable {
    public let source: String

    public func notification(_ type: NotificationEventType, key: String, correlationId: String?, data: NotificationData) -> OutboxEvent {
        .notification(type, key: key, source: source, correlationId: correlationId, data: data)
    }

    public func audit(_ type: AuditEventType, key: String, correlationId: String?, data: AuditData) -> OutboxEvent {
        .audit(type, key: key, source: source, correlationId: correlationId, data: data)
    }

    /// An audit event for a request, with its caller, address and user agent filled in.
    public func audit(
        _ type: AuditEventType, context: HRMSRequestContext, resourceType: String, resourceId: String, description: String,
        oldValue: JSONValue? = nil, newValue: JSONValue? = nil, changes: JSONValue? = nil, userId: String? = nil
    ) -> OutboxEvent {
        let action = type.rawValue.split(separator: ".").last.map(String.init) ?? type.rawValue
        return audit(type, key: resourceId, correlationId: context.correlationId, data: AuditData(
            userId: userId ?? context.identity?.subject, action: action, resourceType: resourceType, resourceId: resourceId,
            description: description, ipAddress: context.clientAddress, userAgent: context.userAgent,
            oldValue: oldValue, newValue: newValue, changes: changes))
    }
}
