import Foundation
import HRMSServiceKit

extension ComplianceService {
    static func category(_ db: some DBExecutor, _ id: String) async throws -> DataCategory {
        guard let row = try await db.queryOne("SELECT * FROM data_categories WHERE id = ?", [id]) else { throw APIError.notFound("data category \(id) not found") }
        return try DataCategory(row: row)
    }
    static func item(_ db: some DBExecutor, _ id: String) async throws -> InventoryItem {
        guard let row = try await db.queryOne("SELECT * FROM data_inventory WHERE id = ?", [id]) else { throw APIError.notFound("inventory item \(id) not found") }
        return try InventoryItem(row: row)
    }
    static func grant(_ db: some DBExecutor, _ id: String) async throws -> AccessGrant {
        guard let row = try await db.queryOne("SELECT * FROM access_grants WHERE id = ?", [id]) else { throw APIError.notFound("access grant \(id) not found") }
        return try AccessGrant(row: row, now: Timestamp.now())
    }

    /// A category referenced by a body must exist: 400 (a business rule: the reference is well formed).
    static func requireCategory(_ tx: Transaction, _ id: String) async throws {
        guard UUID(uuidString: id) != nil, try await tx.count("SELECT COUNT(*) AS n FROM data_categories WHERE id = ?", [id.lowercased()]) > 0 else {
            throw APIError.badRequest("data category \(id) does not exist")
        }
    }

    static func audit(_ env: ServiceEnvironment, _ type: AuditEventType, _ context: HRMSRequestContext, _ resource: String, _ id: String,
                      _ description: String, old: (some Encodable)?, new: (some Encodable)?) -> OutboxEvent {
        env.events.audit(type, context: context, resourceType: resource, resourceId: id, description: description,
                         oldValue: old.map { JSONValue(encoding: $0) }, newValue: new.map { JSONValue(encoding: $0) })
    }

