import Foundation
import KafkaWireGeneratorCore

let usage = """
usage: kafkawire-generator [--spec DIR] [--output DIR] [--errors-output DIR] [--tests-output DIR]
                           [--no-errors] [--no-tests] [NAME ... | all]

Generates Swift codecs for Kafka's JSON message specs.
  --spec DIR           spec folder holding message/*.json and docs/protocol.html
                       (default: ../shared/kafka-protocol relative to the package root)
  --output DIR         where message codecs go (default: Sources/KafkaProtocol/Messages/Generated)
  --errors-output DIR  where KafkaErrorCode.swift goes (default: Sources/KafkaProtocol/Errors)
  --tests-output DIR   where the test samples go (default: Tests/KafkaProtocolTests/Generated)
  NAME                 API names (Produce: ProduceRequest and ProduceResponse) or spec names (RequestHeader);
                       "all" for every spec. Default: the project's list.
"""

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("kafkawire-generator: \(message)\n".utf8))
    exit(1)
}

func run() {
    var args = Array(CommandLine.arguments.dropFirst())
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    let root = Generator.packageRoot(from: cwd) ?? cwd
    var specRoot = Generator.defaultSpecRoot(packageRoot: root)
    var dirs = Generator.defaultDirectories(packageRoot: root)
    var names: [String] = []

    func path(_ flag: String) -> URL {
        guard !args.isEmpty else { fail("\(flag) needs a folder") }
        return URL(fileURLWithPath: args.removeFirst(), relativeTo: cwd).standardizedFileURL
    }
    while !args.isEmpty {
        let a = args.removeFirst()
        switch a {
        case "-h", "--help": print(usage); return
        case "--spec": specRoot = path(a)
        case "--output": dirs[.messages] = path(a)
        case "--errors-output": dirs[.errors] = path(a)
        case "--tests-output": dirs[.tests] = path(a)
        case "--no-errors": dirs[.errors] = nil
        case "--no-tests": dirs[.tests] = nil
        default:
            if a.hasPrefix("-") { fail("unknown option \(a)\n\(usage)") }
            names.append(a)
        }
    }
    do {
        let generator = Generator(specRoot: specRoot)
        let files = try generator.generate(messages: names.isEmpty ? nil : names)
        let changed = try Generator.write(files, to: dirs)
        print("kafkawire-generator: \(files.count) files from \(specRoot.path), \(changed.count) written or removed")
        for c in changed { print("  \(c)") }
    } catch {
        fail("\(error)")
    }
}

run()
