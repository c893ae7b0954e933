/// A struct to generate: a top-level message or one of its nested structs.
public final class StructModel {
    public let swiftName: String
    public let specName: String
    public let isTopLevel: Bool
    /// The struct this one is declared in (nil for the top-level message). Inline structs are nested in
    /// the struct whose field defines them, common structs in the top-level message.
    public let parent: StructModel?
    public internal(set) var fields: [FieldModel]
    /// The versions this struct is encoded in (the hull of every use).
    public internal(set) var context: VersionSet = .empty

    init(swiftName: String, specName: String, parent: StructModel?, fields: [FieldModel]) {
        self.swiftName = swiftName
        self.specName = specName
        self.isTopLevel = parent == nil
        self.parent = parent
        self.fields = fields
    }

    /// The full Swift name, e.g. "ProduceRequest.TopicProduceData.PartitionProduceData".
    public var qualifiedName: String {
        guard let parent else { return swiftName }
        return parent.qualifiedName + "." + swiftName
    }

    /// How code in the body of `context` names this struct: plainly when lexical lookup finds it (it is
    /// declared in `context` or next to it), by its full name otherwise.
    public func reference(from context: StructModel) -> String {
        if parent === context || (parent != nil && parent === context.parent) { return swiftName }
        return qualifiedName
    }
}

public struct FieldModel {
    public let spec: FieldSpec
    /// lowerCamel name, not escaped.
    public let name: String
    /// The field type with `.structure` holding the Swift name of the resolved struct.
    public internal(set) var type: FieldType
    /// For struct fields whose struct is declared elsewhere (commonStructs): the spec name to look up.
    var pendingReference: String?

    /// The identifier to declare the property with.
    public var identifier: String { Naming.identifier(name) }

    /// Whether the Swift property is Optional: nullable in any version, and always for records.
    public var isOptional: Bool {
        if case .records = type { return true }
        return type.canBeNull && !spec.nullableVersions.intersection(spec.versions).isEmpty
    }
}

/// One spec, resolved: struct names made unique, references bound, version contexts computed.
public final class MessageModel {
    public let spec: MessageSpec
    public let top: StructModel
    /// Nested structs, parents before children: inline definitions depth-first, then each common
    /// struct followed by its own inline definitions.
    public let nested: [StructModel]
    private let byName: [String: StructModel]

    init(spec: MessageSpec, top: StructModel, nested: [StructModel]) {
        self.spec = spec
        self.top = top
        self.nested = nested
        var byName: [String: StructModel] = [:]
        for s in nested { byName[s.swiftName] = s }
        self.byName = byName
    }

    /// A nested struct by its (message-unique) Swift name.
    public func structNamed(_ swiftName: String) -> StructModel? { byName[swiftName] }
}

enum Resolver {
    /// Names a nested struct must not take: they would shadow types the generated code uses.
    static let reservedTypeNames: Set<String> = [
        "Response", "TaggedField", "KafkaUUID", "WireWriter", "WireReader", "KafkaEncodingError",
        "WireDecodingError", "String", "Bool", "Int", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16",
        "UInt32", "UInt64", "Double", "Array", "Optional", "Self", "Type", "Protocol", "Any", "Error",
        "Sendable", "Equatable", "GeneratedStruct", "KafkaMessage", "KafkaRequest", "KafkaResponse",
        "ClosedRange", "ApiKey", "KafkaErrorCode",
    ]

