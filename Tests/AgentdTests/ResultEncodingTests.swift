import AgentdTesting
import Foundation
import Testing

@testable import Daemon
@testable import RPC
@testable import Services

/// Every result and notification agentd sends is encoded by `RPCJSONEncoder`; before, by
/// `JSONEncoder` (`JSONWriter.makeEncoder()`). For every method the daemon registers, random values
/// of its `Result` type (made by `RandomValueDecoder`: nasty strings, extreme numbers, fractional
/// and far-off dates, absent optionals) must encode to the same bytes with both.
@Suite("Results encode as JSONEncoder encoded them")
struct ResultEncodingTests {
    /// The method types behind every registered name; `registryIsCovered` fails when a method is
    /// registered that is missing here.
    static let methods: [any RPCMethod.Type] = [
        System.Ping.self, System.Echo.self, System.Version.self, System.Metrics.self, System.Sleep.self, System.DecodeChunk.self, TestJobs.Run.self,
        Auth.Register.self, Auth.Login.self, Auth.Authenticate.self, Auth.Logout.self, Auth.WhoAmI.self, Auth.ChangePassword.self,
        Modules.Create.self, Modules.Get.self, Modules.Update.self, Modules.Delete.self, Modules.List.self,
        Chats.Create.self, Chats.Get.self, Chats.List.self, Chats.Rename.self, Chats.Delete.self, Chats.Fork.self, Chats.Export.self,
        Chats.Messages.List.self, Chats.Messages.Get.self, Chats.Messages.Append.self, Chats.Branches.Select.self,
        Prompts.Create.self, Prompts.Get.self, Prompts.Update.self, Prompts.Delete.self, Prompts.List.self, Prompts.Versions.self,
        Prompts.Render.self,
        Search.Query.self, Search.QueryV1.self,
        Events.Subscribe.self, Events.Unsubscribe.self, Events.Replay.self, Audit.List.self,
        Chats.ListV2.self, Chats.Messages.GetV2.self,
        Agent.Act.self, Agent.Regenerate.self, Agent.Cancel.self, Agent.Runs.List.self, Agent.Runs.Get.self, Agent.Runs.Watch.self,
        Jobs.List.self, Jobs.Get.self, Jobs.Cancel.self, Jobs.Retry.self,
        Files.UploadBegin.self, Files.UploadChunk.self, Files.UploadStatus.self, Files.UploadCommit.self, Files.Import.self, Files.Get.self,
        Files.Read.self, Files.List.self, Files.Delete.self, Modules.Files.Add.self, Modules.Files.Remove.self,
        RPCDiscover.self, SessionHello.self,
    ]

    static let notifications: [any RPCNotification.Type] = [
        RPCConnectionHandler.ShuttingDown.self, EventsNotifications.Event.self, EventsNotifications.Overflow.self, EventsNotifications.Ended.self,
        Agent.Delta.self, Agent.RunEnded.self, Agent.WatchOverflow.self,
    ]

    static func dependencies() async throws -> Dependencies {
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.enableTestMethods = true
        return try await Dependencies.testing(
            configuration: configuration,
            collaborators: .init(clock: TestClock(), ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts()))
    }

    @Test("the list covers every registered method and notification")
    func registryIsCovered() async throws {
        let router = try await Self.dependencies().dispatcher.router
        #expect(Set(Self.methods.map { $0.name }) == Set(router.routes.keys))
        #expect(Set(Self.notifications.map { $0.name }) == Set(router.notifications.map(\.name)))
    }

    @Test("random results of every method: the same bytes as JSONEncoder", arguments: methods.indices)
    func results(index: Int) {
        func check<M: RPCMethod>(_ method: M.Type) {
            for seed in 0..<300 as Range<UInt64> {
                let decoder = RandomValueDecoder(seed: seed &* 7919 &+ UInt64(index))
                guard let value = try? M.Result(from: decoder) else {
                    Issue.record("\(M.name): could not make a random \(M.Result.self)")
                    return
                }
                if !Self.expectSameEncoding(value, "\(M.name) seed \(seed)") { return }
            }
        }
        check(Self.methods[index])
    }

