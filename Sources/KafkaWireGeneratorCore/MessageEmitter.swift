import Foundation

/// Emits the Swift source of one spec: the top-level struct and its nested structs.
struct MessageEmitter {
    let model: MessageModel
    var spec: MessageSpec { model.spec }

    /// Names the generated bodies use for locals and parameters: properties with these names are
    /// always accessed through `self.`.
    static let localNames: Set<String> = ["version", "flexible", "tagged", "w", "r", "tag", "e"]

    // MARK: Types and defaults

    /// The Swift type of `t` as written in the body of `context`.
    func swiftType(_ t: FieldType, in context: StructModel) -> String {
        switch t {
        case .bool: "Bool"
        case .int8: "Int8"
        case .int16: "Int16"
        case .uint16: "UInt16"
        case .int32: "Int32"
        case .uint32: "UInt32"
        case .int64: "Int64"
        case .float64: "Double"
        case .string: "String"
        case .uuid: "KafkaUUID"
        case .bytes, .records: "[UInt8]"
        case let .array(e): "[\(swiftType(e, in: context))]"
        case let .structure(n): structReference(n, from: context)
        }
    }

    func structReference(_ name: String, from context: StructModel) -> String {
        model.structNamed(name)?.reference(from: context) ?? name
    }

    func propertyType(_ f: FieldModel, in context: StructModel) -> String {
        swiftType(f.type, in: context) + (f.isOptional ? "?" : "")
    }

    /// Parses a spec integer default: decimal, 0x hex or 0-prefixed octal, optionally negative.
    static func parseInteger(_ s: String) -> Int64? {
        var text = s.trimmingCharacters(in: .whitespaces)
        var negative = false
        if text.hasPrefix("-") {
            negative = true
            text.removeFirst()
        }
        var magnitude: UInt64?
        if text.lowercased().hasPrefix("0x") {
            magnitude = UInt64(text.dropFirst(2), radix: 16)
        } else if text.count > 1, text.hasPrefix("0") {
            magnitude = UInt64(text.dropFirst(), radix: 8)
        } else {
            magnitude = UInt64(text)
        }
        guard let m = magnitude else { return nil }
        if negative {
            if m == UInt64(Int64.max) + 1 { return Int64.min }
            guard m <= UInt64(Int64.max) else { return nil }
            return -Int64(m)
        }
        guard m <= UInt64(Int64.max) else { return nil }
        return Int64(m)
    }

    static func integerBounds(_ t: FieldType) -> ClosedRange<Int64>? {
        switch t {
        case .int8: Int64(Int8.min)...Int64(Int8.max)
        case .int16: Int64(Int16.min)...Int64(Int16.max)
        case .uint16: 0...Int64(UInt16.max)
        case .int32: Int64(Int32.min)...Int64(Int32.max)
        case .uint32: 0...Int64(UInt32.max)
        case .int64: Int64.min...Int64.max
        default: nil
        }
    }

    /// The Swift expression of a field's default value.
    func defaultLiteral(_ f: FieldModel, in context: StructModel) throws -> String {
        let owner = context.qualifiedName
        let d = f.spec.defaultValue
        if d == "null" {
            if f.isOptional { return "nil" }
            throw GeneratorError.badSpec(file: spec.fileName, reason: "\(owner).\(f.spec.name): default null on a field that is never nullable")
        }
        switch f.type {
        case .bool:
            guard let d, !d.isEmpty else { return "false" }
            guard d == "true" || d == "false" else {
                throw GeneratorError.badSpec(file: spec.fileName, reason: "\(owner).\(f.spec.name): bad bool default \(d)")
            }
            return d
        case .int8, .int16, .uint16, .int32, .uint32, .int64:
            guard let d, !d.isEmpty else { return "0" }
            guard let v = Self.parseInteger(d), let bounds = Self.integerBounds(f.type), bounds.contains(v) else {
                throw GeneratorError.badSpec(file: spec.fileName, reason: "\(owner).\(f.spec.name): bad integer default \(d)")
            }
            return String(v)
        case .float64:
            guard let d, !d.isEmpty else { return "0" }
            guard let v = Double(d), v.isFinite else {
                throw GeneratorError.badSpec(file: spec.fileName, reason: "\(owner).\(f.spec.name): bad float default \(d)")
            }
            return v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
        case .string:
            return Naming.stringLiteral(d ?? "")
        case .uuid:
            return ".zero"
        case .bytes, .array:
            return "[]"
        case .records:
            return "nil"
        case let .structure(n):
            return "\(structReference(n, from: context))()"
        }
    }

