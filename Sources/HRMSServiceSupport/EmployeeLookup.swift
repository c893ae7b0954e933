import HRMSServiceKit

/// What Leave and Attendance need to know about an employee (checked synchronously on Employee).
public struct EmployeeRef: Decodable, Sendable {
    public var id: String
    public var email: String
    public var first_name: String
    public var last_name: String
    public var status: String

    public var fullName: String { "\(first_name) \(last_name)" }
}

public enum EmployeeLookup {
    /// The employee, or 404 when Employee does not know it, or 503 when Employee is down or refuses us.
    public static func fetch(_ id: String, env: ServiceEnvironment, correlationId: String) async throws -> EmployeeRef {
        do {
            return try await env.client.call(.employee, .GET, "/api/v1/employees/\(id)", correlationId: correlationId,
                                             as: EmployeeRef.self)
        } catch RemoteError.notFound {
            throw APIError.notFound("employee \(id) not found")
        } catch let error as RemoteError {
            // Employee refused our own service call (e.g. our account's role): a dependency problem, not the caller's.
            env.logger.error("employee lookup refused", metadata: ["error": "\(error)"])
            throw APIError.unavailable("employee-service refused the lookup")
        }
    }

    /// An employee id from a body: a UUID (lower-cased); anything else cannot exist (404).
    public static func id(_ value: String) throws -> String {
        try Validate.id(value, "employee \(value)")
    }

    /// Whether the caller may act on `employeeId`'s records: one of `roles`, or the employee themself.
    public static func requireSelfOr(_ roles: Set<Role>, employeeId: String, context: HRMSRequestContext) throws {
        let identity = try context.requireIdentity()
        if identity.employeeId == employeeId || roles.contains(identity.role) { return }
        throw APIError.forbidden("only the employee themself or \(roles.map(\.rawValue).sorted().joined(separator: ", ")) may do this")
    }
}
