import RPC

/// Registers the `events.*` methods: one line each into `EventsService`, all for a signed-in user.
public struct EventsRoutes: Sendable {
    let service: EventsService
    let auth: AuthService

    public init(service: EventsService, auth: AuthService) {
        self.service = service
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let events = self.service
        router.onAuthenticated(Events.Subscribe.self, using: auth) { params, context in
            try await events.subscribe(
                params, userID: context.user.id, session: context.principal.sessionTokenHash, sessionExpiresAt: context.principal.sessionExpiresAt,
                request: context.request)
        }
        router.onAuthenticated(Events.Unsubscribe.self, using: auth) { params, context in
            .init(unsubscribed: try events.unsubscribe(params.subscription, request: context.request))
        }
        router.onAuthenticated(Events.Replay.self, using: auth) { params, context in try await events.replay(params, userID: context.user.id) }
        router.describe(EventsNotifications.Event.self)
        router.describe(EventsNotifications.Overflow.self)
        router.describe(EventsNotifications.Ended.self)
    }
}