    /// A boolean expression that is true when the field holds something other than its default.
    func nonDefaultTest(_ f: FieldModel, value: String, in context: StructModel) throws -> String {
        let d = try defaultLiteral(f, in: context)
        if d == "[]" && !f.isOptional { return "!\(value).isEmpty" }
        if case .bool = f.type { return d == "true" ? "!\(value)" : value }
        return "\(value) != \(d)"
    }

    /// How the generated bodies name a property: through `self.` when the name is a local of theirs or a
    /// keyword (a bare `` `self` `` would be self itself).
    func valueExpr(_ f: FieldModel) -> String {
        Self.localNames.contains(f.name) || f.identifier != f.name ? "self.\(f.identifier)" : f.identifier
    }

    // MARK: Version plans

    struct FieldPlan {
        let field: FieldModel
        /// Versions (within the struct's context) where the field is a regular, positional field.
        let regular: VersionSet
        /// Versions where it is a tagged field.
        let tagged: VersionSet
        /// Versions where it is not sent at all.
        let absent: VersionSet
    }

    struct StructPlan {
        let model: StructModel
        let qualifiedName: String
        let context: VersionSet
        let flexible: VersionSet
        let fields: [FieldPlan]

        /// "true", "false" or "flexible" (a local computed at the top of each body).
        var flexibleExpr: String {
            if flexible.isEmpty { return "false" }
            if flexible.isSuperset(of: context) { return "true" }
            return "flexible"
        }
    }

    func plan(_ s: StructModel) -> StructPlan {
        let ctx = s.context
        let flex = spec.flexibleVersions.intersection(ctx)
        let fields = s.fields.map { f -> FieldPlan in
            let present = f.spec.versions.intersection(ctx)
            let tagged = f.spec.tag == nil ? VersionSet.empty : present.intersection(f.spec.taggedVersions).intersection(flex)
            let regular = present.subtracting(f.spec.tag == nil ? .empty : f.spec.taggedVersions)
            return FieldPlan(field: f, regular: regular, tagged: tagged, absent: ctx.subtracting(regular.union(tagged)))
        }
        return StructPlan(model: s, qualifiedName: s.qualifiedName, context: ctx, flexible: flex, fields: fields)
    }

    /// The `compact:` argument for a field present in `presence`.
    func compactExpr(_ f: FieldModel, presence: VersionSet, plan: StructPlan) -> String {
        if let override = f.spec.flexibleVersions {
            return override.intersection(presence).condition(within: presence) ?? "true"
        }
        let flex = plan.flexible.intersection(presence)
        if flex.isEmpty { return "false" }
        if flex.isSuperset(of: presence) { return "true" }
        return plan.flexibleExpr
    }

    /// The `nullable:` argument for a field present in `presence`.
    func nullableExpr(_ f: FieldModel, presence: VersionSet) -> String {
        f.spec.nullableVersions.intersection(presence).condition(within: presence) ?? "true"
    }

    // MARK: Encoding statements

