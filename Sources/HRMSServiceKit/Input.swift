import Foundation
import Hummingbird
import HRMSEvents
import NIOConcurrencyHelpers
import NIOCore

/// Settings the request context reads (it is built from the channel only, before any route runs).
public enum ServiceRuntime {
    public static let maxBodyBytes = NIOLockedValueBox<Int>(1_048_576)
}

extension Request {
    /// The JSON body as `T`: 413 above MAX_BODY_BYTES, 422 with the field at fault for bad JSON,
    /// a wrong type, a missing field or an unknown enum value.
    public func decode<T: Decodable>(as type: T.Type, context: some ServiceRequestContext) async throws -> T {
        guard let value = try await optionalBody(self, as: T.self) else {
            throw APIError.unprocessable("request body is empty; a JSON object is expected")
        }
        return value
    }
}

public enum JSONInput {
    /// Whether a JSON text has the escape `\u0000` in it (a raw NUL is not valid JSON anyway). An
    /// escaped backslash is skipped whole, so the text `\\u0000` (a backslash, then "u0000") is not one.
    static func containsEscapedNUL(_ data: Data) -> Bool {
        let bytes = [UInt8](data)
        var i = 0
        while i + 5 < bytes.count {
            if bytes[i] == UInt8(ascii: "\\") {
                if bytes[i + 1] == UInt8(ascii: "u"), bytes[i + 2] == UInt8(ascii: "0"), bytes[i + 3] == UInt8(ascii: "0"),
                   bytes[i + 4] == UInt8(ascii: "0"), bytes[i + 5] == UInt8(ascii: "0") {
                    return true
                }
                i += 2
            } else {
                i += 1
            }
        }
        return false
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        if data.isEmpty { throw APIError.unprocessable("request body is empty; a JSON object is expected") }
        // PostgreSQL text cannot hold U+0000 (it failed the insert with a 500) and no field has a use
        // for it: refused up front, on both databases alike.
        if containsEscapedNUL(data) { throw APIError.unprocessable("strings must not contain the NUL character (\\u0000)") }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as APIError {
            throw error
        } catch let error as DecodingError {
            throw APIError.unprocessable(describe(error))
        } catch {
            throw APIError.unprocessable("malformed JSON body")
        }
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        if codingPath.isEmpty { return "body" }
        return codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(let type, let ctx):
            return "\(path(ctx.codingPath)): expected \(typeName(type))"
        case .valueNotFound(let type, let ctx):
            return "\(path(ctx.codingPath)): expected \(typeName(type)), got null"
        case .keyNotFound(let key, let ctx):
            return "\(path(ctx.codingPath + [key])): field required"
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty { return "malformed JSON body" }
            return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default:
            return "invalid body"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "a boolean"
        default:
            String(describing: type).hasPrefix("Dictionary") ? "an object" : String(describing: type).hasPrefix("Array") ? "an array" : "\(type)"
        }
    }
}

/// Field checks for decoded bodies: each throws 422 naming the field.
public enum Validate {
    public static func nonEmpty(_ value: String, _ field: String, max: Int = 255) throws -> String {
        let t = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !t.isEmpty else { throw APIError.unprocessable("\(field): must not be empty") }
        guard t.count <= max else { throw APIError.unprocessable("\(field): at most \(max) characters") }
        return t
    }
    public static func optional(_ value: String?, _ field: String, max: Int = 1000) throws -> String? {
        guard let value else { return nil }
        guard value.count <= max else { throw APIError.unprocessable("\(field): at most \(max) characters") }
        return value
    }
    public static func email(_ value: String, _ field: String = "email") throws -> String {
        let t = value.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = t.split(separator: "@", omittingEmptySubsequences: false)
        guard t.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."),
              !parts[1].hasSuffix("."), !t.contains(" ")
        else { throw APIError.unprocessable("\(field): not a valid email address") }
        return t
    }
    /// `YYYY-MM-DD`, a real calendar date.
    public static func date(_ value: String, _ field: String) throws -> String {
        guard isDate(value) else { throw APIError.unprocessable("\(field): expected a date YYYY-MM-DD") }
        return value
    }
    public static func isDate(_ value: String) -> Bool {
        let p = value.split(separator: "-", omittingEmptySubsequences: false)
        guard value.count == 10, p.count == 3, let y = Int(p[0]), let m = Int(p[1]), let d = Int(p[2]),
              p[0].count == 4, p[1].count == 2, p[2].count == 2, (1...12).contains(m), y >= 1 else { return false }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        return (1...days).contains(d)
    }
    /// An id in a path: a UUID string (lower-cased), else 404 (no such entity can exist).
    public static func id(_ value: String?, _ what: String) throws -> String {
        guard let value, let uuid = UUID(uuidString: value) else { throw APIError.notFound("\(what) not found") }
        return uuid.uuidString.lowercased()
    }
}