    static func resolve(_ spec: MessageSpec) throws -> MessageModel {
        var reserved = reservedTypeNames
        reserved.insert(spec.name)
        if spec.isRequest || spec.isResponse {
            reserved.insert(spec.apiName + "Request")
            reserved.insert(spec.apiName + "Response")
        }
        var taken: [String: String] = [:]  // swift name -> definition signature
        func claim(_ specName: String, signature: String) -> (name: String, isNew: Bool) {
            var base = specName
            if reserved.contains(base) { base += "Data" }
            var candidate = base
            var n = 2
            while true {
                if let existing = taken[candidate] {
                    if existing == signature { return (candidate, false) }
                } else if !reserved.contains(candidate) {
                    taken[candidate] = signature
                    return (candidate, true)
                }
                candidate = base + String(n)
                n += 1
            }
        }

        // Common structs claim their names first: references to them use the plain spec name.
        let top = StructModel(swiftName: spec.name, specName: spec.name, parent: nil, fields: [])
        var commonByName: [String: StructModel] = [:]
        var commonFieldLists: [(StructModel, [FieldSpec])] = []
        for c in spec.commonStructs {
            let (name, _) = claim(c.name, signature: "common:" + c.name)
            let s = StructModel(swiftName: name, specName: c.name, parent: top, fields: [])
            commonByName[c.name] = s
            commonFieldLists.append((s, c.fields))
        }

        var inline: [StructModel] = []
        var firstInlineByName: [String: StructModel] = [:]

        func structName(of type: FieldType) -> String? {
            switch type {
            case let .structure(n): n
            case let .array(e): structName(of: e)
            default: nil
            }
        }
        func replacingStruct(in type: FieldType, with name: String) -> FieldType {
            switch type {
            case .structure: .structure(name)
            case let .array(e): .array(replacingStruct(in: e, with: name))
            default: type
            }
        }

        func makeFields(_ specs: [FieldSpec], owner: StructModel) throws -> [FieldModel] {
            var out: [FieldModel] = []
            var seen: Set<String> = []
            for f in specs {
                if case let .array(inner) = f.type, case .array = inner {
                    throw GeneratorError.badSpec(file: spec.fileName, reason: "\(owner.swiftName).\(f.name): arrays of arrays are not supported")
                }
                var model = FieldModel(spec: f, name: Naming.lowerCamel(f.name), type: f.type)
                guard seen.insert(model.name).inserted else {
                    throw GeneratorError.badSpec(file: spec.fileName, reason: "\(owner.swiftName): duplicate field \(f.name)")
                }
                if let sname = structName(of: f.type) {
                    if let nestedFields = f.fields {
                        let signature = String(describing: nestedFields.map(signatureOf))
                        let (name, isNew) = claim(sname, signature: signature)
                        model.type = replacingStruct(in: f.type, with: name)
                        if isNew {
                            let s = StructModel(swiftName: name, specName: sname, parent: owner, fields: [])
                            inline.append(s)
                            if firstInlineByName[sname] == nil { firstInlineByName[sname] = s }
                            s.fields = try makeFields(nestedFields, owner: s)
                        }
                    } else {
                        model.pendingReference = sname
                    }
                } else if f.fields != nil {
                    throw GeneratorError.badSpec(file: spec.fileName, reason: "\(owner.swiftName).\(f.name): fields on a non-struct type")
                }
                out.append(model)
            }
            return out
        }

        top.fields = try makeFields(spec.fields, owner: top)
        var ordered = inline
        for (common, fields) in commonFieldLists {
            inline = []
            common.fields = try makeFields(fields, owner: common)
            ordered.append(common)
            ordered += inline
        }
        let all = [top] + ordered

        // Bind references to common structs (or, failing that, to an inline definition of that name).
        for s in all {
            for i in s.fields.indices {
                guard let ref = s.fields[i].pendingReference else { continue }
                guard let target = commonByName[ref] ?? firstInlineByName[ref] else {
                    throw GeneratorError.badSpec(file: spec.fileName, reason: "\(s.swiftName).\(s.fields[i].spec.name): unknown struct \(ref)")
                }
                s.fields[i].type = replacingStruct(in: s.fields[i].type, with: target.swiftName)
                s.fields[i].pendingReference = nil
            }
        }

        // Version contexts: the versions in which each struct can be encoded.
        var byName: [String: StructModel] = [:]
        for s in all { byName[s.swiftName] = s }
        func propagate(_ s: StructModel, _ ctx: VersionSet) {
            for f in s.fields {
                guard let child = structName(of: f.type).flatMap({ byName[$0] }) else { continue }
                let childCtx = ctx.intersection(f.spec.versions)
                if childCtx.isEmpty { continue }
                let grown = child.context.union(childCtx).hull
                if grown != child.context {
                    child.context = grown
                    propagate(child, grown)
                }
            }
        }
        top.context = spec.validVersions.hull
        propagate(top, top.context)
        for s in all where s.context.isEmpty {
            s.context = spec.validVersions.hull
        }
        return MessageModel(spec: spec, top: top, nested: ordered)
    }

    static func signatureOf(_ f: FieldSpec) -> String {
        "\(f.name):\(f.typeName):\(f.versions):\(f.nullableVersions):\(f.taggedVersions):\(f.tag ?? -1):"
            + "\(f.flexibleVersions?.description ?? "-"):\(f.defaultValue ?? "-"):[\((f.fields ?? []).map(signatureOf).joined(separator: ","))]"
    }
}