    /// A statement writing `value` of type `type`; `throws` tells whether it needs `try`.
    func writeStatement(
        _ type: FieldType, value: String, optional: Bool, compact: String, nullable: String, label: String
    ) throws -> (code: String, throws: Bool) {
        let lit = Naming.stringLiteral(label)
        switch type {
        case .bool: return ("w.writeBool(\(value))", false)
        case .int8: return ("w.writeInt8(\(value))", false)
        case .int16: return ("w.writeInt16(\(value))", false)
        case .uint16: return ("w.writeUInt16(\(value))", false)
        case .int32: return ("w.writeInt32(\(value))", false)
        case .uint32: return ("w.writeUInt32(\(value))", false)
        case .int64: return ("w.writeInt64(\(value))", false)
        case .float64: return ("w.writeFloat64(\(value))", false)
        case .uuid: return ("w.writeUUID(\(value))", false)
        case .string:
            if optional {
                return ("try w.writeStringField(\(value), compact: \(compact), nullable: \(nullable), \(lit))", true)
            }
            return ("try w.writeStringField(\(value), compact: \(compact), \(lit))", true)
        case .bytes, .records:
            if !optional { return ("w.writeBytes(\(value), compact: \(compact))", false) }
            if nullable == "true" { return ("w.writeNullableBytes(\(value), compact: \(compact))", false) }
            return ("try w.writeBytesField(\(value), compact: \(compact), nullable: \(nullable), \(lit))", true)
        case let .array(element):
            if case .structure = element {
                if optional {
                    return ("try w.writeStructArray(\(value), compact: \(compact), nullable: \(nullable), version: version, \(lit))", true)
                }
                return ("try w.writeStructArray(\(value), compact: \(compact), version: version)", true)
            }
            let elem = try writeStatement(element, value: "e", optional: false, compact: compact, nullable: "false", label: label + "[]")
            if optional {
                return ("try w.writeArray(\(value), compact: \(compact), nullable: \(nullable), \(lit)) { w, e in \(elem.code) }", true)
            }
            return ("\(elem.throws ? "try " : "")w.writeArray(\(value), compact: \(compact)) { w, e in \(elem.code) }", elem.throws)
        case .structure:
            if optional {
                return ("try w.writeNullableStruct(\(value), nullable: \(nullable), version: version, \(lit))", true)
            }
            return ("try \(value).encode(into: &w, version: version)", true)
        }
    }

    /// An expression reading a value of type `type` (always needs `try`).
    func readExpression(
        _ type: FieldType, optional: Bool, compact: String, nullable: String, label: String, in context: StructModel
    ) throws -> String {
        let lit = Naming.stringLiteral(label)
        let isNullable = optional && nullable != "false"
        switch type {
        case .bool: return "r.readBool(\(lit))"
        case .int8: return "r.readInt8(\(lit))"
        case .int16: return "r.readInt16(\(lit))"
        case .uint16: return "r.readUInt16(\(lit))"
        case .int32: return "r.readInt32(\(lit))"
        case .uint32: return "r.readUInt32(\(lit))"
        case .int64: return "r.readInt64(\(lit))"
        case .float64: return "r.readFloat64(\(lit))"
        case .uuid: return "r.readUUID(\(lit))"
        case .string:
            if !isNullable { return "r.readString(compact: \(compact), \(lit))" }
            if nullable == "true" { return "r.readNullableString(compact: \(compact), \(lit))" }
            return "r.readNullableString(compact: \(compact), nullable: \(nullable), \(lit))"
        case .bytes, .records:
            if !isNullable { return "r.readBytes(compact: \(compact), \(lit))" }
            if nullable == "true" { return "r.readNullableBytes(compact: \(compact), \(lit))" }
            return "r.readNullableBytes(compact: \(compact), nullable: \(nullable), \(lit))"
        case let .array(element):
            if case .structure = element {
                if !isNullable { return "r.readStructArray(compact: \(compact), version: version, \(lit))" }
                return "r.readStructArray(compact: \(compact), nullable: \(nullable), version: version, \(lit))"
            }
            let elem = try readExpression(
                element, optional: false, compact: compact, nullable: "false", label: label + "[]", in: context)
            if !isNullable { return "r.readArray(compact: \(compact), \(lit)) { r in try \(elem) }" }
            return "r.readArray(compact: \(compact), nullable: \(nullable), \(lit)) { r in try \(elem) }"
        case let .structure(name):
            if !isNullable { return "\(structReference(name, from: context))(from: &r, version: version)" }
            return "r.readNullableStruct(nullable: \(nullable), version: version, \(lit))"
        }
    }

