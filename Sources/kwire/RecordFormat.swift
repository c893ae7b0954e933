// How kwire consume prints a record: kcat's -f format tokens, or one JSON object a line (-J).
import KafkaWire

/// kcat's -f: %t topic, %p partition, %o offset, %k key, %K key length (-1 for null), %s value,
/// %S value length (-1 for null), %R value length as a 4-byte big-endian integer, %T timestamp (ms),
/// %h headers (name=value,...), %% a percent sign; \n \r \t \\ \xNN escapes.
struct RecordFormat: Sendable {
    enum Token: Sendable, Equatable {
        case literal([UInt8])
        case topic, partition, offset, key, keyLength, value, valueLength, valueLengthBinary, timestamp, headers
    }

    let tokens: [Token]
    /// Printed for a null key or value (-Z: "NULL", else nothing).
    let nullText: [UInt8]

    init(_ format: String, nullText: [UInt8]) throws(CLIError) {
        self.nullText = nullText
        var tokens: [Token] = []
        var literal: [UInt8] = []
        func flush() {
            if !literal.isEmpty { tokens.append(.literal(literal)); literal = [] }
        }
        let bytes = Array(format.utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "%"), i + 1 < bytes.count {
                let token: Token?
                switch bytes[i + 1] {
                case UInt8(ascii: "t"): token = .topic
                case UInt8(ascii: "p"): token = .partition
                case UInt8(ascii: "o"): token = .offset
                case UInt8(ascii: "k"): token = .key
                case UInt8(ascii: "K"): token = .keyLength
                case UInt8(ascii: "s"): token = .value
                case UInt8(ascii: "S"): token = .valueLength
                case UInt8(ascii: "R"): token = .valueLengthBinary
                case UInt8(ascii: "T"): token = .timestamp
                case UInt8(ascii: "h"): token = .headers
                case UInt8(ascii: "%"): token = nil; literal.append(UInt8(ascii: "%"))
                default:
                    throw .usage("-f: unknown token %\(Character(UnicodeScalar(bytes[i + 1]))) (tokens: %t %p %o %k %K %s %S %R %T %h)")
                }
                if let token {
                    flush()
                    tokens.append(token)
                }
                i += 2
            } else if b == UInt8(ascii: "\\"), i + 1 < bytes.count {
                // Escapes: reuse the delimiter parser on this escape only.
                var j = i + 2
                if bytes[i + 1] == UInt8(ascii: "x") {
                    while j < bytes.count, j < i + 4, isHex(bytes[j]) { j += 1 }
                }
                literal += try parseEscapes(String(decoding: bytes[i..<j], as: UTF8.self))
                i = j
            } else {
                literal.append(b)
                i += 1
            }
        }
        flush()
        self.tokens = tokens
    }

    func render(_ r: ConsumerRecord, into out: inout [UInt8]) {
        for t in tokens {
            switch t {
            case let .literal(bytes): out += bytes
            case .topic: out += Array(r.topic.utf8)
            case .partition: out += Array(String(r.partition).utf8)
            case .offset: out += Array(String(r.offset).utf8)
            case .key: out += r.key ?? nullText
            case .keyLength: out += Array(String(r.key.map { $0.count } ?? -1).utf8)
            case .value: out += r.value ?? nullText
            case .valueLength: out += Array(String(r.value.map { $0.count } ?? -1).utf8)
            case .valueLengthBinary:
                let n = UInt32(bitPattern: Int32(r.value.map { $0.count } ?? -1))
                out += [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
            case .timestamp: out += Array(String(r.timestamp).utf8)
            case .headers:
                for (i, h) in r.headers.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    out += Array(h.key.utf8)
                    if let v = h.value {
                        out.append(UInt8(ascii: "="))
                        out += v
                    }
                }
            }
        }
    }
}

private func isHex(_ b: UInt8) -> Bool {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b)
        || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(b)
}

/// -J: {"topic", "partition", "offset", "timestamp", "key", "value", "headers": {name: value}}, with
/// null for an absent key, value or header value. Bytes that are not UTF-8 are printed in base64
/// and flagged: "key_encoding"/"value_encoding": "base64", "header_encodings": {name: "base64"}.
func recordJSON(_ r: ConsumerRecord) -> JSON {
    func field(_ bytes: [UInt8]?) -> (JSON, Bool) {
        guard let bytes else { return (.null, false) }
        if let text = String(validating: bytes, as: UTF8.self) { return (.string(text), false) }
        return (.string(base64(bytes)), true)
    }
    let (key, keyBinary) = field(r.key)
    let (value, valueBinary) = field(r.value)
    var headers: [(String, JSON)] = []
    var headerEncodings: [(String, JSON)] = []
    for h in r.headers {
        let (v, binary) = field(h.value)
        headers.append((h.key, v))
        if binary { headerEncodings.append((h.key, .string("base64"))) }
    }
    var fields: [(String, JSON)] = [
        ("topic", .string(r.topic)), ("partition", .int(r.partition)), ("offset", .int(r.offset)),
        ("timestamp", .int(r.timestamp)), ("key", key), ("value", value), ("headers", .object(headers)),
    ]
    if keyBinary { fields.append(("key_encoding", .string("base64"))) }
    if valueBinary { fields.append(("value_encoding", .string("base64"))) }
    if !headerEncodings.isEmpty { fields.append(("header_encodings", .object(headerEncodings))) }
    return .object(fields)
}

func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i < bytes.count {
        let b0 = UInt32(bytes[i])
        let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
        let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
        let n = b0 << 16 | b1 << 8 | b2
        out.append(alphabet[Int(n >> 18 & 63)])
        out.append(alphabet[Int(n >> 12 & 63)])
        out.append(i + 1 < bytes.count ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
        out.append(i + 2 < bytes.count ? alphabet[Int(n & 63)] : UInt8(ascii: "="))
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}
