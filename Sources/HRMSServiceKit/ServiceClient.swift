import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// Where a service gets the bearer token for its calls to other services.
public protocol ServiceTokenSource: Sendable {
    func token() async throws -> String
}

/// A token for this service's account from User Management (`POST /api/v1/auth/token`), cached until
/// a minute before it expires.
public actor RemoteTokenSource: ServiceTokenSource {
    let url: String
    let clientId: String
    let clientSecret: String
    let http: HTTPClient
    let timeout: TimeAmount
    var cached: (token: String, until: Date)?

    public init(config: ServiceConfig, http: HTTPClient) {
        url = config.serviceURLs[.userManagement]! + "/api/v1/auth/token"
        clientId = config.serviceClientId
        clientSecret = config.serviceClientSecret
        self.http = http
        timeout = .milliseconds(Int64(config.httpClientTimeoutMs))
    }

    struct TokenResponse: Decodable {
        var access_token: String
        var expires_in: Int
    }

    public func token() async throws -> String {
        if let cached, cached.until > Date() { return cached.token }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        let body = try JSONEncoder().encode(["client_id": clientId, "client_secret": clientSecret])
        request.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await http.execute(request, timeout: timeout)
            bytes = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw APIError.unavailable("user-management-service unavailable (service token)")
        }
        guard response.status == .ok, let decoded = try? JSONDecoder().decode(TokenResponse.self, from: Data(buffer: bytes)) else {
            throw APIError.unavailable("user-management-service refused this service's token request (\(response.status.code))")
        }
        cached = (decoded.access_token, Date().addingTimeInterval(TimeInterval(max(decoded.expires_in - 60, 0))))
        return decoded.access_token
    }
}

/// What another service answered when it was not a success.
public enum RemoteError: Error, Sendable, CustomStringConvertible {
    /// 404: the entity does not exist there.
    case notFound(service: HRMSServiceName, detail: String)
    /// Another 4xx: the call was refused (e.g. a business rule there); carries its status and detail.
    case rejected(service: HRMSServiceName, status: Int, detail: String)

    public var description: String {
        switch self {
        case .notFound(let s, let d): "\(s.serviceName): 404 \(d)"
        case .rejected(let s, let status, let d): "\(s.serviceName): \(status) \(d)"
        }
    }
}

/// Calls to other services: deadline HTTP_CLIENT_TIMEOUT_MS, `X-Correlation-ID` passed on, a service
/// token attached. Connection failures, timeouts and 5xx become 503 (`APIError.unavailable`); 404 is
/// `RemoteError.notFound`; other 4xx `RemoteError.rejected`.
public struct ServiceClient: Sendable {
    public let config: ServiceConfig
    public let http: HTTPClient
    public let tokens: any ServiceTokenSource
    let logger: Logger

    public init(config: ServiceConfig, http: HTTPClient, tokens: any ServiceTokenSource, logger: Logger) {
        self.config = config
        self.http = http
        self.tokens = tokens
        self.logger = logger
    }

    /// A call with a JSON body (or none) whose JSON answer decodes as `T`.
    public func call<T: Decodable>(
        _ service: HRMSServiceName, _ method: HTTPMethod, _ path: String, body: (some Encodable & Sendable)? = nil as String?,
        correlationId: String, as type: T.Type
    ) async throws -> T {
        let data = try await raw(service, method, path, body: body, correlationId: correlationId)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            logger.error("unexpected answer", metadata: ["service": "\(service.serviceName)", "path": "\(path)", "error": "\(error)"])
            throw APIError.unavailable("\(service.serviceName) answered with an unexpected body")
        }
    }

    /// The raw body of a successful answer.
    public func raw(
        _ service: HRMSServiceName, _ method: HTTPMethod, _ path: String, body: (some Encodable & Sendable)? = nil as String?,
        correlationId: String
    ) async throws -> Data {
        let base = config.serviceURLs[service]!
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "X-Correlation-ID", value: correlationId)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "Authorization", value: "Bearer \(try await tokens.token())")
        if let body {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try encoder.encode(body)))
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .milliseconds(Int64(config.httpClientTimeoutMs)))
            bytes = try await response.body.collect(upTo: 8 << 20)
        } catch {
            logger.warning("downstream call failed", metadata: [
                "service": "\(service.serviceName)", "path": "\(path)", "error": "\(error)", "correlation_id": "\(correlationId)",
            ])
            throw APIError.unavailable("\(service.serviceName) unavailable")
        }
        let data = Data(buffer: bytes)
        let code = Int(response.status.code)
        switch code {
        case 200..<300:
            return data
        case 404:
            throw RemoteError.notFound(service: service, detail: Self.detail(data) ?? "not found")
        case 400..<500:
            throw RemoteError.rejected(service: service, status: code, detail: Self.detail(data) ?? "refused")
        default:
            logger.warning("downstream error", metadata: ["service": "\(service.serviceName)", "path": "\(path)", "status": "\(code)"])
            throw APIError.unavailable("\(service.serviceName) unavailable (\(code))")
        }
    }

    static func detail(_ data: Data) -> String? {
        struct E: Decodable { var detail: String }
        return (try? JSONDecoder().decode(E.self, from: data))?.detail
    }
}
