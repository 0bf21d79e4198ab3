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

    /// Version 1 changed as `echo` does in version 2: a new contract of the same name.
    enum EchoV2: RPCMethod {
        static let name = "echo"
        static let summary = "Echo, as an object."
        static let rateClass: RPCRateClassName = .read
        struct Params: Codable, Sendable { var value: String }
        typealias Result = String
    }

    @Test("versionGaps: a name only newer versions have is a gap (method or notification); a changed contract or a removal is not")
    func versionGaps() {
        let versions = [RPCAPIVersion("1"), RPCAPIVersion("2"), RPCAPIVersion("3")]
        var wellFormed = RPCRouter(versions: versions)
        wellFormed.onInline(Fixtures.Subtract.self) { params, _ in params.minuend - params.subtrahend }  // added: every version
        wellFormed.onInline(Fixtures.Echo.self, in: .until("1")) { params, _ in params }  // changed in 2
        wellFormed.onInline(EchoV2.self, in: .from("2")) { params, _ in params.value }
        wellFormed.onInline(Fixtures.GetData.self, in: .until("2")) { _, _ in JSONFragment(unchecked: "[]") }  // removed in 3
        wellFormed.describe(RPCConnectionHandler.ShuttingDown.self)
        #expect(wellFormed.versionGaps.isEmpty, "\(wellFormed.versionGaps)")

        var newOnly = RPCRouter(versions: versions)
        newOnly.onInline(Fixtures.Echo.self, in: .from("2")) { params, _ in params }
        newOnly.describe(RPCConnectionHandler.ShuttingDown.self, in: .from("3"))
        #expect(newOnly.versionGaps == ["v2 has method echo, v1 does not", "v3 has notification server.shuttingDown, v2 does not"])

        // Back after a removal: version 3 has it, version 2 does not.
        var readded = RPCRouter(versions: versions)
        readded.onInline(Fixtures.Echo.self, in: .until("1")) { params, _ in params }
        readded.onInline(EchoV2.self, in: .from("3")) { params, _ in params.value }
        #expect(readded.versionGaps == ["v3 has method echo, v2 does not"])
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
