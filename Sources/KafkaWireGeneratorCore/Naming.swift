/// Swift spellings of spec names.
public enum Naming {
    /// Words that must be escaped with backticks to be used as identifiers. `type` is not reserved, but is
    /// escaped anyway so that every name that reads like a keyword is treated alike.
    static let keywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
        "inout", "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public",
        "rethrows", "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue",
        "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return",
        "throw", "switch", "where", "while", "Any", "as", "await", "false", "is", "nil", "self", "Self",
        "super", "throws", "true", "try", "type", "Type", "Protocol", "some", "any",
    ]

    /// "TopicData" -> "topicData", "KRaftVersion" -> "kRaftVersion", "ISR" -> "isr", "V3AndBelowTopics" -> "v3AndBelowTopics".
    public static func lowerCamel(_ name: String) -> String {
        let chars = Array(name)
        var upperRun = 0
        while upperRun < chars.count, chars[upperRun].isUppercase { upperRun += 1 }
        if upperRun == 0 { return name }
        if upperRun == chars.count { return name.lowercased() }
        // Keep the last capital of a run when it starts the next word ("URLPath" -> "urlPath").
        let lowerCount = (upperRun > 1 && chars[upperRun].isLowercase) ? upperRun - 1 : upperRun
        return String(chars[..<lowerCount]).lowercased() + String(chars[lowerCount...])
    }

    /// "NOT_LEADER_OR_FOLLOWER" -> "notLeaderOrFollower".
    public static func lowerCamelFromSnake(_ name: String) -> String {
        let parts = name.split(separator: "_").map { $0.lowercased() }
        guard let first = parts.first else { return name.lowercased() }
        return first + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// An identifier, escaped with backticks if it is a keyword.
    public static func identifier(_ name: String) -> String {
        keywords.contains(name) ? "`\(name)`" : name
    }

    /// A Swift string literal.
    public static func stringLiteral(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Text for a `///` doc comment: one line, whitespace collapsed.
    static func docText(_ s: String) -> String {
        s.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).joined(separator: " ")
    }
}