    // MARK: Files

    /// The declarations of this spec (top-level struct, then an extension per nested struct).
    func emit(into w: inout CodeWriter) throws {
        let top = plan(model.top)
        emitTopDoc(into: &w)
        let conformance: String
        switch spec.kind {
        case "request": conformance = "KafkaRequest"
        case "response": conformance = "KafkaResponse"
        default: conformance = "KafkaMessage"
        }
        try w.block("public struct \(spec.name): \(conformance)") { w in
            if spec.isRequest {
                w.line("public typealias Response = \(spec.apiName)Response")
            }
            if let key = spec.apiKey, spec.isRequest || spec.isResponse {
                w.line("public static let apiKey: Int16 = \(key)")
            }
            guard let lo = spec.validVersions.lowest, let hi = spec.validVersions.highest else {
                throw GeneratorError.badSpec(file: spec.fileName, reason: "no valid versions")
            }
            w.line("public static let validVersions: ClosedRange<Int16> = \(lo)...\(hi)")
            let firstFlexible = spec.flexibleVersions.intersection(spec.validVersions).lowest
            w.line("public static let firstFlexibleVersion: Int16? = \(firstFlexible.map(String.init) ?? "nil")")
            w.line()
            try emitMembers(top, into: &w)
        }
        for s in model.nested {
            let p = plan(s)
            w.line()
            try w.block("extension \(s.parent?.qualifiedName ?? spec.name)") { w in
                try w.block("public struct \(s.swiftName): Sendable, Equatable, GeneratedStruct") { w in
                    try emitMembers(p, into: &w)
                }
            }
        }
    }

    func emitTopDoc(into w: inout CodeWriter) {
        var doc = "\(spec.name)"
        if let key = spec.apiKey, spec.isRequest || spec.isResponse { doc += " (API key \(key))" }
        doc += ", versions \(spec.validVersions)"
        if let f = spec.flexibleVersions.intersection(spec.validVersions).lowest {
            doc += ", flexible from version \(f)"
        }
        doc += "."
        if spec.latestVersionUnstable, let hi = spec.validVersions.highest {
            doc += " Version \(hi) is unstable: brokers only advertise it when unstable API versions are enabled."
        }
        w.line("/// " + doc)
    }

