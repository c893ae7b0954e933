import Foundation

/// Reads Kafka's JSON message specs (JSON with `//` line comments).
public enum SpecLoader {
    /// Removes `//` comments outside string literals, keeping line structure.
    public static func stripComments(_ text: String) -> String {
        var out = [UInt8]()
        let bytes = Array(text.utf8)
        out.reserveCapacity(bytes.count)
        var i = 0
        var inString = false
        while i < bytes.count {
            let c = bytes[i]
            if inString {
                out.append(c)
                if c == UInt8(ascii: "\\"), i + 1 < bytes.count {
                    out.append(bytes[i + 1])
                    i += 2
                    continue
                }
                if c == UInt8(ascii: "\"") { inString = false }
                i += 1
            } else if c == UInt8(ascii: "\"") {
                inString = true
                out.append(c)
                i += 1
            } else if c == UInt8(ascii: "/"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "/") {
                while i < bytes.count, bytes[i] != UInt8(ascii: "\n") { i += 1 }
            } else {
                out.append(c)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func load(file url: URL) throws -> MessageSpec {
        let fileName = url.lastPathComponent
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw GeneratorError.io("cannot read \(url.path): \(error)")
        }
        let stripped = stripComments(text)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(stripped.utf8))
        } catch {
            throw GeneratorError.badSpec(file: fileName, reason: "invalid JSON: \(error)")
        }
        guard let root = json as? [String: Any] else {
            throw GeneratorError.badSpec(file: fileName, reason: "top level is not an object")
        }
        return try parseMessage(root, fileName: fileName)
    }

    static func parseMessage(_ o: [String: Any], fileName: String) throws -> MessageSpec {
        guard let name = o["name"] as? String else { throw GeneratorError.badSpec(file: fileName, reason: "no name") }
        guard let kind = o["type"] as? String else { throw GeneratorError.badSpec(file: fileName, reason: "no type") }
        let valid = try VersionSet.parse(string(o["validVersions"]) ?? "0")
        let flexible = try VersionSet.parse(string(o["flexibleVersions"]) ?? "none")
        let fields = try parseFields(o["fields"], file: fileName, parentVersions: valid)
        var common: [CommonStructSpec] = []
        for c in (o["commonStructs"] as? [[String: Any]]) ?? [] {
            guard let cname = c["name"] as? String else {
                throw GeneratorError.badSpec(file: fileName, reason: "common struct without a name")
            }
            let versions = try VersionSet.parse(string(c["versions"]) ?? "0+")
            common.append(CommonStructSpec(
                name: cname, versions: versions,
                fields: try parseFields(c["fields"], file: fileName, parentVersions: versions)))
        }
        var apiKey: Int?
        if let k = o["apiKey"] { apiKey = (k as? NSNumber)?.intValue }
        return MessageSpec(
            fileName: fileName, name: name, kind: kind, apiKey: apiKey,
            validVersions: valid, flexibleVersions: flexible,
            latestVersionUnstable: (o["latestVersionUnstable"] as? Bool) ?? false,
            fields: fields, commonStructs: common)
    }

    static func parseFields(_ any: Any?, file: String, parentVersions: VersionSet) throws -> [FieldSpec] {
        guard let list = any as? [[String: Any]] else { return [] }
        return try list.map { f in
            guard let name = f["name"] as? String, let typeName = f["type"] as? String else {
                throw GeneratorError.badSpec(file: file, reason: "field without name or type")
            }
            let versions = try f["versions"].flatMap(string).map(VersionSet.parse) ?? parentVersions
            let tag = (f["tag"] as? NSNumber)?.intValue
            var tagged = try f["taggedVersions"].flatMap(string).map(VersionSet.parse) ?? .empty
            if tag != nil && tagged.isEmpty { tagged = versions }
            if tag == nil { tagged = .empty }
            let nested: [FieldSpec]? = f["fields"] == nil
                ? nil : try parseFields(f["fields"], file: file, parentVersions: versions)
            return FieldSpec(
                name: name,
                typeName: typeName,
                type: FieldType.parse(typeName),
                versions: versions,
                nullableVersions: try f["nullableVersions"].flatMap(string).map(VersionSet.parse) ?? .empty,
                taggedVersions: tagged,
                tag: tag,
                flexibleVersions: try f["flexibleVersions"].flatMap(string).map(VersionSet.parse),
                ignorable: (f["ignorable"] as? Bool) ?? false,
                defaultValue: f["default"].flatMap(string),
                about: f["about"] as? String,
                fields: nested)
        }
    }

    /// JSON values that the specs sometimes write as strings and sometimes as numbers or booleans.
    static func string(_ any: Any?) -> String? {
        switch any {
        case let s as String: return s
        case let n as NSNumber:
            // JSONSerialization gives booleans as NSNumber too; tell them apart by their type encoding.
            if String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
            return n.stringValue
        default: return nil
        }
    }
}
