import Logging
import NIOCore
import Testing

@testable import RPC

/// A deprecated API version: still served, never the default, and every reply and document entry of
/// it says so.
@Suite("API version deprecation")
struct RPCVersionTests {
    @Test("a deprecated version is not the default; its methods carry the notice and deprecated: true, the next version's do not")
    func deprecatedVersion() throws {
        var router = RPCRouter(versions: [RPCAPIVersion("1", deprecation: "version 1 ends in 2027: use 2"), RPCAPIVersion("2")])
        router.onInline(Fixtures.Echo.self) { params, _ in params }
        let dispatcher = RPCDispatcher(
            router: router, middleware: [], limits: RPCLimits(), server: RPCServerDescription(name: "test", version: "0", apiVersions: ["1", "2"]),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        #expect(dispatcher.defaultVersion == "2")

        let route = try #require(dispatcher.router.route(Fixtures.Echo.name, version: "1"))
        let notice = try #require(RPCDispatcher.deprecationNotice(route: route, version: "1", versions: dispatcher.router.versions))
        #expect(String(buffer: notice) == #"{"apiVersion":"1","message":"version 1 ends in 2027: use 2","method":"echo"}"#)
        #expect(RPCDispatcher.deprecationNotice(route: route, version: "2", versions: dispatcher.router.versions) == nil)

        let v1 = try #require(dispatcher.openRPCDocuments["1"]?.text)
        let v2 = try #require(dispatcher.openRPCDocuments["2"]?.text)
        #expect(v1.contains(#""deprecated":true"#) && v1.contains(#""x-deprecation":"version 1 ends in 2027: use 2""#))
        #expect(!v2.contains(#""deprecated":true"#))
    }

    @Test("vN. prefixes: digits then a dot; anything else is a method name")
    func prefixes() {
        #expect(RPCDispatcher.versionPrefix(of: "v2.chats.list")! == ("2", "chats.list"))
        #expect(RPCDispatcher.versionPrefix(of: "v10.x")! == ("10", "x"))
        #expect(RPCDispatcher.versionPrefix(of: "v.chats") == nil)
        #expect(RPCDispatcher.versionPrefix(of: "vx.chats") == nil)
        #expect(RPCDispatcher.versionPrefix(of: "system.ping") == nil)
    }
}
