import Foundation

/// A set of message versions, kept as sorted, disjoint, non-adjacent closed ranges.
/// Open-ended spec ranges ("3+") run up to `VersionSet.maxVersion`.
public struct VersionSet: Equatable, Sendable, CustomStringConvertible {
    public static let maxVersion = Int(Int16.max)
    public private(set) var ranges: [ClosedRange<Int>]

    public init(_ ranges: [ClosedRange<Int>] = []) {
        self.ranges = VersionSet.normalize(ranges)
    }

    public static let empty = VersionSet()
    public static func from(_ lo: Int) -> VersionSet { VersionSet([lo...maxVersion]) }

    /// Parses Kafka's version syntax: "none", "N", "N+", "N-M".
    public static func parse(_ text: String) throws -> VersionSet {
        let s = text.trimmingCharacters(in: .whitespaces)
        if s == "none" || s.isEmpty { return .empty }
        if s.hasSuffix("+") {
            guard let lo = Int(s.dropLast()) else { throw GeneratorError.badVersions(text) }
            return .from(lo)
        }
        if let dash = s.firstIndex(of: "-") {
            guard let lo = Int(s[..<dash]), let hi = Int(s[s.index(after: dash)...]), lo <= hi else {
                throw GeneratorError.badVersions(text)
            }
            return VersionSet([lo...hi])
        }
        guard let v = Int(s) else { throw GeneratorError.badVersions(text) }
        return VersionSet([v...v])
    }

