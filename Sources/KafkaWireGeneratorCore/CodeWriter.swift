/// Accumulates indented Swift source.
struct CodeWriter {
    private(set) var lines: [String] = []
    private var depth = 0

    mutating func line(_ s: String = "") {
        lines.append(s.isEmpty ? "" : String(repeating: "    ", count: depth) + s)
    }

    /// `header {`, the body one level deeper, then `}` (or `closing`).
    mutating func block(_ header: String, closing: String = "}", _ body: (inout CodeWriter) throws -> Void) rethrows {
        line(header + " {")
        depth += 1
        try body(&self)
        depth -= 1
        line(closing)
    }

    /// The body one level deeper, without braces.
    mutating func indented(_ body: (inout CodeWriter) throws -> Void) rethrows {
        depth += 1
        try body(&self)
        depth -= 1
    }

    mutating func doc(_ text: String?) {
        guard let text, !text.isEmpty else { return }
        line("/// " + Naming.docText(text))
    }

    var text: String { lines.joined(separator: "\n") + "\n" }
}
