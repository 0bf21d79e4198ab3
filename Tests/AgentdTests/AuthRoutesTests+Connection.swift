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

        /// `signedIn`: whether the handler starts with the full message limit, as the daemon's does
        /// for a trusted uid (false: `max_unauthenticated_message_bytes` until it signs in).
        init(dependencies: Dependencies, peer: RPCPeer?, signedIn: Bool = true) async throws {
            client = try await InProcessClient(dispatcher: dependencies.dispatcher, peer: peer, signedIn: signedIn)
        }

        var channel: NIOAsyncTestingChannel { client.channel }

        /// Sends a call and returns its reply, parsed. After a `-32017` it waits the refusal's
        /// `retryAfterMs` on the channel's clock, as a client should: the connection is not served
        /// before (the rate-limit pause), and this clock moves only when a test moves it.
        func call(_ method: String, _ params: String = "{}") async throws -> [String: Any] {
            let reply = try Self.parse(await client.callRaw(method, params))
            if let error = reply["error"] as? [String: Any], error["code"] as? Int == -32017,
                let wait = (error["data"] as? [String: Any])?["retryAfterMs"] as? Int
            {
                await channel.testingEventLoop.advanceTime(by: .milliseconds(Int64(wait)))
            }
            return reply
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