    @Test("random notification params: the same bytes as JSONEncoder")
    func notifications() {
        func check<N: RPCNotification>(_ notification: N.Type) {
            for seed in 0..<100 as Range<UInt64> {
                guard let value = try? N.Params(from: RandomValueDecoder(seed: seed)) else {
                    Issue.record("\(N.name): could not make random params")
                    return
                }
                Self.expectSameEncoding(value, "\(N.name) seed \(seed)")
            }
        }
        for notification in Self.notifications { check(notification) }
    }

    @Test("the OpenRPC document (rpc.discover): the same bytes as JSONEncoder")
    func openRPCDocument() async throws {
        let router = try await Self.dependencies().dispatcher.router
        let document = OpenRPCDocument.document(router: router, version: Dependencies.apiVersions[0], server: Dependencies.server)
        Self.expectSameEncoding(document, "rpc.discover")
        #expect(try RPCJSONEncoder().encodeToString(document) == String(decoding: try JSONWriter.makeEncoder().encode(document), as: UTF8.self))
    }

    @Test("a page of 50 modules, as modules.list answers it")
    func modulePage() {
        let page = ModulesService.Page(
            items: (0..<50).map { index in
                Module(
                    id: "mod_\(index)", title: "Module \(index)", description: "seeded",
                    content: "Some content for module \(index).\n/path \"quoted\"",
                    tags: ["bench", "tag\(index)"], createdAt: Date(timeIntervalSince1970: 1_800_000_000 + Double(index) * 0.37),
                    updatedAt: Date(timeIntervalSince1970: 1_800_000_000.999 + Double(index)))
            },
            nextCursor: "c_50")
        Self.expectSameEncoding(page, "modules page")
    }

    /// Records an issue unless both encoders write the same bytes, `RPCJSONEncoder` without falling
    /// back to `JSONEncoder`.
    @discardableResult
    static func expectSameEncoding<T: Encodable>(_ value: T, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        do {
            let expected = try Array(JSONWriter.makeEncoder().encode(value))
            let actual = try RPCJSONEncoder().streamedBytes(value)
            guard actual == expected else {
                Issue.record(
                    "\(context)\nRPCJSONEncoder: \(actual.map { String(decoding: $0, as: UTF8.self) } ?? "(fell back to JSONEncoder)")\nJSONEncoder:    \(String(decoding: expected, as: UTF8.self))",
                    sourceLocation: sourceLocation)
                return false
            }
            return true
        } catch {
            Issue.record("\(context): \(error)", sourceLocation: sourceLocation)
            return false
        }
    }
}

/// Makes random values of any `Decodable` type by answering its `init(from:)`: strings with control
/// characters, quotes, slashes and non-ASCII; extreme integers; dates with fractional seconds over
/// millennia; optionals absent about a third of the time; arrays of 0-4 elements; a random case of
/// an enum; small JSON documents for raw JSON.
final class RandomValueDecoder: Decoder {
    private final class Source {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        func next() -> UInt64 {  // SplitMix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
        func chance(_ percent: Int) -> Bool { below(100) < percent }
    }

    private let source: Source
    private let depth: Int
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    convenience init(seed: UInt64) { self.init(source: Source(seed: seed), depth: 0) }

