import AgentdTesting
import Foundation
import NIOEmbedded
import RPC
import Testing

@testable import Daemon

extension AuthRoutesTests {
    /// A connection answering parsed dictionaries, for the hostile-client suites that build their
    /// own `Dependencies` (rate limits, sessions, audit) and have not moved to `InProcessClient`'s
    /// typed calls yet. It is an `InProcessClient` underneath: replies are awaited, not polled for.
    final class Connection: Sendable {
        let client: InProcessClient

        init(dependencies: Dependencies, peer: RPCPeer?) async throws {
            client = try await InProcessClient(dispatcher: dependencies.dispatcher, peer: peer)
        }

        var channel: NIOAsyncTestingChannel { client.channel }

        /// Sends a call and returns its reply, parsed.
        func call(_ method: String, _ params: String = "{}") async throws -> [String: Any] {
            try Self.parse(await client.callRaw(method, params))
        }

        /// Writes `text` exactly (no newline added).
        func send(_ text: String) async throws {
            try await client.write(text)
        }

        /// The next message, parsed.
        func next() async throws -> [String: Any] {
            try Self.parse(await client.nextMessage())
        }

        private static func parse(_ line: String) throws -> [String: Any] {
            try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
    }

    static func errorCode(_ reply: [String: Any]) -> Int? { (reply["error"] as? [String: Any])?["code"] as? Int }
    static func result(_ reply: [String: Any]) -> [String: Any]? { reply["result"] as? [String: Any] }
}
