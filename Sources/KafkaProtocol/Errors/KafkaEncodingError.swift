/// Why a message could not be encoded. Thrown by the generated `encode(into:version:)` methods
/// before anything wrong reaches the wire.
public enum KafkaEncodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The version is outside the message's `validVersions`.
    case unsupportedVersion(message: String, version: Int16, validVersions: ClosedRange<Int16>)
    /// A field holds nil, but the version being encoded does not allow null for it.
    case nullNotAllowed(field: String)
    /// A field that the version being encoded does not have holds a value other than its default,
    /// and the spec marks it as not ignorable: sending the message without it would change its meaning.
    case nonDefaultValue(field: String, version: Int16)
    /// A string too long for its length prefix (more than 32767 UTF-8 bytes in a non-flexible version).
    case stringTooLong(field: String, length: Int)

    public var description: String {
        switch self {
        case let .unsupportedVersion(message, version, valid):
            "\(message) cannot be encoded at version \(version) (valid versions: \(valid.lowerBound)-\(valid.upperBound))"
        case let .nullNotAllowed(field):
            "\(field) is null, but it is not nullable in the version being encoded"
        case let .nonDefaultValue(field, version):
            "\(field) has a non-default value, but version \(version) cannot carry it"
        case let .stringTooLong(field, length):
            "\(field) is \(length) bytes long, more than a non-flexible string can hold (32767)"
        }
    }
}
