import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// The in-process harness itself (`InProcessDaemon`, `InProcessClient`): what the route-level
/// suites rely on.
@Suite("In-process client", .timeLimit(.minutes(1)))
struct InProcessClientTests {
    @Test("a typed call returns the decoded result; an error reply is thrown as the server's RPCError with its data")
    func typedCalls() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            #expect(try await client.send(System.Ping.self) == "pong")
            let module = try await client.send(Modules.Create.self, .init(title: "x"))
            #expect(module.title == "x")
            #expect(module.createdAt == daemon.clock.now(), "dates decode in the daemon's format")
            let error = await #expect(throws: RPCError.self) { try await client.send(Modules.Get.self, .init(id: "mod_nope")) }
            #expect(error?.code.rawValue == -32030)
            #expect(error?.dataValue?["id"]?.stringValue == "mod_nope", "\(String(describing: error))")
        }
    }

    @Test("raw calls and bytes: malformed JSON gets -32700 with a null id; the raw reply line is the server's")
    func raw() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write("{not json\n")
            let parseError = try await client.nextMessage()
            #expect(parseError.hasPrefix(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"#), "\(parseError)")
            let line = try await client.callRaw("system.ping")
            #expect(line == #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
            let unknown = await #expect(throws: RPCError.self) { try await client.call("no.such.method", "{}") }
            #expect(unknown?.code == .methodNotFound)
            #expect(await client.unreadCount == 0)
        }
    }

    @Test("nextNotification returns a subscription's event params, typed; replies and notifications do not mix")
    func notifications() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let subscription = try await client.send(Events.Subscribe.self, .init(topics: ["module.*"]))
            let module = try await client.send(Modules.Create.self, .init(title: "watched"))
            let event = try await client.nextNotification(of: EventsNotifications.Event.self)
            #expect(event.subscription == subscription.subscription)
            #expect(event.topic == "module.created")
            #expect(event.data.text.contains(module.id), "\(event.data)")
        }
    }

    @Test("the peer decides who a connection is: the own uid is its linked account, no peer must log in")
    func peers() async throws {
        try await withInProcessDaemon { daemon in
            let own = try await daemon.connect()
            #expect(try await own.send(Auth.WhoAmI.self).linkedUID == InProcessDaemon.ownUID)
            let anonymous = try await daemon.connect(peer: nil)
            let refused = await #expect(throws: RPCError.self) { try await anonymous.send(Auth.WhoAmI.self) }
            #expect(refused?.code.rawValue == -32020)
            let mallory = try await daemon.registerAndLogin(username: "mallory")
            #expect(try await mallory.send(Auth.WhoAmI.self).username == "mallory")
        }
    }
}
