/// Records whose absent optional fields are written as `null` rather than left out (synthesized Encodable
/// omits them): the OpenAPI documents list every field as required, nullable where it may be empty, and
/// the HR frontend reads them that way. Encodes each stored property under its own name.
public protocol NullEncodingRecord: Encodable {}

private protocol OptionalValue { var isNone: Bool { get } }
extension Optional: OptionalValue { var isNone: Bool { self == nil } }

private struct PropertyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension NullEncodingRecord {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: PropertyKey.self)
        for child in Mirror(reflecting: self).children {
            guard let label = child.label else { continue }
            let key = PropertyKey(stringValue: label)
            if let optional = child.value as? any OptionalValue, optional.isNone {
                try container.encodeNil(forKey: key)
            } else if let value = child.value as? any Encodable {
                try container.encode(value, forKey: key)
            } else {
                throw EncodingError.invalidValue(child.value, .init(codingPath: container.codingPath + [key],
                                                                    debugDescription: "\(label) is not Encodable"))
            }
        }
    }
}
