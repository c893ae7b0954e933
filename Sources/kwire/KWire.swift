// kwire: kcat's spirit on KafkaWire. Subcommands with kcat's short flags:
//
//   kwire metadata    -b BROKERS [-t TOPIC]
//   kwire produce     -b BROKERS -t TOPIC [-p P] [-k KEY | -K DELIM] [-H n=v]... [-z CODEC] [--acks 0|1|all] [-l] [FILE...]
//   kwire consume     -b BROKERS -t TOPIC [-p P] [-o OFFSET] [-c N] [-e] [-G GROUP] [-f FMT | -J]
//   kwire offsets     -b BROKERS -t TOPIC [--time MS]
//   kwire topics      list | create NAME... [-P N] [-R N] [--config k=v]... | delete NAME...
//   kwire groups      list | describe GROUP | reset GROUP -t TOPIC --to earliest|latest|OFFSET
//   kwire api-versions -b BROKER
//   kwire dlq         list -t DLQ | show -t DLQ -p P -o OFFSET | republish -t DLQ (-p P -o OFFSET | --all) [--to TOPIC]
//
// Global: -X key=value (KafkaWire's settings by their Kafka names), --json, -v.
// Exit status: 0 success, 1 a failure at run time (broker unreachable, unknown topic or group,
// records that failed), 2 bad input on the command line. Every failure is one line on stderr.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import KafkaWire

struct KWire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kwire",
        abstract: "A Kafka command-line client in the spirit of kcat, built on KafkaWire.",
        discussion: """
            Brokers come from -b, -X bootstrap.servers, $KWIRE_BROKERS or $KWIRE_BOOTSTRAP. \
            Exit status: 0 on success, 1 on a failure at run time, 2 on bad input.
            """,
        subcommands: [
            MetadataCommand.self, ProduceCommand.self, ConsumeCommand.self, OffsetsCommand.self, TopicsCommand.self,
            GroupsCommand.self, ApiVersionsCommand.self, DLQCommand.self,
        ])
}

@main
enum Main {
    static func main() async {
        let code: Int32
        do {
            var command = try KWire.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            code = 0
        } catch {
            code = report(error)
        }
        stdoutWriter.flush()
        exit(code)
    }

    /// Prints one line for a failure (or the help text that was asked for) and picks the exit status.
    static func report(_ error: any Error) -> Int32 {
        switch error {
        case let e as CLIError:
            printError("kwire: \(e.description)")
            return e.exitCode
        case let e as KafkaError:
            printError("kwire: \(describe(e))")
            return 1
        case let e as ExitCode:
            return e.rawValue
        default:
            let status = KWire.exitCode(for: error)
            if status == .success {
                // --help, --version: the full text, on standard output.
                stdoutWriter.write(KWire.fullMessage(for: error) + "\n")
                return 0
            }
            var message = KWire.message(for: error)
            if let firstLine = message.split(separator: "\n").first { message = String(firstLine) }
            if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
            printError("kwire: \(message) (see '\(commandPath()) --help')")
            return 2
        }
    }

    /// "kwire topics create": the (sub)command the arguments name, for pointing at its help.
    static func commandPath() -> String {
        var path = ["kwire"]
        var current: any ParsableCommand.Type = KWire.self
        for arg in CommandLine.arguments.dropFirst() {
            guard let sub = current.configuration.subcommands.first(where: { $0._commandName == arg }) else { break }
            path.append(arg)
            current = sub
        }
        return path.joined(separator: " ")
    }

    /// A KafkaError in words a user of the command line can act on.
    static func describe(_ error: KafkaError) -> String {
        switch error {
        case let .unknownTopicOrPartition(topic, partition):
            return partition.map { "unknown partition \($0) of topic \(topic)" } ?? "unknown topic \(topic)"
        case let .broker(code, context) where code == .unknownTopicOrPartition:
            return "unknown topic or partition (\(context))"
        case let .broker(code, context) where code == .groupIdNotFound:
            return "unknown group (\(context))"
        case let .invalidConfiguration(why):
            return why
        case let .network(e):
            switch e {
            case .connectFailed, .connectTimedOut, .resolveFailed:
                return "\(e.description) (is the broker running? check -b)"
            default:
                return e.description
            }
        default:
            return error.description
        }
    }
}