    func emitMembers(_ p: StructPlan, into w: inout CodeWriter) throws {
        // Properties.
        for fp in p.fields {
            let f = fp.field
            var about = f.spec.about ?? ""
            if !about.isEmpty, !about.hasSuffix(".") { about += "." }
            var notes: [String] = []
            if !f.spec.versions.isSuperset(of: p.context) { notes.append("Versions \(f.spec.versions)") }
            if let tag = f.spec.tag { notes.append("tagged (tag \(tag)) in versions \(f.spec.taggedVersions)") }
            let nullable = f.spec.nullableVersions.intersection(f.spec.versions)
            if !nullable.isEmpty { notes.append("nullable in versions \(nullable)") }
            let doc = ([about] + (notes.isEmpty ? [] : [notes.joined(separator: ", ") + "."]))
                .filter { !$0.isEmpty }.joined(separator: " ")
            w.doc(doc)
            w.line("public var \(f.identifier): \(propertyType(f, in: p.model)) = \(try defaultLiteral(f, in: p.model))")
        }
        w.doc("Tagged fields this schema does not know, kept so that re-encoding gives back the same bytes.")
        w.line("public var unknownTaggedFields: [TaggedField] = []")
        w.line()

        // Initializers.
        w.line("public init() {}")
        w.line()
        w.line("public init(")
        var params: [String] = []
        for fp in p.fields {
            let f = fp.field
            // A keyword parameter gets a plain internal name: a parameter `self` would hide self.
            let param = f.identifier == f.name ? f.name : "\(f.identifier) _\(f.name)"
            params.append("    \(param): \(propertyType(f, in: p.model)) = \(try defaultLiteral(f, in: p.model))")
        }
        params.append("    unknownTaggedFields: [TaggedField] = []")
        for (i, param) in params.enumerated() {
            w.line(param + (i == params.count - 1 ? "" : ","))
        }
        w.block(")") { w in
            for fp in p.fields {
                let f = fp.field
                w.line("self.\(f.identifier) = \(f.identifier == f.name ? f.name : "_" + f.name)")
            }
            w.line("self.unknownTaggedFields = unknownTaggedFields")
        }
        w.line()

        try emitEncode(p, into: &w)
        w.line()
        try emitDecode(p, into: &w)
    }

    func emitVersionGuard(_ p: StructPlan, encoding: Bool, into w: inout CodeWriter) {
        guard p.model.isTopLevel else { return }
        if encoding {
            w.line("guard Self.validVersions.contains(version) else {")
            w.line("    throw KafkaEncodingError.unsupportedVersion(message: \(Naming.stringLiteral(spec.name)), version: version, validVersions: Self.validVersions)")
            w.line("}")
        } else {
            w.line("guard Self.validVersions.contains(version) else {")
            w.line("    throw WireDecodingError.invalidValue(\"unsupported version \\(version) of \(spec.name) (valid: \\(Self.validVersions))\")")
            w.line("}")
        }
    }

    func emitFlexibleLocal(_ p: StructPlan, into w: inout CodeWriter) {
        if p.flexibleExpr == "flexible", let cond = p.flexible.condition(within: p.context) {
            w.line("let flexible = \(cond)")
        }
    }

    func emitEncode(_ p: StructPlan, into w: inout CodeWriter) throws {
        let owner = p.qualifiedName
        try w.block("public func encode(into w: inout WireWriter, version: Int16) throws") { w in
            emitVersionGuard(p, encoding: true, into: &w)
            emitFlexibleLocal(p, into: &w)
            for fp in p.fields {
                let f = fp.field
                let value = valueExpr(f)
                let label = "\(owner).\(f.name)"
                let checkAbsent = !f.spec.ignorable && !fp.absent.isEmpty
                let throwLine = "throw KafkaEncodingError.nonDefaultValue(field: \(Naming.stringLiteral(label)), version: version)"
                var absentHandled = false
                if !fp.regular.isEmpty {
                    let stmt = try writeStatement(
                        f.type, value: value, optional: f.isOptional,
                        compact: compactExpr(f, presence: fp.regular, plan: p),
                        nullable: nullableExpr(f, presence: fp.regular), label: label)
                    if let cond = fp.regular.condition(within: p.context) {
                        w.line("if \(cond) {")
                        w.line("    \(stmt.code)")
                        if checkAbsent && fp.tagged.isEmpty {
                            w.line("} else if \(try nonDefaultTest(f, value: value, in: p.model)) {")
                            w.line("    \(throwLine)")
                            absentHandled = true
                        }
                        w.line("}")
                    } else {
                        w.line(stmt.code)
                    }
                }
                if checkAbsent && !absentHandled {
                    let test = try nonDefaultTest(f, value: value, in: p.model)
                    if let cond = fp.absent.condition(within: p.context) {
                        w.line("if \(cond), \(test) {")
                    } else {
                        w.line("if \(test) {")
                    }
                    w.line("    \(throwLine)")
                    w.line("}")
                }
            }
            try emitTaggedEncode(p, into: &w)
        }
    }