/// `offset` (>= 0, default 0) and `limit` (1...100, default 20); anything else is 422.
public struct Pagination: Sendable, Equatable {
    public var offset: Int
    public var limit: Int

    public init(offset: Int = 0, limit: Int = 20) {
        self.offset = offset
        self.limit = limit
    }

    public init(_ request: Request) throws {
        let q = request.uri.queryParameters
        offset = try Query.int(q["offset"].map(String.init), "offset", default: 0, range: 0...Int(Int32.max))
        limit = try Query.int(q["limit"].map(String.init), "limit", default: 20, range: 1...100)
    }
}

/// Typed query parameters: 422 naming the parameter on a bad value.
public enum Query {
    public static func int(_ text: String?, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text, !text.isEmpty else { return value }
        guard let v = Int(text), range.contains(v) else {
            throw APIError.unprocessable("\(name): expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    public static func string(_ request: Request, _ name: String) -> String? {
        guard let v = request.uri.queryParameters[name[...]], !v.isEmpty else { return nil }
        return String(v)
    }

    /// An enum-valued parameter: unknown values are 422 listing the allowed ones.
    public static func enumValue<E: RawRepresentable & CaseIterable>(_ request: Request, _ name: String, as: E.Type) throws -> E?
    where E.RawValue == String {
        guard let text = string(request, name) else { return nil }
        guard let v = E(rawValue: text) else {
            throw APIError.unprocessable("\(name): '\(text)' is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return v
    }

    public static func date(_ request: Request, _ name: String) throws -> String? {
        guard let text = string(request, name) else { return nil }
        return try Validate.date(text, name)
    }
}

/// A JSON response with a status (201 for creations).
public struct JSONResponse<T: Encodable & Sendable>: ResponseGenerator, Sendable {
    public var status: HTTPResponse.Status
    public var value: T

    public init(_ value: T, status: HTTPResponse.Status = .ok) {
        self.value = value
        self.status = status
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// A string enum in request bodies: an unknown value is a 422 that lists the allowed ones.
public protocol APIEnum: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension APIEnum {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let v = Self(rawValue: text) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "'\(text)' is not one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = v
    }
    public static var names: [String] { allCases.map(\.rawValue) }
}

extension JSONValue {
    /// Any Encodable as a JSON value (audit old/new values).
    public init(encoding value: some Encodable) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        self = (try? encoder.encode(value)).flatMap { try? JSONDecoder().decode(JSONValue.self, from: $0) } ?? .null
    }
}

/// A body that may be absent (e.g. `DELETE` with an optional reason): nil when empty, else decoded
/// like `Request.decode` (413 / 422).
public func optionalBody<T: Decodable>(_ request: Request, as type: T.Type) async throws -> T? {
    let limit = ServiceRuntime.maxBodyBytes.withLockedValue { $0 }
    if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw APIError.tooLarge(limit) }
    let buffer: ByteBuffer
    do {
        buffer = try await request.body.collect(upTo: limit)
    } catch is NIOTooManyBytesError {
        throw APIError.tooLarge(limit)
    }
    if buffer.readableBytes == 0 { return nil }
    return try JSONInput.decode(T.self, from: Data(buffer: buffer))
}