    static func normalize(_ input: [ClosedRange<Int>]) -> [ClosedRange<Int>] {
        let sorted = input.sorted { $0.lowerBound < $1.lowerBound }
        var out: [ClosedRange<Int>] = []
        for r in sorted {
            if let last = out.last, r.lowerBound <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    public var isEmpty: Bool { ranges.isEmpty }
    public var lowest: Int? { ranges.first?.lowerBound }
    public var highest: Int? { ranges.last?.upperBound }
    /// The smallest single range holding every version of the set.
    public var hull: VersionSet {
        guard let lo = lowest, let hi = highest else { return .empty }
        return VersionSet([lo...hi])
    }

    public func contains(_ v: Int) -> Bool { ranges.contains { $0.contains(v) } }

    public func intersection(_ other: VersionSet) -> VersionSet {
        var out: [ClosedRange<Int>] = []
        for a in ranges {
            for b in other.ranges {
                let lo = max(a.lowerBound, b.lowerBound), hi = min(a.upperBound, b.upperBound)
                if lo <= hi { out.append(lo...hi) }
            }
        }
        return VersionSet(out)
    }

    public func union(_ other: VersionSet) -> VersionSet { VersionSet(ranges + other.ranges) }

    public func subtracting(_ other: VersionSet) -> VersionSet {
        var current = ranges
        for b in other.ranges {
            var next: [ClosedRange<Int>] = []
            for a in current {
                if b.upperBound < a.lowerBound || b.lowerBound > a.upperBound {
                    next.append(a)
                    continue
                }
                if a.lowerBound < b.lowerBound { next.append(a.lowerBound...(b.lowerBound - 1)) }
                if a.upperBound > b.upperBound { next.append((b.upperBound + 1)...a.upperBound) }
            }
            current = next
        }
        return VersionSet(current)
    }

    public func isSuperset(of other: VersionSet) -> Bool { other.subtracting(self).isEmpty }

    public var description: String {
        if ranges.isEmpty { return "none" }
        return ranges.map { r in
            if r.upperBound >= VersionSet.maxVersion { return "\(r.lowerBound)+" }
            return r.lowerBound == r.upperBound ? "\(r.lowerBound)" : "\(r.lowerBound)-\(r.upperBound)"
        }.joined(separator: ",")
    }

    /// A Swift boolean expression over `version` that is true exactly for the versions of this set,
    /// assuming `version` is already known to lie in `context`. Returns nil when it is always true
    /// there and "false" when never.
    public func condition(within context: VersionSet, variable: String = "version") -> String? {
        let s = intersection(context)
        if s.isEmpty { return "false" }
        if s.isSuperset(of: context) { return nil }
        let lo = context.lowest ?? 0, hi = context.highest ?? VersionSet.maxVersion
        // Parts of the context not in the set, to pick the shortest test.
        let parts: [String] = s.ranges.map { r in
            let touchesLow = r.lowerBound <= lo, touchesHigh = r.upperBound >= hi
            if touchesLow && !touchesHigh { return "\(variable) <= \(r.upperBound)" }
            if touchesHigh && !touchesLow { return "\(variable) >= \(r.lowerBound)" }
            if r.lowerBound == r.upperBound { return "\(variable) == \(r.lowerBound)" }
            return "(\(r.lowerBound)...\(r.upperBound)).contains(\(variable))"
        }
        return parts.joined(separator: " || ")
    }
}

public enum GeneratorError: Error, CustomStringConvertible {
    case badVersions(String)
    case badSpec(file: String, reason: String)
    case missingSpec(String)
    case io(String)

    public var description: String {
        switch self {
        case let .badVersions(s): "invalid version range \"\(s)\""
        case let .badSpec(file, reason): "\(file): \(reason)"
        case let .missingSpec(name): "no spec named \(name) (looked for \(name).json, \(name)Request.json and \(name)Response.json)"
        case let .io(s): s
        }
    }
}

/// The type of a field, as written in a spec.
public indirect enum FieldType: Equatable, Sendable {
    case bool, int8, int16, uint16, int32, uint32, int64, float64, string, uuid, bytes, records
    case array(FieldType)
    /// A struct, by the name the spec gives it.
    case structure(String)

    static func parse(_ s: String) -> FieldType {
        if s.hasPrefix("[]") { return .array(parse(String(s.dropFirst(2)))) }
        switch s {
        case "bool": return .bool
        case "int8": return .int8
        case "int16": return .int16
        case "uint16": return .uint16
        case "int32": return .int32
        case "uint32": return .uint32
        case "int64": return .int64
        case "float64": return .float64
        case "string": return .string
        case "uuid": return .uuid
        case "bytes": return .bytes
        case "records": return .records
        default: return .structure(s)
        }
    }

    /// Types that can be null on the wire (when the field's nullableVersions say so).
    var canBeNull: Bool {
        switch self {
        case .string, .bytes, .records, .array, .structure: true
        default: false
        }
    }

    var isStructOrStructArray: Bool {
        switch self {
        case .structure: true
        case let .array(e): e.isStructOrStructArray
        default: false
        }
    }
}

/// One field of a spec, as written in the JSON.
public struct FieldSpec: Sendable {
    public var name: String
    public var typeName: String
    public var type: FieldType
    public var versions: VersionSet
    public var nullableVersions: VersionSet
    public var taggedVersions: VersionSet
    public var tag: Int?
    public var flexibleVersions: VersionSet?
    public var ignorable: Bool
    public var defaultValue: String?
    public var about: String?
    /// Inline struct definition (for struct and struct-array fields).
    public var fields: [FieldSpec]?
}

/// A struct declared in `commonStructs`.
public struct CommonStructSpec: Sendable {
    public var name: String
    public var versions: VersionSet
    public var fields: [FieldSpec]
}

/// One JSON spec file.
public struct MessageSpec: Sendable {
    public var fileName: String
    public var name: String
    /// "request", "response", "header" or "data".
    public var kind: String
    public var apiKey: Int?
    public var validVersions: VersionSet
    public var flexibleVersions: VersionSet
    public var latestVersionUnstable: Bool
    public var fields: [FieldSpec]
    public var commonStructs: [CommonStructSpec]

    public var isRequest: Bool { kind == "request" }
    public var isResponse: Bool { kind == "response" }
    /// The API name: "Produce" for ProduceRequest and ProduceResponse, the spec name otherwise.
    public var apiName: String {
        for suffix in ["Request", "Response"] where (kind == suffix.lowercased()) && name.hasSuffix(suffix) {
            return String(name.dropLast(suffix.count))
        }
        return name
    }
}