    func emitTaggedEncode(_ p: StructPlan, into w: inout CodeWriter) throws {
        let flexExpr = p.flexibleExpr
        if flexExpr == "false" { return }
        let owner = p.qualifiedName
        let tagged = p.fields.filter { !$0.tagged.isEmpty }.sorted { ($0.field.spec.tag ?? 0) < ($1.field.spec.tag ?? 0) }
        func body(_ w: inout CodeWriter) throws {
            if tagged.isEmpty {
                w.line("w.writeTaggedFields(unknownTaggedFields)")
                return
            }
            w.line("var tagged = unknownTaggedFields")
            for fp in tagged {
                let f = fp.field
                let value = valueExpr(f)
                let stmt = try writeStatement(
                    f.type, value: value, optional: f.isOptional, compact: "true",
                    nullable: nullableExpr(f, presence: fp.tagged), label: "\(owner).\(f.name)")
                var conds: [String] = []
                if let c = fp.tagged.condition(within: p.flexible) { conds.append(c) }
                conds.append(try nonDefaultTest(f, value: value, in: p.model))
                w.block("if \(conds.joined(separator: ", "))") { w in
                    w.line("\(stmt.throws ? "try " : "")tagged.append(tag: \(f.spec.tag ?? 0)) { w in \(stmt.code) }")
                }
            }
            w.line("w.writeTaggedFields(tagged)")
        }
        if flexExpr == "true" {
            try body(&w)
        } else {
            try w.block("if flexible") { w in try body(&w) }
        }
    }

    func emitDecode(_ p: StructPlan, into w: inout CodeWriter) throws {
        let owner = p.qualifiedName
        try w.block("public init(from r: inout WireReader, version: Int16) throws") { w in
            emitVersionGuard(p, encoding: false, into: &w)
            w.line("self.init()")
            emitFlexibleLocal(p, into: &w)
            for fp in p.fields where !fp.regular.isEmpty {
                let f = fp.field
                let read = try readExpression(
                    f.type, optional: f.isOptional,
                    compact: compactExpr(f, presence: fp.regular, plan: p),
                    nullable: nullableExpr(f, presence: fp.regular), label: "\(owner).\(f.name)", in: p.model)
                let assign = "\(valueExpr(f)) = try \(read)"
                if let cond = fp.regular.condition(within: p.context) {
                    w.line("if \(cond) {")
                    w.line("    \(assign)")
                    w.line("}")
                } else {
                    w.line(assign)
                }
            }
            let flexExpr = p.flexibleExpr
            if flexExpr == "false" { return }
            let tagged = p.fields.filter { !$0.tagged.isEmpty }.sorted { ($0.field.spec.tag ?? 0) < ($1.field.spec.tag ?? 0) }
            func body(_ w: inout CodeWriter) throws {
                if tagged.isEmpty {
                    w.line("unknownTaggedFields = try r.readTaggedFields()")
                    return
                }
                w.line("unknownTaggedFields = try r.readTaggedFields { tag, r in")
                try w.indented { w in
                    w.line("switch tag {")
                    for fp in tagged {
                        let f = fp.field
                        let cond = fp.tagged.condition(within: p.flexible).map { " where \($0)" } ?? ""
                        w.line("case \(f.spec.tag ?? 0)\(cond):")
                        let read = try readExpression(
                            f.type, optional: f.isOptional, compact: "true",
                            nullable: nullableExpr(f, presence: fp.tagged), label: "\(owner).\(f.name)", in: p.model)
                        w.line("    \(valueExpr(f)) = try \(read)")
                    }
                    w.line("default:")
                    w.line("    return false")
                    w.line("}")
                    w.line("return true")
                }
                w.line("}")
            }
            if flexExpr == "true" {
                try body(&w)
            } else {
                try w.block("if flexible") { w in try body(&w) }
            }
        }
    }
}
