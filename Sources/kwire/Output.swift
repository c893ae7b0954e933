// Standard output for data (buffered, flushed on demand and at exit) and standard error for
// diagnostics, aligned tables and a small JSON writer whose keys keep their order.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Standard output, buffered. A closed pipe (the reader went away, as with `| head`) is remembered
/// rather than fatal: `broken` turns true and writing stops, as kcat stops on SIGPIPE.
final class Output: Sendable {
    private struct State {
        var buffer: [UInt8] = []
        var broken = false
    }
    private let state = Mutex(State())
    private let fd: Int32
    /// Flush when this much is buffered.
    private let limit = 64 * 1024

    init(fd: Int32) { self.fd = fd }

    var broken: Bool { state.withLock { $0.broken } }

    func write(_ text: String) { write(Array(text.utf8)) }

    func write(_ bytes: [UInt8]) {
        state.withLock { s in
            if s.broken { return }
            s.buffer.append(contentsOf: bytes)
            if s.buffer.count >= limit { Self.drain(&s, fd) }
        }
    }

    func flush() {
        state.withLock { s in Self.drain(&s, fd) }
    }

    private static func drain(_ s: inout State, _ fd: Int32) {
        var offset = 0
        while offset < s.buffer.count && !s.broken {
            let n = s.buffer.withUnsafeBytes { raw in
                posixWrite(fd, raw.baseAddress! + offset, raw.count - offset)
            }
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                s.broken = true
            }
        }
        s.buffer.removeAll(keepingCapacity: true)
    }
}

private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    write(fd, p, n)
}

/// Data: standard output.
let stdoutWriter = Output(fd: 1)

/// One diagnostic line on standard error, written at once.
func printError(_ line: String) {
    stdoutWriter.flush()
    let bytes = Array((line.hasSuffix("\n") ? line : line + "\n").utf8)
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = posixWrite(2, raw.baseAddress! + offset, raw.count - offset)
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
        }
    }
}

// MARK: Tables

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
func renderTable(_ headers: [String], _ rows: [[String]]) -> String {
    let all = [headers] + rows
    let columns = all.map(\.count).max() ?? 0
    var widths = [Int](repeating: 0, count: columns)
    for row in all {
        for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
    }
    var out = ""
    for row in all {
        var line = ""
        for (i, cell) in row.enumerated() {
            if i == row.count - 1 {
                line += cell
            } else {
                line += cell + String(repeating: " ", count: widths[i] - cell.count + 2)
            }
        }
        while line.hasSuffix(" ") { line.removeLast() }
        out += line + "\n"
    }
    return out
}

// MARK: JSON

/// A JSON value whose objects keep their keys in the order given (and may repeat one, as kcat's
/// header objects do).
enum JSON {
    case null
    case bool(Bool)
    case int(Int64)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    static func int(_ n: Int32) -> JSON { .int(Int64(n)) }
    static func int(_ n: Int) -> JSON { .int(Int64(n)) }
    static func int(_ n: Int16) -> JSON { .int(Int64(n)) }
    static func optionalString(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }

    var rendered: String {
        var out = ""
        render(into: &out)
        return out
    }

    func render(into out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(n): out += String(n)
        case let .string(s): JSON.quote(s, into: &out)
        case let .array(items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.render(into: &out)
            }
            out += "]"
        case let .object(fields):
            out += "{"
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out += "," }
                JSON.quote(key, into: &out)
                out += ":"
                value.render(into: &out)
            }
            out += "}"
        }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// Prints a listing: one JSON document with `--json`, else the table.
func emitListing(json: Bool, _ document: @autoclosure () -> JSON, table: @autoclosure () -> String) {
    if json {
        stdoutWriter.write(document().rendered + "\n")
    } else {
        stdoutWriter.write(table())
    }
    stdoutWriter.flush()
}
