#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A broker address as `host:port`.
public struct BrokerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port` or a bare host (port 9092), after an optional listener
    /// scheme as Kafka writes them (`SASL_SSL://host:port`).
    public init?(_ text: String) {
        var text = Substring(text.trimmingWhitespace())
        for scheme in ["tcp://", "PLAINTEXT://", "SSL://", "SASL_PLAINTEXT://", "SASL_SSL://"] {
            if text.count > scheme.count, text.prefix(scheme.count).uppercased() == scheme.uppercased() {
                text = text.dropFirst(scheme.count)
                break
            }
        }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty {
                port = 9092
            } else {
                guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            guard let p = Int(text[text.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            host = String(text)
            port = 9092
        }
        if host.isEmpty { return nil }
    }

    /// Parses a comma-separated bootstrap list.
    public static func list(_ text: String) -> [BrokerAddress] {
        text.split(separator: ",").compactMap { BrokerAddress(String($0)) }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

/// Thin, throwing wrappers over the POSIX calls a connection needs. Not thread-safe by itself:
/// a `Connection` owns one and touches it only from its I/O thread (and `close` once).
struct Socket {
    let fd: Int32

    static func errnoDescription(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    /// Resolves and connects with a deadline. Tries every address the name resolves to.
    static func connect(to address: BrokerAddress, timeoutMs: Int) throws(NetworkError) -> Socket {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc) || canImport(Musl)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(address.host, String(address.port), &hints, &result)
        guard rc == 0, let first = result else {
            throw .resolveFailed(address, String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(first) }

        var lastError = NetworkError.connectFailed(address, "no address")
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let ai = candidate {
            candidate = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            if fd < 0 { lastError = .connectFailed(address, errnoDescription()); continue }
            let s = Socket(fd: fd)
            do {
                try s.setNonBlocking()
                try s.connect(ai.pointee.ai_addr, ai.pointee.ai_addrlen, address: address, timeoutMs: timeoutMs)
                s.setOptions()
                return s
            } catch {
                s.close()
                lastError = error
            }
        }
        throw lastError
    }

    private func connect(_ addr: UnsafeMutablePointer<sockaddr>?, _ len: socklen_t, address: BrokerAddress, timeoutMs: Int) throws(NetworkError) {
        if systemConnect(fd, addr, len) == 0 { return }
        guard errno == EINPROGRESS else { throw .connectFailed(address, Socket.errnoDescription()) }
        var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let n = poll(&pfd, 1, Int32(clamping: timeoutMs))
        if n == 0 { throw .connectTimedOut(address, timeoutMs: timeoutMs) }
        if n < 0 { throw .connectFailed(address, Socket.errnoDescription()) }
        var err: Int32 = 0
        var errLen = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errLen)
        if err != 0 { throw .connectFailed(address, Socket.errnoDescription(err)) }
    }

    private func setNonBlocking() throws(NetworkError) {
        let flags = fcntl(fd, F_GETFL, 0)
        if flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 {
            throw .socketFailed(Socket.errnoDescription())
        }
    }

    private func setOptions() {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var buf: Int32 = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, socklen_t(MemoryLayout<Int32>.size))
    }

    func close() { _ = closeDescriptor(fd) }
}

#if canImport(Glibc)
let systemConnect = Glibc.connect
let closeDescriptor = Glibc.close
#elseif canImport(Musl)
let systemConnect = Musl.connect
let closeDescriptor = Musl.close
#elseif canImport(Darwin)
let systemConnect = Darwin.connect
let closeDescriptor = Darwin.close
#endif
