import Foundation
import Hummingbird
import NIOCore

/// An error with the HTTP status and the `detail` the client sees: `{"detail": "..."}`.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible, Sendable {
    public var status: HTTPResponse.Status
    public var detail: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.headers = headers
    }

    public var description: String { "\(status.code) \(detail)" }

    /// 400: a business rule refuses the request (e.g. start after end).
    public static func badRequest(_ detail: String) -> APIError { .init(.badRequest, detail) }
    public static func unauthorized(_ detail: String = "not authenticated") -> APIError {
        .init(.unauthorized, detail, headers: [.wwwAuthenticate: "Bearer"])
    }
    public static func forbidden(_ detail: String = "not allowed for this role") -> APIError { .init(.forbidden, detail) }
    public static func notFound(_ detail: String) -> APIError { .init(.notFound, detail) }
    public static func conflict(_ detail: String) -> APIError { .init(.conflict, detail) }
    public static func tooLarge(_ limit: Int) -> APIError { .init(.contentTooLarge, "request body larger than \(limit) bytes") }
    /// 422: malformed body or query (bad JSON, wrong type, unknown enum value, out-of-range number).
    public static func unprocessable(_ detail: String) -> APIError { .init(.unprocessableContent, detail) }
    /// 503: a dependency (database, another service) cannot answer.
    public static func unavailable(_ detail: String) -> APIError { .init(.serviceUnavailable, detail) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        APIError.jsonResponse(status: status, detail: detail, headers: headers)
    }

    static func jsonResponse(status: HTTPResponse.Status, detail: String, headers: HTTPFields = [:]) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let body = (try? encoder.encode(["detail": detail])) ?? Data(#"{"detail":"error"}"#.utf8)
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Outermost middleware but one: every error becomes `{"detail": ...}`. Errors the kit does not know
/// are logged and answered 500 (a bug); Hummingbird's own HTTPError keeps its status.
struct ErrorMiddleware<Context: ServiceRequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return APIError.jsonResponse(status: error.status, detail: error.detail, headers: error.headers)
        } catch let error as HTTPError {
            let detail = error.body ?? (error.status == .notFound ? "not found" : error.status.reasonPhrase)
            return APIError.jsonResponse(status: error.status, detail: detail, headers: error.headers)
        } catch is NIOTooManyBytesError {
            return APIError.jsonResponse(status: .contentTooLarge, detail: "request body too large")
        } catch let error as RemoteError {
            switch error {
            case .notFound(_, let detail):
                return APIError.jsonResponse(status: .notFound, detail: detail)
            case .rejected(let service, let status, let detail) where status == 401 || status == 403:
                context.logger.error("downstream refused our credentials", metadata: ["service": "\(service.serviceName)", "detail": "\(detail)"])
                return APIError.jsonResponse(status: .serviceUnavailable, detail: "\(service.serviceName) refused this service's credentials")
            case .rejected(_, let status, let detail):
                return APIError.jsonResponse(status: .init(code: status), detail: detail)
            }
        } catch let error as DatabaseUnavailable {
            context.logger.error("database unavailable", metadata: ["error": "\(error)"])
            return APIError.jsonResponse(status: .serviceUnavailable, detail: "database unavailable")
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return APIError.jsonResponse(status: .internalServerError, detail: "internal error")
        }
    }
}

/// Marks a storage failure that is about reachability (so 503, not 500).
public struct DatabaseUnavailable: Error, Sendable {
    public var underlying: String
}
