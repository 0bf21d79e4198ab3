/// Generates the OpenRPC 1.3 document of one API version that `rpc.discover` returns, from the
/// router's registry. `info.version` is the API version (not the server's release), so a published
/// document changes only when that version's contract does.
///
/// OpenRPC cannot describe server-to-client notifications, so they are listed under the
/// `x-notifications` extension; errors every method can answer with are under `x-errors`. Each
/// method says its rate class (`x-rate-class`), its own timeout (`x-timeout-ms`) and why it is
/// deprecated (`x-deprecation`).
enum OpenRPCDocument {
    /// Errors any call can get, whatever the method.
    static let commonErrors: [RPCErrorDescription] = [
        .init(.parseError, "Parse error", data: "{reason}: where the JSON stopped making sense"),
        .init(.invalidRequest, "Invalid Request", data: "{reason}"),
        .init(.methodNotFound, "Method not found", data: "{method}"),
        .init(.invalidParams, "Invalid params", data: "{field, reason}: the offending field as a dotted path"),
        .init(.internalError, "Internal error", data: "none: details are in the server log only"),
        .init(.requestCancelled, "Request cancelled", data: "none: answered to a call cancelled with $/cancelRequest"),
        .init(.requestTimeout, "Request timed out", data: "{setting, limit, actual} in milliseconds"),
        .init(.shuttingDown, "Server is shutting down", data: "none: retry after the server restarts"),
        .init(.messageTooLarge, "Message too large", data: "{setting, limit, actual} in bytes"),
        .init(.nestingTooDeep, "JSON nested too deeply", data: "{setting, limit, actual} in levels"),
        .init(.batchTooLarge, "Batch too large", data: "{setting, limit, actual} in calls"),
        .init(.tooManyConnections, "Too many connections", data: "{setting, limit, actual}; sent before the connection is closed"),
        .init(
            .tooManyConnectionsForUser, "Too many connections for this user", data: "{setting, limit, actual}; sent before the connection is closed"),
        .init(.framingError, "Framing error", data: "{reason}; sent before the connection is closed"),
    ]

    static func generate(router: RPCRouter, version: RPCAPIVersion, server: RPCServerDescription) -> JSONFragment {
        // The registry is built from our own types: encoding cannot fail.
        try! JSONFragment(encoding: document(router: router, version: version, server: server))
    }

    static func document(router: RPCRouter, version: RPCAPIVersion, server: RPCServerDescription) -> JSONValue {
        let routes = router.tables[version.name] ?? [:]
        let methods: [JSONValue] = routes.values.sorted { $0.name < $1.name }.map { route in
            var method: [String: JSONValue] = [
                "name": .string(route.name),
                "summary": .string(route.summary),
                "paramStructure": .string("either"),
                "params": .array(
                    (route.params.properties ?? []).map { property in
                        .object(["name": .string(property.name), "required": .bool(property.required), "schema": property.schema.jsonValue])
                    }),
                "result": .object(["name": .string("result"), "schema": route.result.jsonValue]),
                // Which budget its calls spend (`limits.rate_<class>_*`), so a client can pace them.
                "x-rate-class": .string(route.rateClass.rawValue),
            ]
            if !route.errors.isEmpty {
                method["errors"] = .array(route.errors.map(describe))
            }
            if let timeout = route.timeout {
                method["x-timeout-ms"] = .number(Double(timeout.components.seconds * 1000))
            }
            if let deprecation = route.deprecation ?? version.deprecation {
                method["deprecated"] = .bool(true)
                method["x-deprecation"] = .string(deprecation)
            }
            return .object(method)
        }
        let notifications: [JSONValue] = router.notifications.filter { $0.versions.contains(version.name) }.sorted { $0.name < $1.name }.map {
            notification in
            .object([
                "name": .string(notification.name),
                "summary": .string(notification.summary),
                "params": notification.params.jsonValue,
            ])
        }
        var info: [String: JSONValue] = [
            "title": .string(server.name),
            "version": .string(version.name),
            "x-api-versions": .array(router.versions.map { .string($0.name) }),
        ]
        if let deprecation = version.deprecation { info["x-deprecation"] = .string(deprecation) }
        return .object([
            "openrpc": .string("1.3.2"),
            "info": .object(info),
            "methods": .array(methods),
            "x-notifications": .array(notifications),
            "x-errors": .array(commonErrors.map(describe)),
        ])
    }

    private static func describe(_ error: RPCErrorDescription) -> JSONValue {
        var object: [String: JSONValue] = ["code": .number(Double(error.code)), "message": .string(error.message)]
        if let data = error.data { object["data"] = .string(data) }
        return .object(object)
    }
}