    private init(source: Source, depth: Int) {
        self.source = source
        self.depth = depth
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Keyed<Key>(decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        Unkeyed(decoder: self, count: depth > 4 ? 0 : source.below(5))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(decoder: self) }

    static let pieces: [String] =
        (0..<0x20).map { String(UnicodeScalar(UInt8($0))) } + [
            "\"", "\\", "/", "\u{7F}", "a", "Z", "9", " ", "é", "e\u{301}", "日本", "😀", "\u{2028}", "{{name}}", "mod_", "plain text ",
        ]

    static let documents = [#"{"b":[1,2.5,"x\/y",null],"a":{"é":true,"E":-0.0}}"#, #"[]"#, #"null"#, #""s""#, #"12345678901234567890"#, #"{}"#]

    func value<T: Decodable>(_ type: T.Type) throws -> T {
        if T.self == String.self {
            if source.chance(10) { return String(repeating: "long content, ", count: 1 + source.below(40)) as! T }
            return (0..<source.below(10)).map { _ in Self.pieces[source.below(Self.pieces.count)] }.joined() as! T
        }
        if T.self == Int.self {
            let special = [0, 1, -1, 50, Int.max, Int.min]
            return (source.chance(50) ? special[source.below(special.count)] : Int(truncatingIfNeeded: source.next())) as! T
        }
        if T.self == Bool.self { return source.chance(50) as! T }
        if T.self == UInt32.self { return UInt32(truncatingIfNeeded: source.next()) as! T }
        if T.self == Int64.self { return Int64(truncatingIfNeeded: source.next()) as! T }
        if T.self == Double.self { return (Double(Int64(truncatingIfNeeded: source.next())) / 1e6) as! T }
        if T.self == Date.self {
            let seconds: Double
            switch source.below(4) {
            case 0: seconds = 1.6e9 + Double(source.below(400_000_000)) + Double(source.below(1000)) / 1000
            case 1: seconds = -1e10 + Double(source.next() % 2_000_000_000_000) / 100  // 1653 to 2603
            case 2: seconds = Double(source.below(3_000_000_000))
            default: seconds = Double(Int64(truncatingIfNeeded: source.next()) % 400_000_000_000) + 0.5  // years -10700 to 14600
            }
            return Date(timeIntervalSince1970: seconds) as! T
        }
        if T.self == JSONFragment.self {
            // As the daemon makes them (encoded by the engine): RPCJSONEncoder writes a fragment's
            // text as it is, JSONEncoder re-encodes it, so only canonical text compares equal.
            let value = try JSONDecoder().decode(JSONValue.self, from: Data(Self.documents[source.below(Self.documents.count)].utf8))
            return try JSONFragment(encoding: value) as! T
        }
        if T.self == JSONValue.self {
            return try JSONDecoder().decode(JSONValue.self, from: Data(Self.documents[source.below(Self.documents.count)].utf8)) as! T
        }
        if let enumeration = T.self as? any CaseIterable.Type {
            return randomCase(enumeration) as! T
        }
        return try T(from: RandomValueDecoder(source: source, depth: depth + 1))
    }

    private func randomCase<E: CaseIterable>(_ type: E.Type) -> E {
        let cases = Array(E.allCases)
        return cases[source.below(cases.count)]
    }

    private struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let decoder: RandomValueDecoder
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { [] }
        func contains(_ key: Key) -> Bool { true }
        /// Absent optionals (`decodeIfPresent` asks this first).
        func decodeNil(forKey key: Key) throws -> Bool { decoder.source.chance(33) }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decoder.value(type) }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try decoder.container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try decoder.unkeyedContainer() }
        func superDecoder() throws -> any Decoder { decoder }
        func superDecoder(forKey key: Key) throws -> any Decoder { decoder }
    }

    private struct Unkeyed: UnkeyedDecodingContainer {
        let decoder: RandomValueDecoder
        var count: Int?
        var currentIndex = 0
        var codingPath: [any CodingKey] { [] }
        var isAtEnd: Bool { currentIndex >= count ?? 0 }

        init(decoder: RandomValueDecoder, count: Int) {
            self.decoder = decoder
            self.count = count
        }

        mutating func decodeNil() throws -> Bool { false }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            currentIndex += 1
            return try decoder.value(type)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            currentIndex += 1
            return try decoder.container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            currentIndex += 1
            return try decoder.unkeyedContainer()
        }
        mutating func superDecoder() throws -> any Decoder { decoder }
    }

    private struct Single: SingleValueDecodingContainer {
        let decoder: RandomValueDecoder
        var codingPath: [any CodingKey] { [] }
        /// `nil` elements of arrays of optionals.
        func decodeNil() -> Bool { decoder.source.chance(25) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.value(type) }
    }
}
