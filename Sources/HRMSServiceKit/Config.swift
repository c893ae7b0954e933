import Foundation
import Logging

/// A setting with a bad value: the service refuses to start and says which variable and why.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var variable: String
    public var reason: String
    public var description: String { "configuration: \(variable): \(reason)" }

    public init(variable: String, reason: String) {
        self.variable = variable
        self.reason = reason
    }
}

/// Typed reads of environment variables (or any dictionary, for tests). Unset or empty means the default.
public struct Environment: Sendable {
    public var values: [String: String]

    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) { self.values = values }

    public func string(_ name: String) -> String? {
        guard let v = values[name], !v.isEmpty else { return nil }
        return v
    }

    public func string(_ name: String, default value: String) -> String { string(name) ?? value }

    public func int(_ name: String, default value: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let text = string(name) else { return value }
        guard let v = Int(text), range.contains(v) else {
            throw ConfigError(variable: name, reason: "'\(text)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    public func bool(_ name: String, default value: Bool) throws(ConfigError) -> Bool {
        guard let text = string(name)?.lowercased() else { return value }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigError(variable: name, reason: "'\(text)' is not a boolean (true/false)")
        }
    }

    public func url(_ name: String, default value: String) throws(ConfigError) -> String {
        let text = string(name, default: value)
        guard let u = URL(string: text), let scheme = u.scheme, ["http", "https"].contains(scheme), u.host != nil else {
            throw ConfigError(variable: name, reason: "'\(text)' is not an http(s) URL")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }
}

/// The HRMS services and their local default ports (docs/service-settings.md).
public enum HRMSServiceName: String, Sendable, CaseIterable {
    case employee, leave, attendance, notification, audit, compliance, userManagement = "user-management"

    public var defaultPort: Int {
        switch self {
        case .employee: 8001
        case .leave: 8002
        case .attendance: 8003
        case .notification: 8004
        case .audit: 8005
        case .compliance: 8006
        case .userManagement: 8007
        }
    }

    /// kebab-case name used as `source_service` in events and as the log label: `user-management-service`.
    public var serviceName: String { rawValue + "-service" }

    /// The environment variable naming this service's base URL.
    public var urlVariable: String {
        switch self {
        case .userManagement: "USER_SERVICE_URL"
        default: rawValue.uppercased() + "_SERVICE_URL"
        }
    }
}

/// Where a service's data lives.
public enum DatabaseLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String)
}

/// Settings every service reads (docs/service-settings.md, "Every service").
public struct ServiceConfig: Sendable {
    public var service: HRMSServiceName
    public var host: String
    public var port: Int
    public var dataDir: String
    public var database: DatabaseLocation
    public var logLevel: Logger.Level
    public var jwksURL: String
    public var jwtIssuer: String
    public var jwtAudience: String
    public var serviceClientId: String
    public var serviceClientSecret: String
    /// Base URL of every other service, by name.
    public var serviceURLs: [HRMSServiceName: String]
    public var httpClientTimeoutMs: Int
    public var maxBodyBytes: Int
    /// The whole environment, for service-specific settings (`env.string("ADMIN_EMAIL")`).
    public var env: Environment

    public init(service: HRMSServiceName, environment env: Environment = Environment()) throws(ConfigError) {
        self.service = service
        self.env = env
        host = env.string("HOST", default: "127.0.0.1")
        port = try env.int("PORT", default: service.defaultPort, range: 0...65535)
        dataDir = env.string("DATA_DIR", default: "./data")
        if let url = env.string("DATABASE_URL") {
            if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
                database = .postgres(url: url)
            } else if url.hasPrefix("sqlite://") {
                var path = String(url.dropFirst("sqlite://".count))
                if path.isEmpty { path = "\(dataDir)/\(service.serviceName).sqlite" }
                database = .sqlite(path: path)
            } else {
                throw ConfigError(variable: "DATABASE_URL", reason: "'\(url)' is neither postgres://... nor sqlite://...")
            }
        } else {
            database = .sqlite(path: "\(dataDir)/\(service.serviceName).sqlite")
        }
        let level = env.string("LOG_LEVEL", default: "info").lowercased()
        guard let parsed = Logger.Level(rawValue: level) else {
            throw ConfigError(variable: "LOG_LEVEL", reason: "'\(level)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        logLevel = parsed
        jwksURL = try env.url("JWKS_URL", default: "http://127.0.0.1:8007/.well-known/jwks.json")
        jwtIssuer = env.string("JWT_ISSUER", default: "hrms-user-management")
        jwtAudience = env.string("JWT_AUDIENCE", default: "hrms")
        serviceClientId = env.string("SERVICE_CLIENT_ID", default: service.serviceName)
        serviceClientSecret = env.string("SERVICE_CLIENT_SECRET", default: "\(service.serviceName)-local-secret")
        var urls: [HRMSServiceName: String] = [:]
        for other in HRMSServiceName.allCases {
            urls[other] = try env.url(other.urlVariable, default: "http://127.0.0.1:\(other.defaultPort)")
        }
        serviceURLs = urls
        httpClientTimeoutMs = try env.int("HTTP_CLIENT_TIMEOUT_MS", default: 3000, range: 1...600_000)
        maxBodyBytes = try env.int("MAX_BODY_BYTES", default: 1_048_576, range: 1...1_073_741_824)
    }

    /// The local service accounts: `<name>-service:<name>-service-local-secret` for each service, the
    /// defaults of SERVICE_CLIENT_ID/SERVICE_CLIENT_SECRET, so that everything runs with no settings.
    public static var defaultServiceClients: String {
        HRMSServiceName.allCases.map { "\($0.serviceName):\($0.serviceName)-local-secret" }.joined(separator: ",")
    }
}
