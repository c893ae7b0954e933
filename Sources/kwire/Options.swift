// The options every subcommand takes (-b, -X, --json, -v) and the configs built from them.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import KafkaWire
import Logging

/// A failure the command reports itself: one line on standard error, then `exitCode`.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    var exitCode: Int32

    /// Bad input on the command line: exit status 2.
    static func usage(_ message: String) -> CLIError { CLIError(description: message, exitCode: 2) }
    /// Something went wrong at run time: exit status 1.
    static func failure(_ message: String) -> CLIError { CLIError(description: message, exitCode: 1) }
}

struct GlobalOptions: ParsableArguments {
    @Option(
        name: .customShort("b"),
        help: ArgumentHelp(
            "Bootstrap broker(s): host[:port][,host[:port]...].",
            discussion: "Defaults to -X bootstrap.servers, then $KWIRE_BROKERS, then $KWIRE_BOOTSTRAP.",
            valueName: "brokers"))
    var brokers: String?

    @Option(
        name: .customShort("X"),
        help: ArgumentHelp(
            "Client setting by its Kafka name, e.g. -X linger.ms=20 (repeatable).",
            discussion: "Names: " + KafkaSettings.allNames.sorted().joined(separator: ", ") + ".",
            valueName: "key=value"))
    var settings: [String] = []

    @Flag(name: .long, help: "Print listings as JSON.")
    var json = false

    @Flag(name: .customShort("v"), help: "Log every request and response (API, version, correlation id, sizes, latency) to standard error.")
    var verbose = false

    /// Sets up logging: debug lines on standard error with -v; otherwise the library stays quiet
    /// (the command reports failures itself, one line each).
    func setUp() {
        signal(SIGPIPE, SIG_IGN)
        let verbose = self.verbose
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? .debug : .critical
            return handler
        }
    }

    /// -X settings by name. A malformed one or a name no KafkaWire config knows is a usage error.
    func parsedSettings() throws(CLIError) -> [String: String] {
        var out: [String: String] = [:]
        for item in settings {
            guard let (key, value) = KafkaSettings.parseAssignment(item) else {
                throw .usage("-X expects key=value, got \"\(item)\"")
            }
            guard KafkaSettings.allNames.contains(key) else {
                throw .usage("unknown setting \"\(key)\" in -X \(item) (see '\(Main.commandPath()) --help' for the names)")
            }
            out[key] = value
        }
        if let b = brokers {
            out["bootstrap.servers"] = b
        } else if out["bootstrap.servers"] == nil {
            for variable in ["KWIRE_BROKERS", "KWIRE_BOOTSTRAP"] {
                if let value = getenv(variable), value.pointee != 0 {
                    out["bootstrap.servers"] = String(cString: value)
                    break
                }
            }
        }
        guard out["bootstrap.servers"] != nil else {
            throw .usage("no broker given: use -b host:port (or set KWIRE_BROKERS)")
        }
        return out
    }

    /// Applies the settings that `names` covers; warns about the ones that belong to another kind of
    /// client (as librdkafka does), since they have no effect here.
    private func split(_ all: [String: String], _ names: Set<String>, _ what: String) -> [String: String] {
        var mine: [String: String] = [:]
        for (k, v) in all.sorted(by: { $0.key < $1.key }) {
            if names.contains(k) {
                mine[k] = v
            } else {
                printError("kwire: warning: \(k) is not a \(what) setting; ignored")
            }
        }
        return mine
    }

    func clientConfig() throws -> ClientConfig {
        let all = try parsedSettings()
        return try configure { () throws(KafkaError) in
            var c = ClientConfig(bootstrapServers: [BrokerAddress]())
            c.clientId = "kwire"
            try c.apply(split(all, ClientConfig.settingNames, "client"))
            return c
        }
    }

    func producerConfig() throws -> ProducerConfig {
        let all = try parsedSettings()
        return try configure { () throws(KafkaError) in
            var c = ProducerConfig(client: ClientConfig(bootstrapServers: [BrokerAddress](), clientId: "kwire"))
            try c.apply(split(all, ProducerConfig.settingNames, "producer"))
            return c
        }
    }

    func consumerConfig() throws -> ConsumerConfig {
        let all = try parsedSettings()
        return try configure { () throws(KafkaError) in
            var c = ConsumerConfig(client: ClientConfig(bootstrapServers: [BrokerAddress](), clientId: "kwire"))
            try c.apply(split(all, ConsumerConfig.settingNames, "consumer"))
            return c
        }
    }

    func groupConfig(group: String?) throws -> GroupConsumerConfig {
        var all = try parsedSettings()
        if let group { all["group.id"] = group }
        guard let id = all["group.id"], !id.isEmpty else { throw CLIError.usage("no group given: use -G GROUP") }
        return try configure { () throws(KafkaError) in
            var c = GroupConsumerConfig(
                consumer: ConsumerConfig(client: ClientConfig(bootstrapServers: [BrokerAddress](), clientId: "kwire")),
                groupId: id)
            try c.apply(split(all, GroupConsumerConfig.settingNames, "consumer"))
            return c
        }
    }

    /// Runs `body`; a setting the library rejects is a usage error (exit 2).
    private func configure<T>(_ body: () throws(KafkaError) -> T) throws(CLIError) -> T {
        do {
            return try body()
        } catch {
            if case let .invalidConfiguration(why) = error { throw .usage(why) }
            throw .usage(error.description)
        }
    }
}

/// Parses kcat's delimiter syntax: \n \r \t \\ and \xNN escapes, everything else literally.
func parseEscapes(_ text: String) throws(CLIError) -> [UInt8] {
    let bytes = Array(text.utf8)
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        let b = bytes[i]
        guard b == UInt8(ascii: "\\"), i + 1 < bytes.count else {
            out.append(b)
            i += 1
            continue
        }
        let next = bytes[i + 1]
        switch next {
        case UInt8(ascii: "n"): out.append(0x0A); i += 2
        case UInt8(ascii: "r"): out.append(0x0D); i += 2
        case UInt8(ascii: "t"): out.append(0x09); i += 2
        case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); i += 2
        case UInt8(ascii: "x"):
            var j = i + 2
            var value = 0
            while j < bytes.count, j < i + 4, let d = hexDigit(bytes[j]) {
                value = value * 16 + d
                j += 1
            }
            guard j > i + 2 else { throw .usage("\\x in \"\(text)\" expects a hex number") }
            out.append(UInt8(value))
            i = j
        default:
            out.append(b)
            i += 1
        }
    }
    return out
}

private func hexDigit(_ b: UInt8) -> Int? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(b - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(b - UInt8(ascii: "a")) + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(b - UInt8(ascii: "A")) + 10
    default: nil
    }
}
