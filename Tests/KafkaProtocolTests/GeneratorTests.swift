import Foundation
import Testing
import KafkaWireGeneratorCore

/// The package root, from this file's path (Tests/KafkaProtocolTests/GeneratorTests.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let specRoot = Generator.defaultSpecRoot(packageRoot: packageRoot)
let specsAvailable = FileManager.default.fileExists(atPath: specRoot.appendingPathComponent("message/ProduceRequest.json").path)

@Suite("Generator")
struct GeneratorTests {
    @Test(
        "Committed generated code matches the specs",
        .enabled(if: specsAvailable, "spec folder ../shared/kafka-protocol not found next to the package: nothing to compare with"))
    func noDrift() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("kafkawire-drift-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let files = try Generator(specRoot: specRoot).generate()
        let tmpDirs: [GeneratedFile.Kind: URL] = [
            .messages: tmp.appendingPathComponent("messages"),
            .errors: tmp.appendingPathComponent("errors"),
            .tests: tmp.appendingPathComponent("tests"),
        ]
        try Generator.write(files, to: tmpDirs)
        let committed = Generator.defaultDirectories(packageRoot: packageRoot)
        for (kind, dir) in tmpDirs {
            let fresh = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            #expect(!fresh.isEmpty)
            for name in fresh {
                let new = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
                let old = try? String(contentsOf: committed[kind]!.appendingPathComponent(name), encoding: .utf8)
                guard let old else {
                    Issue.record("\(kind.rawValue)/\(name) is missing: run kafkawire-generator")
                    continue
                }
                if old != new {
                    let oldLines = old.split(separator: "\n", omittingEmptySubsequences: false)
                    let newLines = new.split(separator: "\n", omittingEmptySubsequences: false)
                    let line = zip(oldLines, newLines).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(oldLines.count, newLines.count)
                    Issue.record("\(kind.rawValue)/\(name) differs from the generator's output from line \(line + 1): run kafkawire-generator")
                }
            }
            // Generated files the generator no longer produces.
            for name in try FileManager.default.contentsOfDirectory(atPath: committed[kind]!.path) where name.hasSuffix(".swift") {
                let text = try String(contentsOf: committed[kind]!.appendingPathComponent(name), encoding: .utf8)
                if text.hasPrefix(Generator.headerPrefix) && !fresh.contains(name) {
                    Issue.record("\(kind.rawValue)/\(name) is no longer generated: run kafkawire-generator")
                }
            }
        }
    }

    @Test("Every spec of the folder generates", .enabled(if: specsAvailable, "spec folder ../shared/kafka-protocol not found"))
    func everySpecGenerates() throws {
        let generator = Generator(specRoot: specRoot)
        let specs = try generator.loadAllSpecs()
        #expect(specs.count > 150)
        let files = try generator.generate(messages: ["all"])
        #expect(files.filter { $0.kind == .messages }.count > 90)
        // Deterministic: a second run gives the same text.
        #expect(try generator.generate(messages: ["all"]) == files)
    }

    @Test(.enabled(if: specsAvailable, "spec folder ../shared/kafka-protocol not found"))
    func unknownMessageName() throws {
        #expect(throws: GeneratorError.self) { try Generator(specRoot: specRoot).generate(messages: ["NoSuchApi"]) }
    }

    @Test func commentsAreStrippedOutsideStrings() throws {
        let text = """
        // header comment
        { "about": "see https://kafka.apache.org // not a comment", // trailing
          "x": "a \\" // still a string" }
        """
        let stripped = SpecLoader.stripComments(text)
        #expect(!stripped.contains("header comment"))
        #expect(!stripped.contains("trailing"))
        #expect(stripped.contains("https://kafka.apache.org // not a comment"))
        #expect(stripped.contains("a \\\" // still a string"))
        let json = try JSONSerialization.jsonObject(with: Data(stripped.utf8)) as? [String: String]
        #expect(json?["about"] == "see https://kafka.apache.org // not a comment")
    }

    @Test func versionSets() throws {
        #expect(try VersionSet.parse("none").isEmpty)
        #expect(try VersionSet.parse("3+") == .from(3))
        #expect(try VersionSet.parse("0-3") == VersionSet([0...3]))
        #expect(try VersionSet.parse("7") == VersionSet([7...7]))
        #expect(throws: GeneratorError.self) { try VersionSet.parse("3-1") }
        let ctx = VersionSet([0...12])
        #expect(VersionSet.from(0).condition(within: ctx) == nil)
        #expect(VersionSet.from(4).condition(within: ctx) == "version >= 4")
        #expect(VersionSet([0...3]).condition(within: ctx) == "version <= 3")
        #expect(VersionSet([3...7]).condition(within: ctx) == "(3...7).contains(version)")
        #expect(VersionSet([5...5]).condition(within: ctx) == "version == 5")
        #expect(VersionSet.from(13).condition(within: ctx) == "false")
        #expect(VersionSet([0...12]).subtracting(.from(9)) == VersionSet([0...8]))
        #expect(VersionSet([0...2, 3...5]) == VersionSet([0...5]))
    }

