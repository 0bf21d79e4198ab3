import Foundation
import Logging
import NIOCore
import RPC

/// Records security-relevant calls in the audit log, as a policy around the calls rather than in
/// the auth handlers: logins (also failed ones, under the account whose name was tried), logouts,
/// password changes, `auth.authenticate`, and every call refused as `Unauthorized` (an expired or
/// revoked session, an untrusted peer uid), with the time, the user, the peer uid and the outcome.
///
/// The entry is written before the reply goes out, so a client that reads `audit.list` right after
/// sees it; a failure to write it is logged and never changes the reply.
///
/// A client must not be able to fill the log without an account: a login whose username no account
/// can have (`AuthService.isValid(username:)`, which also bounds its size) is not recorded at all,
/// and failures alike within a minute share one entry with a count (`AuditedCall.coalesceKey`).
public struct SecurityAuditMiddleware: RPCMiddleware {
    public static let auditedMethods: Set<String> = ["auth.login", "auth.logout", "auth.changePassword", "auth.authenticate"]

    private let store: any AuditStore
    private let auth: AuthService
    private let clock: any WallClock

    public init(store: any AuditStore, auth: AuthService, clock: any WallClock) {
        self.store = store
        self.auth = auth
        self.clock = clock
    }

    public func handle(_ request: RPCRequest, context: RPCContext, next: RPCNext) -> RPCReply {
        let method = context.method
        let isAudited = Self.auditedMethods.contains(method)
        // Who the connection was before the call (a logout or a refused session forgets it).
        let userBefore = AuthService.principalUserID(on: context.connection)
        let reply = next(request, context)
        guard case .later(let future) = reply else { return reply }  // auth calls and refusals run in tasks
        let (store, auth, clock) = (self.store, self.auth, self.clock)
        return .later(
            future.flatMap { outcome in
                let refused = outcome.error?.code == .unauthorized
                guard isAudited || refused else { return context.eventLoop.makeSucceededFuture(outcome) }
                let promise = context.eventLoop.makePromise(of: RPCOutcome.self)
                Task {
                    do {
                        let userAfter = AuthService.principalUserID(on: context.connection)
                        var userID = userAfter ?? userBefore
                        var data: [String: String] = [:]
                        var record = true
                        // What tells failures apart besides action, outcome, uid and user: a login's
                        // username (without case), a refused call's method.
                        var subject = ""
                        if method == "auth.login" {
                            if let username = Self.username(in: request.params), AuthService.isValid(username: username) {
                                data["username"] = username
                                subject = username.lowercased()
                                if outcome.error != nil { userID = try await auth.userID(username: username) }
                            } else {
                                record = false  // no account can have it: nothing to tell anyone
                            }
                        }
                        if refused, !isAudited {
                            data["method"] = method
                            subject = method
                        }
                        if record {
                            let outcomeText = outcome.error.map { "error \($0.code.rawValue)" } ?? "ok"
                            let action = isAudited ? method : "auth.refused"
                            let fragment = try JSONFragment(encoding: data)
                            try await store.record(
                                call: AuditedCall(
                                    userID: userID, uid: context.connection.peer?.uid, action: action, outcome: outcomeText, occurredAt: clock.now(),
                                    data: fragment, subject: subject))
                        }
                    } catch {
                        context.logger.error("could not write an audit entry", metadata: ["error": "\(error)"])
                    }
                    promise.succeed(outcome)
                }
                return promise.futureResult
            })
    }

    private struct LoginParams: Decodable {
        var username: String
    }

    /// Params larger than this cannot hold a valid username and password (64 + 4096 bytes, even
    /// with every character escaped): they are not decoded again here.
    static let maxLoginParamsBytes = 32 * 1024

    /// The `username` of by-name params (positional ones: the first element).
    static func username(in params: ByteBuffer?) -> String? {
        guard let params, params.readableBytes <= maxLoginParamsBytes else { return nil }
        let bytes = Data(params.readableBytesView)
        if let named = try? JSONDecoder().decode(LoginParams.self, from: bytes) { return named.username }
        return (try? JSONDecoder().decode([String].self, from: bytes))?.first
    }
}
