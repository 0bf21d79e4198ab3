import RPC

/// Registers the `system.*` methods: one line each into `SystemService`.
public struct SystemRoutes: Sendable {
    let service: SystemService
    let auth: AuthService
    let includeTestMethods: Bool

    public init(service: SystemService, auth: AuthService, includeTestMethods: Bool) {
        self.service = service
        self.auth = auth
        self.includeTestMethods = includeTestMethods
    }

    public func register(on router: inout RPCRouter) {
        let service = self.service
        router.onInline(System.Ping.self) { _, _ in service.ping() }
        router.onInline(System.Echo.self) { params, _ in service.echo(params) }
        router.onInline(System.Version.self, in: .until("1")) { _, _ in service.version() }
        // session.hello answers all of it, and more, since version 2.
        router.onInline(System.Version.self, in: .from("2"), deprecated: "use session.hello: it answers the server's name, version and API versions")
        { _, _ in
            service.version()
        }
        // Added after version 1 was published, and in it too: a new method breaks no client. Signed-in
        // callers only: the counts show what every user is doing (the daemon's own uid is signed in implicitly).
        router.onAuthenticated(System.Metrics.self, using: auth) { _, _ in service.metricsText() }
        if includeTestMethods {
            router.on(System.Sleep.self) { params, _ in try await service.sleep(milliseconds: params.ms) }
            router.on(System.DecodeChunk.self) { params, _ in try service.decodeChunk(params) }
        }
    }
}