    static func dataRoutes(_ router: Router<HRMSRequestContext>, _ env: ServiceEnvironment) {
        let db = env.db
        let none: DataCategory? = nil

        // Data categories ------------------------------------------------------------------------
        let categories = router.group("api/v1/data-categories")
        categories.post { request, context -> JSONResponse<DataCategory> in
            try context.requireRoles(managers)
            let input = try await request.decode(as: DataCategoryInput.self, context: context)
            let name = try Validate.nonEmpty(input.name ?? "", "name", max: 100)
            let description = try Validate.optional(input.description, "description", max: 1000)
            guard let sensitivity = input.sensitivity else { throw APIError.unprocessable("sensitivity: field required") }
            let id = UUID().uuidString.lowercased()
            let now = Timestamp.now()
            return JSONResponse(try await db.transaction { tx in
                if try await tx.count("SELECT COUNT(*) AS n FROM data_categories WHERE name = ?", [name]) > 0 { throw APIError.conflict("data category \(name) exists") }
                try await tx.execute("INSERT INTO data_categories (id, name, description, sensitivity, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                                     [id, name, description, sensitivity.rawValue, now, now])
                let c = try await category(tx, id)
                try await tx.enqueue([audit(env, .complianceCreate, context, "data_category", id, "data category \(name) created", old: none, new: c)])
                return c
            }, status: .created)
        }
        categories.get { request, context -> JSONResponse<Page<DataCategory>> in
            try context.requireRoles(readers)
            let page = try Pagination(request)
            let total = try await db.count("SELECT COUNT(*) AS n FROM data_categories")
            let rows = try await db.query("SELECT * FROM data_categories ORDER BY name, id LIMIT ? OFFSET ?", [page.limit, page.offset])
            return JSONResponse(Page(total: total, offset: page.offset, limit: page.limit, items: try rows.map(DataCategory.init)))
        }
        categories.get(":id") { _, context -> JSONResponse<DataCategory> in
            try context.requireRoles(readers)
            return JSONResponse(try await category(db, try Validate.id(context.parameters.get("id"), "data category")))
        }
        categories.put(":id") { request, context -> JSONResponse<DataCategory> in
            try context.requireRoles(managers)
            let id = try Validate.id(context.parameters.get("id"), "data category")
            let input = try await request.decode(as: DataCategoryInput.self, context: context)
            let name = try input.name.map { try Validate.nonEmpty($0, "name", max: 100) }
            let description = try Validate.optional(input.description, "description", max: 1000)
            return JSONResponse(try await db.transaction { tx in
                let old = try await category(tx, id)
                if let name, name != old.name, try await tx.count("SELECT COUNT(*) AS n FROM data_categories WHERE name = ?", [name]) > 0 {
                    throw APIError.conflict("data category \(name) exists")
                }
                try await tx.execute("UPDATE data_categories SET name = ?, description = ?, sensitivity = ?, updated_at = ? WHERE id = ?",
                                     [name ?? old.name, description ?? old.description, (input.sensitivity ?? old.sensitivity).rawValue, Timestamp.now(), id])
                let new = try await category(tx, id)
                try await tx.enqueue([audit(env, .complianceUpdate, context, "data_category", id, "data category \(new.name) updated", old: old, new: new)])
                return new
            })
        }
        categories.delete(":id") { _, context -> JSONResponse<[String: Bool]> in
            try context.requireRoles(managers)
            let id = try Validate.id(context.parameters.get("id"), "data category")
            try await db.transaction { tx in
                let old = try await category(tx, id)
                let used = try await tx.count("SELECT COUNT(*) AS n FROM data_inventory WHERE category_id = ?", [id])
                    + tx.count("SELECT COUNT(*) AS n FROM access_grants WHERE data_category_id = ?", [id])
                if used > 0 { throw APIError.conflict("data category \(old.name) is used by \(used) inventory items or grants") }
                try await tx.execute("DELETE FROM data_categories WHERE id = ?", [id])
                try await tx.enqueue([audit(env, .complianceDelete, context, "data_category", id, "data category \(old.name) deleted", old: old, new: none)])
            }
            return JSONResponse(["ok": true])
        }

        // Data inventory (Art. 30 records) -------------------------------------------------------
        let inventory = router.group("api/v1/data-inventory")
        let noItem: InventoryItem? = nil
        @Sendable func recipients(_ list: [String]?) throws -> String? {
            guard let list else { return nil }
            guard list.count <= 50 else { throw APIError.unprocessable("recipients: at most 50") }
            for (i, r) in list.enumerated() { _ = try Validate.nonEmpty(r, "recipients[\(i)]", max: 200) }
            return String(decoding: try JSONEncoder().encode(list), as: UTF8.self)
        }
        @Sendable func retention(_ days: Int?) throws -> Int? {
            guard let days else { return nil }
            guard (1...36_500).contains(days) else { throw APIError.unprocessable("retention_days: expected an integer in 1...36500") }
            return days
        }
        inventory.post { request, context -> JSONResponse<InventoryItem> in
            try context.requireRoles(managers)
            let input = try await request.decode(as: InventoryInput.self, context: context)
            let name = try Validate.nonEmpty(input.data_name ?? "", "data_name", max: 200)
            let purpose = try Validate.nonEmpty(input.purpose ?? "", "purpose", max: 1000)
            guard let categoryId = input.category_id else { throw APIError.unprocessable("category_id: field required") }
            guard let basis = input.legal_basis else { throw APIError.unprocessable("legal_basis: field required") }
            guard let days = try retention(input.retention_days) else { throw APIError.unprocessable("retention_days: field required") }
            guard let level = input.access_level else { throw APIError.unprocessable("access_level: field required") }
            let recipientsText = try recipients(input.recipients) ?? "[]"
            let id = UUID().uuidString.lowercased()
            let now = Timestamp.now()
            return JSONResponse(try await db.transaction { tx in
                try await requireCategory(tx, categoryId)
                try await tx.execute(
                    "INSERT INTO data_inventory (id, data_name, category_id, purpose, legal_basis, retention_days, recipients, third_party_sharing, encryption, access_level, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [id, name, categoryId.lowercased(), purpose, basis.rawValue, days, recipientsText, input.third_party_sharing ?? false,
                     input.encryption ?? false, level.rawValue, now, now])
                let item = try await item(tx, id)
                try await tx.enqueue([audit(env, .complianceCreate, context, "data_inventory", id, "inventory item \(name) created", old: noItem, new: item)])
                return item
            }, status: .created)
        }
        inventory.get { request, context -> JSONResponse<Page<InventoryItem>> in
            try context.requireRoles(readers)
            let page = try Pagination(request)
            let total = try await db.count("SELECT COUNT(*) AS n FROM data_inventory")
            let rows = try await db.query("SELECT * FROM data_inventory ORDER BY data_name, id LIMIT ? OFFSET ?", [page.limit, page.offset])
            return JSONResponse(Page(total: total, offset: page.offset, limit: page.limit, items: try rows.map(InventoryItem.init)))
        }
        inventory.get(":id") { _, context -> JSONResponse<InventoryItem> in
            try context.requireRoles(readers)
            return JSONResponse(try await item(db, try Validate.id(context.parameters.get("id"), "inventory item")))
        }
        inventory.put(":id") { request, context -> JSONResponse<InventoryItem> in
            try context.requireRoles(managers)
            let id = try Validate.id(context.parameters.get("id"), "inventory item")
            let input = try await request.decode(as: InventoryInput.self, context: context)
            let name = try input.data_name.map { try Validate.nonEmpty($0, "data_name", max: 200) }
            let purpose = try input.purpose.map { try Validate.nonEmpty($0, "purpose", max: 1000) }
            let days = try retention(input.retention_days)
            let recipientsText = try recipients(input.recipients)
            return JSONResponse(try await db.transaction { tx in
                let old = try await item(tx, id)
                if let c = input.category_id { try await requireCategory(tx, c) }
                let oldRecipients = String(decoding: try JSONEncoder().encode(old.recipients), as: UTF8.self)
                try await tx.execute(
                    "UPDATE data_inventory SET data_name = ?, category_id = ?, purpose = ?, legal_basis = ?, retention_days = ?, recipients = ?, third_party_sharing = ?, encryption = ?, access_level = ?, updated_at = ? WHERE id = ?",
                    [name ?? old.data_name, input.category_id?.lowercased() ?? old.category_id, purpose ?? old.purpose,
                     (input.legal_basis ?? old.legal_basis).rawValue, days ?? old.retention_days, recipientsText ?? oldRecipients,
                     input.third_party_sharing ?? old.third_party_sharing, input.encryption ?? old.encryption,
                     (input.access_level ?? old.access_level).rawValue, Timestamp.now(), id])
                let new = try await item(tx, id)
                try await tx.enqueue([audit(env, .complianceUpdate, context, "data_inventory", id, "inventory item \(new.data_name) updated", old: old, new: new)])
                return new
            })
        }
        inventory.delete(":id") { _, context -> JSONResponse<[String: Bool]> in
            try context.requireRoles(managers)
            let id = try Validate.id(context.parameters.get("id"), "inventory item")
            try await db.transaction { tx in
                let old = try await item(tx, id)
                try await tx.execute("DELETE FROM data_inventory WHERE id = ?", [id])
                try await tx.enqueue([audit(env, .complianceDelete, context, "data_inventory", id, "inventory item \(old.data_name) deleted", old: old, new: noItem)])
            }
            return JSONResponse(["ok": true])
        }

        // Access grants ---------------------------------------------------------------------------
        let grants = router.group("api/v1/access-grants")
        let noGrant: AccessGrant? = nil
        grants.post { request, context -> JSONResponse<AccessGrant> in
            let caller = try context.requireRoles(managers)
            let input = try await request.decode(as: GrantInput.self, context: context)
            let employee = try Validate.nonEmpty(input.employee_id, "employee_id", max: 64)
            let reason = try Validate.nonEmpty(input.reason, "reason", max: 500)
            guard let expires = EventTime.parse(input.expires_at) else { throw APIError.unprocessable("expires_at: expected an ISO 8601 date-time") }
            guard expires > Date() else { throw APIError.badRequest("expires_at must be in the future") }
            let id = UUID().uuidString.lowercased()
            return JSONResponse(try await db.transaction { tx in
                try await requireCategory(tx, input.data_category_id)
                try await tx.execute("INSERT INTO access_grants (id, employee_id, data_category_id, reason, granted_by, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     [id, employee, input.data_category_id.lowercased(), reason, caller.subject, EventTime.format(expires), Timestamp.now()])
                let g = try await grant(tx, id)
                try await tx.enqueue([audit(env, .complianceCreate, context, "access_grant", id, "access to \(g.data_category_id) granted to employee \(employee)", old: noGrant, new: g)])
                return g
            }, status: .created)
        }
        grants.get { request, context -> JSONResponse<Page<AccessGrant>> in
            try context.requireRoles(readers)
            let page = try Pagination(request)
            let now = Timestamp.now()
            var clauses: [String] = []
            var binds: [any DBBindable] = []
            if let e = Query.string(request, "employee_id") { clauses.append("employee_id = ?"); binds.append(e) }
            switch Query.string(request, "active") {
            case nil: break
            case "true": clauses.append("revoked_at IS NULL AND expires_at > ?"); binds.append(now)
            case "false": clauses.append("(revoked_at IS NOT NULL OR expires_at <= ?)"); binds.append(now)
            case let other?: throw APIError.unprocessable("active: '\(other)' is not one of true, false")
            }
            let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
            let total = try await db.count("SELECT COUNT(*) AS n FROM access_grants" + filter, binds)
            let rows = try await db.query("SELECT * FROM access_grants\(filter) ORDER BY created_at, id LIMIT ? OFFSET ?", binds + [page.limit, page.offset])
            return JSONResponse(Page(total: total, offset: page.offset, limit: page.limit, items: try rows.map { try AccessGrant(row: $0, now: now) }))
        }
        grants.get(":id") { _, context -> JSONResponse<AccessGrant> in
            try context.requireRoles(readers)
            return JSONResponse(try await grant(db, try Validate.id(context.parameters.get("id"), "access grant")))
        }
        grants.delete(":id") { _, context -> JSONResponse<AccessGrant> in
            try context.requireRoles(managers)
            let id = try Validate.id(context.parameters.get("id"), "access grant")
            return JSONResponse(try await db.transaction { tx in
                let old = try await grant(tx, id)
                guard old.revoked_at == nil else { throw APIError.conflict("access grant \(id) is already revoked") }
                try await tx.execute("UPDATE access_grants SET revoked_at = ? WHERE id = ?", [Timestamp.now(), id])
                let new = try await grant(tx, id)
                try await tx.enqueue([audit(env, .complianceDelete, context, "access_grant", id, "access grant revoked", old: old, new: new)])
                return new
            })
        }
    }
}
