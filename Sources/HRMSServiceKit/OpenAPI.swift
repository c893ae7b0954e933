import HRMSEvents

/// A service's OpenAPI 3.0 document: its own paths and schemas. `complete(service:)` adds what the
/// kit serves for every service (health, readiness, metrics, the document itself), the error schema
/// and bearer security.
public struct OpenAPIDocument: Sendable {
    public var title: String
    public var paths: [String: JSONValue]
    public var schemas: [String: JSONValue]

    public init(title: String, paths: [String: JSONValue], schemas: [String: JSONValue]) {
        self.title = title
        self.paths = paths
        self.schemas = schemas
    }

    public func complete(service: HRMSServiceName) -> JSONValue {
        var allPaths = paths
        let text: JSONValue = ["text/plain": ["schema": ["type": "string"]]]
        allPaths["/health"] = ["get": OAS.op("Liveness", secured: false, responses: [200: ("Alive", OAS.ref("Status"))])]
        allPaths["/health/ready"] = ["get": OAS.op("Readiness: database reachable, dependencies configured", secured: false,
                                                   responses: [200: ("Ready", OAS.ref("Status")), 503: ("Not ready", OAS.ref("Error"))])]
        allPaths["/metrics"] = ["get": ["summary": "Prometheus metrics", "responses": ["200": ["description": "Prometheus text", "content": text]]]]
        allPaths["/openapi.json"] = ["get": ["summary": "This document", "responses": ["200": ["description": "OpenAPI 3", "content": ["application/json": ["schema": ["type": "object"]]]]]]]
        var allSchemas = schemas
        allSchemas["Error"] = OAS.object(["detail": OAS.string()], required: ["detail"])
        allSchemas["Status"] = OAS.object(["status": OAS.string(), "service": OAS.string()], required: ["status", "service"])
        allSchemas["Ok"] = OAS.object(["ok": ["type": "boolean"]], required: ["ok"])
        return [
            "openapi": "3.0.3",
            "info": ["title": .string(title), "version": "1.0.0", "description": .string("\(service.serviceName) of the HRMS platform")],
            "paths": .object(allPaths),
            "components": [
                "schemas": .object(allSchemas),
                "securitySchemes": ["bearerAuth": ["type": "http", "scheme": "bearer", "bearerFormat": "JWT"]],
            ],
        ]
    }
}

/// Builders for OpenAPI fragments (JSON values), so documents stay short and uniform.
public enum OAS {
    public static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    public static func string(format: String? = nil, nullable: Bool = false, enum values: [String]? = nil, maxLength: Int? = nil, minLength: Int? = nil) -> JSONValue {
        var s: [String: JSONValue] = ["type": "string"]
        if let format { s["format"] = .string(format) }
        if nullable { s["nullable"] = true }
        if let values { s["enum"] = .array(values.map { .string($0) } + (nullable ? [.null] : [])) }
        if let maxLength { s["maxLength"] = .number(Double(maxLength)) }
        if let minLength { s["minLength"] = .number(Double(minLength)) }
        return .object(s)
    }

    public static func integer(minimum: Int? = nil, maximum: Int? = nil, nullable: Bool = false) -> JSONValue {
        var s: [String: JSONValue] = ["type": "integer"]
        if let minimum { s["minimum"] = .number(Double(minimum)) }
        if let maximum { s["maximum"] = .number(Double(maximum)) }
        if nullable { s["nullable"] = true }
        return .object(s)
    }

    public static func boolean(nullable: Bool = false) -> JSONValue {
        nullable ? ["type": "boolean", "nullable": true] : ["type": "boolean"]
    }

    public static func number(nullable: Bool = false) -> JSONValue {
        nullable ? ["type": "number", "nullable": true] : ["type": "number"]
    }

    public static func array(_ items: JSONValue) -> JSONValue { ["type": "array", "items": items] }

    public static func object(_ properties: [String: JSONValue], required: [String] = [], additional: Bool = true) -> JSONValue {
        var s: [String: JSONValue] = ["type": "object", "properties": .object(properties)]
        if !required.isEmpty { s["required"] = .array(required.map { .string($0) }) }
        if !additional { s["additionalProperties"] = false }
        return .object(s)
    }

    /// A free-form JSON object.
    public static let anyObject: JSONValue = ["type": "object", "additionalProperties": true]

    public static func pathParam(_ name: String, format: String? = "uuid") -> JSONValue {
        ["name": .string(name), "in": "path", "required": true, "schema": string(format: format)]
    }

    public static func queryParam(_ name: String, _ schema: JSONValue) -> JSONValue {
        ["name": .string(name), "in": "query", "required": false, "schema": schema]
    }

    /// `offset` and `limit` as the kit's `Pagination` accepts them.
    public static let pagination: [JSONValue] = [
        queryParam("offset", ["type": "integer", "minimum": 0, "maximum": 2_147_483_647, "default": 0]),
        queryParam("limit", ["type": "integer", "minimum": 1, "maximum": 100, "default": 20]),
    ]

    /// One operation. Error answers (`{"detail"}`) are declared for the statuses the kit can give
    /// (401/403 when secured, 413/422 with a body, 503) and as the `default` response.
    public static func op(
        _ summary: String, secured: Bool = true, parameters: [JSONValue] = [], body: JSONValue? = nil,
        responses: [Int: (String, JSONValue?)], errors: [Int] = []
    ) -> JSONValue {
        var r: [String: JSONValue] = [:]
        for (code, (description, schema)) in responses {
            var entry: [String: JSONValue] = ["description": .string(description)]
            if let schema { entry["content"] = ["application/json": ["schema": schema]] }
            r[String(code)] = .object(entry)
        }
        var errorCodes = Set(errors).union([503])
        if secured { errorCodes.formUnion([401, 403]) }
        if body != nil { errorCodes.formUnion([413, 422]) }
        if !parameters.isEmpty { errorCodes.insert(422) }
        let error: JSONValue = ["description": "Error", "content": ["application/json": ["schema": ref("Error")]]]
        for code in errorCodes where r[String(code)] == nil { r[String(code)] = error }
        r["default"] = error
        var o: [String: JSONValue] = ["summary": .string(summary), "responses": .object(r)]
        if !parameters.isEmpty { o["parameters"] = .array(parameters) }
        if let body { o["requestBody"] = ["required": true, "content": ["application/json": ["schema": body]]] }
        if secured { o["security"] = [["bearerAuth": []]] }
        return .object(o)
    }
}