    @Test func names() {
        #expect(Naming.lowerCamel("TopicData") == "topicData")
        #expect(Naming.lowerCamel("ErrorCode") == "errorCode")
        #expect(Naming.lowerCamel("ThrottleTimeMs") == "throttleTimeMs")
        #expect(Naming.lowerCamel("KRaftVersion") == "kRaftVersion")
        #expect(Naming.lowerCamel("V3AndBelowTopics") == "v3AndBelowTopics")
        #expect(Naming.lowerCamel("ISR") == "isr")
        #expect(Naming.identifier("protocol") == "`protocol`")
        #expect(Naming.identifier("default") == "`default`")
        #expect(Naming.identifier("type") == "`type`")
        #expect(Naming.identifier("topic") == "topic")
        #expect(Naming.lowerCamelFromSnake("NOT_LEADER_OR_FOLLOWER") == "notLeaderOrFollower")
        #expect(Naming.stringLiteral("a\"b\\c\n") == #""a\"b\\c\n""#)
    }

    @Test func errorTableFromHTML() {
        let html = """
        <p>x</p><table class="data-table"><tbody>
        <tr><th>Error</th>
        <th>Code</th>
        <th>Retriable</th>
        <th>Description</th>
        </tr>
        <tr><td>NONE</td><td>0</td><td>False</td><td></td></tr>
        <tr><td>NOT_LEADER_OR_FOLLOWER</td><td>6</td><td>True</td><td>Not the leader &amp; not a <b>follower</b>.</td></tr>
        </tbody></table>
        """
        let entries = ErrorCodeEmitter.parseTable(html: html)
        #expect(entries == [
            ErrorCodeEntry(name: "NONE", code: 0, retriable: false, message: ""),
            ErrorCodeEntry(name: "NOT_LEADER_OR_FOLLOWER", code: 6, retriable: true, message: "Not the leader & not a follower."),
        ])
        #expect(ErrorCodeEmitter.parseTable(html: "<!--#include virtual=\"generated/protocol_errors.html\" -->") == nil)
    }

    @Test func builtInErrorTable() throws {
        let (entries, _) = try Generator(specRoot: URL(fileURLWithPath: "/nonexistent")).errorTable()
        #expect(entries.count == 131)
        #expect(entries.first { $0.code == 6 }?.name == "NOT_LEADER_OR_FOLLOWER")
        #expect(entries.map(\.code) == Array(-1...129))
    }

    /// A made-up spec with the awkward cases: the same struct name twice, keyword field names, a field
    /// named like a local of the generated bodies, a tagged struct and a nullable struct.
    @Test func awkwardSpec() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kafkawire-spec-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = root.appendingPathComponent("message")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let request = """
        // A comment with a URL: http://example.com/x
        {
          "apiKey": 9999, "type": "request", "name": "WidgetRequest",
          "validVersions": "0-3", "flexibleVersions": "2+",
          "fields": [
            { "name": "Protocol", "type": "string", "versions": "0+", "about": "see http://example.com // here" },
            { "name": "Version", "type": "int16", "versions": "1+", "default": "0x10" },
            { "name": "Default", "type": "[]Item", "versions": "0+", "fields": [
              { "name": "Type", "type": "int8", "versions": "0+" }
            ]},
            { "name": "Others", "type": "[]Item", "versions": "1+", "fields": [
              { "name": "Name", "type": "string", "versions": "1+", "nullableVersions": "3+" }
            ]},
            { "name": "Extra", "type": "Extra", "versions": "2+", "taggedVersions": "2+", "tag": 0, "fields": [
              { "name": "Value", "type": "int32", "versions": "2+", "default": "-1" }
            ]},
            { "name": "Maybe", "type": "Extra", "versions": "3+", "nullableVersions": "3+", "default": "null" }
          ]
        }
        """
        let response = """
        { "apiKey": 9999, "type": "response", "name": "WidgetResponse", "validVersions": "0-3", "flexibleVersions": "none",
          "fields": [ { "name": "ErrorCode", "type": "int16", "versions": "0+" } ] }
        """
        try Data(request.utf8).write(to: dir.appendingPathComponent("WidgetRequest.json"))
        try Data(response.utf8).write(to: dir.appendingPathComponent("WidgetResponse.json"))
        let files = try Generator(specRoot: root).generate(messages: ["Widget"])
        let widget = try #require(files.first { $0.name == "Widget.swift" }).contents
        #expect(widget.hasPrefix("// Generated by kafkawire-generator from WidgetRequest.json and WidgetResponse.json. Do not edit."))
        #expect(widget.contains("public var `protocol`: String = \"\""))
        #expect(widget.contains("public var version: Int16 = 16"))
        #expect(widget.contains("self.version = try r.readInt16(\"WidgetRequest.version\")"))
        #expect(widget.contains("public var `default`: [Item] = []"))
        #expect(widget.contains("public var others: [Item2] = []"))
        #expect(widget.contains("public struct Item: Sendable, Equatable, GeneratedStruct"))
        #expect(widget.contains("public struct Item2: Sendable, Equatable, GeneratedStruct"))
        #expect(widget.contains("public var `type`: Int8 = 0"))
        #expect(widget.contains("public var name: String? = \"\""))
        #expect(widget.contains("try w.writeStringField(name, compact: flexible, nullable: version >= 3, \"WidgetRequest.Item2.name\")"))
        #expect(widget.contains("if extra != Extra() {"))
        #expect(widget.contains("public var maybe: Extra? = nil"))
        #expect(widget.contains("try w.writeNullableStruct(maybe, nullable: true, version: version, \"WidgetRequest.maybe\")"))
        #expect(widget.contains("public static let firstFlexibleVersion: Int16? = nil"))
        // Generation is deterministic.
        #expect(try Generator(specRoot: root).generate(messages: ["Widget"]) == files)
        let apiKeys = try #require(files.first { $0.name == "ApiKeys.swift" }).contents
        #expect(apiKeys.contains("case widget = 9999"))
    }
}
