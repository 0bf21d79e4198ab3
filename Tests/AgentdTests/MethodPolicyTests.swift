import AgentdTesting
import Foundation
import NIOCore
import Testing

@testable import Daemon
@testable import RPC
@testable import Services

/// Every registered method's rate class and cache rule, recorded as the Daemon's name tables
/// (`RateLimitClasses`, `ResultCachePolicies`) had them before each method type declared its own
/// (issue 18): the move changed no method's class, cache rule or invalidation.
@Suite("Rate classes and cache rules of every method")
struct MethodPolicyTests {
    /// Each method's rate class ("exempt": never limited).
    static let rateClasses: [String: String] = [
        "rpc.discover": "exempt", "session.hello": "exempt", "system.ping": "exempt", "system.echo": "exempt", "system.version": "exempt",
        "system.metrics": "exempt", "test.sleep": "exempt", "auth.whoami": "exempt", "auth.logout": "exempt", "events.unsubscribe": "exempt",
        "agent.cancel": "exempt", "jobs.cancel": "exempt", "test.jobs": "exempt", "test.chunk": "exempt",
        "auth.login": "auth", "auth.authenticate": "auth", "auth.changePassword": "auth",
        "auth.register": "register",
        "agent.act": "agent", "agent.regenerate": "agent",
        "search.query": "expensive", "chats.export": "expensive", "chats.fork": "expensive", "events.replay": "expensive",
        "modules.create": "write", "modules.update": "write", "modules.delete": "write", "modules.files.add": "write",
        "modules.files.remove": "write", "chats.create": "write", "chats.rename": "write",
        "chats.delete": "write", "chats.messages.append": "write", "chats.branches.select": "write", "prompts.create": "write",
        "prompts.update": "write", "prompts.delete": "write", "events.subscribe": "write", "jobs.retry": "write",
        "modules.get": "read", "modules.list": "read", "chats.get": "read", "chats.list": "read", "chats.messages.list": "read",
        "chats.messages.get": "read", "prompts.get": "read", "prompts.list": "read", "prompts.versions": "read", "prompts.render": "read",
        "audit.list": "read", "agent.runs.list": "read", "agent.runs.get": "read", "agent.runs.watch": "read", "jobs.list": "read",
        "jobs.get": "read",
        "files.upload.begin": "write", "files.upload.chunk": "upload", "files.upload.commit": "write", "files.import": "write",
        "files.delete": "write", "files.upload.status": "read", "files.get": "read", "files.read": "read", "files.list": "read",
    ]

    /// The methods whose results are cached, and the tag prefix each is filed under (with its `id`).
    static let cached: [String: String] = [
        "modules.get": "module", "prompts.get": "prompt", "prompts.render": "prompt", "files.get": "file",
    ]

    static func dispatcher() async throws -> RPCDispatcher {
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.enableTestMethods = true
        return try await Dependencies.testing(
            configuration: configuration,
            collaborators: .init(clock: TestClock(), ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts())
        ).dispatcher
    }

    static func router() async throws -> RPCRouter {
        try await dispatcher().router
    }

    /// Every route of every API version (a method changed in a version has a type per version).
    static func allRoutes(_ router: RPCRouter) -> [(version: String, route: RPCRoute)] {
        router.versions.flatMap { version in (router.tables[version.name] ?? [:]).values.map { (version.name, $0) } }
    }

    @Test("every method of every version is in the class it was in")
    func rateClassesUnchanged() async throws {
        let router = try await Self.router()
        #expect(Set(router.routes.keys) == Set(Self.rateClasses.keys))
        for (version, route) in Self.allRoutes(router) {
            #expect(route.rateClass.rawValue == Self.rateClasses[route.name], "\(route.name) in version \(version)")
        }
    }

    @Test("rpc.discover says each method's rate class (x-rate-class), in every version")
    func rateClassesDiscovered() async throws {
        let dispatcher = try await Self.dispatcher()
        for version in dispatcher.router.versions {
            let document = try JSON(parsing: try #require(dispatcher.openRPCDocuments[version.name]).text)
            let methods = try #require(document["methods"]?.arrayValue)
            #expect(methods.count == dispatcher.router.tables[version.name]?.count)
            for method in methods {
                let name = try #require(method["name"]?.stringValue)
                #expect(method["x-rate-class"]?.stringValue == Self.rateClasses[name], "\(name) in version \(version.name)")
            }
        }
    }

    @Test("exactly modules.get, prompts.get and prompts.render are cached, each under its id; params by position are not")
    func cacheRulesUnchanged() async throws {
        let router = try await Self.router()
        for (version, route) in Self.allRoutes(router) {
            guard let prefix = Self.cached[route.name] else {
                #expect(route.cacheRule == nil, "\(route.name) in version \(version)")
                continue
            }
            let tags = try #require(route.cacheRule).tags
            #expect(tags(ByteBuffer(string: #"{"id":"x_1","variables":{}}"#)) == ["\(prefix):x_1"])
            #expect(tags(ByteBuffer(string: #"["x_1"]"#)) == nil)
            #expect(tags(ByteBuffer(string: #"{"id":7}"#)) == nil)
            #expect(tags(nil) == nil)
        }
    }

    static func event(_ topic: String, moduleID: String? = nil, data: String = "{}") -> Event {
        Event(
            seq: 1, topic: topic, userID: "usr_a", chatID: nil, moduleID: moduleID, occurredAt: Date(timeIntervalSince1970: 0),
            data: JSONFragment(unchecked: data))
    }

    @Test("an update or delete of a module or a prompt makes its tag stale; no other event makes any stale")
    func invalidationUnchanged() throws {
        let expected: [(Event, [String])] = [
            (Self.event("module.updated", moduleID: "mod_1", data: #"{"moduleId":"mod_1","fields":["title"]}"#), ["module:mod_1"]),
            (Self.event("module.deleted", moduleID: "mod_1", data: #"{"moduleId":"mod_1"}"#), ["module:mod_1"]),
            (Self.event("module.created", moduleID: "mod_1", data: #"{"moduleId":"mod_1","title":"t","tags":[]}"#), []),
            (Self.event("prompt.updated", data: #"{"promptId":"prm_1","name":"p","version":2}"#), ["prompt:prm_1"]),
            (Self.event("prompt.deleted", data: #"{"promptId":"prm_1"}"#), ["prompt:prm_1"]),
            (Self.event("prompt.deleted", data: #"{"other":1}"#), []),
            (Self.event("prompt.created", data: #"{"promptId":"prm_1","name":"p","version":1}"#), []),
            (Self.event("chat.created", moduleID: "mod_1", data: #"{"chatId":"cht_1"}"#), []),
        ]
        // Each topic names one event type (its staleCacheTags are looked up by topic).
        let topics = Dependencies.eventTypes.map { $0.topic }
        try #require(Set(topics).count == topics.count, "a topic is declared twice: \(topics)")
        for (event, tags) in expected {
            #expect(Dependencies.staleCacheTags(of: event) == tags, "\(event.topic) \(event.data.text)")
        }
    }
}
