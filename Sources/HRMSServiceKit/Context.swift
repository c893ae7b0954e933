import Foundation
import Hummingbird
import Logging

/// The request context of every HRMS service: Hummingbird's core storage plus the correlation id
/// and the authenticated caller.
public protocol ServiceRequestContext: RequestContext {
    var correlationId: String { get set }
    var requestId: String { get set }
    var identity: Identity? { get set }
    var clientAddress: String? { get set }
    var userAgent: String? { get set }
}

public struct HRMSRequestContext: ServiceRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var correlationId: String = ""
    public var requestId: String = ""
    public var identity: Identity?
    public var clientAddress: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress
    }

    /// The maximum upload Hummingbird's own decoders accept; the kit's `decode` uses MAX_BODY_BYTES.
    public var maxUploadSize: Int { ServiceRuntime.maxBodyBytes.withLockedValue { $0 } }

    /// The authenticated caller, or 401.
    public func requireIdentity() throws -> Identity {
        guard let identity else { throw APIError.unauthorized() }
        return identity
    }

    /// The authenticated caller if they hold one of `roles`; 401 without a valid token, 403 otherwise.
    @discardableResult
    public func requireRoles(_ roles: Role...) throws -> Identity {
        try requireRoles(Set(roles))
    }

    @discardableResult
    public func requireRoles(_ roles: Set<Role>) throws -> Identity {
        let identity = try requireIdentity()
        guard roles.contains(identity.role) else {
            throw APIError.forbidden("role \(identity.role.rawValue) may not do this (needs \(roles.map(\.rawValue).sorted().joined(separator: " or ")))")
        }
        return identity
    }

    /// What an audit event records about the request.
    public var auditOrigin: (ip: String?, userAgent: String?) { (clientAddress, userAgent) }
    public var userAgent: String? = nil
}
