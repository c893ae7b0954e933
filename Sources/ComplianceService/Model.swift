import Foundation
import HRMSServiceKit

public enum Sensitivity: String, APIEnum { case `public`, `internal`, confidential, specialCategory = "special_category" }
public enum LegalBasis: String, APIEnum {
    case consent, contract, legalObligation = "legal_obligation", vitalInterests = "vital_interests"
    case publicTask = "public_task", legitimateInterests = "legitimate_interests"
}
public enum AccessLevel: String, APIEnum { case `public`, `internal`, confidential, restricted }

/// A category of personal data (contact data, health data...).
struct DataCategory: Codable, Sendable {
    var id: String
    var name: String
    var description: String?
    var sensitivity: Sensitivity
    var created_at: String
    var updated_at: String

    init(row: DBRow) throws {
        id = try row.string("id")
        name = try row.string("name")
        description = row.optionalString("description")
        sensitivity = Sensitivity(rawValue: try row.string("sensitivity")) ?? .internal
        created_at = try row.string("created_at")
        updated_at = try row.string("updated_at")
    }
}

struct DataCategoryInput: Decodable {
    var name: String?
    var description: String?
    var sensitivity: Sensitivity?
}

/// One record of processing (GDPR Art. 30): what data, why, on which legal basis, kept how long, shared with whom.
struct InventoryItem: Codable, Sendable {
    var id: String
    var data_name: String
    var category_id: String
    var purpose: String
    var legal_basis: LegalBasis
    var retention_days: Int
    var recipients: [String]
    var third_party_sharing: Bool
    var encryption: Bool
    var access_level: AccessLevel
    var created_at: String
    var updated_at: String

    init(row: DBRow) throws {
        id = try row.string("id")
        data_name = try row.string("data_name")
        category_id = try row.string("category_id")
        purpose = try row.string("purpose")
        legal_basis = LegalBasis(rawValue: try row.string("legal_basis")) ?? .consent
        retention_days = try row.int("retention_days")
        recipients = (try? JSONDecoder().decode([String].self, from: Data(try row.string("recipients").utf8))) ?? []
        third_party_sharing = try row.bool("third_party_sharing")
        encryption = try row.bool("encryption")
        access_level = AccessLevel(rawValue: try row.string("access_level")) ?? .internal
        created_at = try row.string("created_at")
        updated_at = try row.string("updated_at")
    }
}

struct InventoryInput: Decodable {
    var data_name: String?
    var category_id: String?
    var purpose: String?
    var legal_basis: LegalBasis?
    var retention_days: Int?
    var recipients: [String]?
    var third_party_sharing: Bool?
    var encryption: Bool?
    var access_level: AccessLevel?
}

/// An employee's time-limited access to a category of data.
struct AccessGrant: Codable, Sendable {
    var id: String
    var employee_id: String
    var data_category_id: String
    var reason: String
    var granted_by: String
    var expires_at: String
    var revoked_at: String?
    var created_at: String
    var active: Bool

    init(row: DBRow, now: String) throws {
        id = try row.string("id")
        employee_id = try row.string("employee_id")
        data_category_id = try row.string("data_category_id")
        reason = try row.string("reason")
        granted_by = try row.string("granted_by")
        expires_at = try row.string("expires_at")
        revoked_at = row.optionalString("revoked_at")
        created_at = try row.string("created_at")
        active = revoked_at == nil && expires_at > now
    }
}

struct GrantInput: Decodable {
    var employee_id: String
    var data_category_id: String
    var reason: String
    var expires_at: String
}

struct Page<T: Encodable & Sendable>: Encodable, Sendable {
    var total: Int
    var offset: Int
    var limit: Int
    var items: [T]
}

struct PolicyInput: Decodable {
    var policy_name: String
    var context: [String: JSONValue]
}

struct PolicyResult: Encodable, Sendable {
    var valid: Bool
    var violations: [String]
}

struct RetentionItem: Encodable, Sendable {
    var record_type: String
    var record_id: String
    var since: String
    var retention_days: Int
    var expired_on: String
}

struct RetentionReport: Encodable, Sendable {
    var as_of: String
    var total: Int
    var items: [RetentionItem]
}
