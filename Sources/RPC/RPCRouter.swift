import Foundation
import NIOCore

/// The registry of methods and notifications, per API version. Build it once at start-up (`on`,
/// `onInline`, `describe`), then hand it to an `RPCDispatcher`; it is immutable while serving.
///
/// A method is registered in every version unless given a range. Adding a method breaks no client,
/// so a new method goes in every version, the published ones too: a client that never says
/// `session.hello` (version 1) reaches it. Versions differ only where a contract changes: the new
/// type, with the same name, is registered `in: .from("2")` and the old one narrowed to
/// `.until("1")`, so version 1 keeps its exact contract (`Chats.List` / `Chats.ListV2`). A name may
/// leave the newer versions (removed), never start in one: `versionGaps` finds such a name, and
/// `RPCDispatcher` refuses a registry that has one.
public struct RPCRouter: Sendable {
    /// The API versions, oldest first.
    public let versions: [RPCAPIVersion]
    /// Each version's methods, by version name then method name.
    public private(set) var tables: [String: [String: RPCRoute]] = [:]
    public private(set) var notifications: [RPCNotificationDescription] = []
    /// Where the tasks of `on` handlers run.
    public let handlerExecution: RPCHandlerExecution

    public init(versions: [RPCAPIVersion] = [RPCAPIVersion("1")], handlerExecution: RPCHandlerExecution = .globalPool) {
        precondition(!versions.isEmpty && Set(versions.map(\.name)).count == versions.count)
        self.versions = versions
        self.handlerExecution = handlerExecution
        for version in versions { tables[version.name] = [:] }
    }

    /// Every method name of any version, with its newest route (for metrics and listings).
    public var routes: [String: RPCRoute] {
        var routes: [String: RPCRoute] = [:]
        for version in versions {
            for (name, route) in tables[version.name] ?? [:] { routes[name] = route }
        }
        return routes
    }

    /// The method `name` as version `version` has it.
    public func route(_ name: String, version: String) -> RPCRoute? {
        tables[version]?[name]
    }

    /// Every method or notification that a version has and the version before it lacks, as
    /// `"v2 has method agent.act, v1 does not"`: empty in a well-formed registry (see the type's comment).
    /// A method registered `in: .from(v)` without an older registration of its name is one.
    public var versionGaps: [String] {
        var gaps: [String] = []
        for (older, newer) in zip(versions.map(\.name), versions.map(\.name).dropFirst()) {
            let olderMethods = tables[older] ?? [:]
            gaps += (tables[newer] ?? [:]).keys.filter { olderMethods[$0] == nil }.sorted().map { "v\(newer) has method \($0), v\(older) does not" }
            gaps += notifications.filter { $0.versions.contains(newer) && !$0.versions.contains(older) }.map(\.name).sorted()
                .map { "v\(newer) has notification \($0), v\(older) does not" }
        }
        return gaps
    }

    /// The versions that have a method called `name`.
    public func versions(having name: String) -> [String] {
        versions.map(\.name).filter { tables[$0]?[name] != nil }
    }

    /// Registers a method whose handler may suspend (database, network). It runs in its own task,
    /// off the event loop, and can be cancelled.
    ///
    /// - Parameter deprecated: marks the method deprecated in these versions (what to use instead),
    ///   over `M.deprecation`.
    public mutating func on<M: RPCMethod>(
        _ method: M.Type, in range: RPCVersionRange = .all, deprecated: String? = nil,
        _ handler: @escaping @Sendable (M.Params, RPCContext) async throws -> M.Result
    ) {
        add(M.self, in: range, deprecated: deprecated, execution: .task(handler))
    }

    /// Registers a method that answers at once: pure computation, no I/O, no lock that can be
    /// contended. It runs inline on the connection's event loop, which is what makes `system.ping`
    /// cost ~2 µs instead of a task and two thread hops.
    ///
    /// - Important: never block or do I/O here; every other client on the loop waits meanwhile.
    public mutating func onInline<M: RPCMethod>(
        _ method: M.Type, in range: RPCVersionRange = .all, deprecated: String? = nil,
        _ handler: @escaping @Sendable (M.Params, RPCContext) throws -> M.Result
    ) {
        add(M.self, in: range, deprecated: deprecated, execution: .inline(handler))
    }

    /// As `onInline`, for a handler that answers JSON already encoded (its bytes are sent as they
    /// are): `rpc.discover` serves each version's document from bytes encoded once.
    mutating func onInlineEncoded<M: RPCMethod>(_ method: M.Type, _ handler: @escaping @Sendable (M.Params, RPCContext) throws -> ByteBuffer) {
        add(M.self, in: .all, deprecated: nil, execution: .inlineEncoded(handler))
    }

    /// Declares a notification the server sends, so that `rpc.discover` documents it (in the
    /// versions of `range`: a changed notification's new form goes in the versions that have it).
    public mutating func describe<N: RPCNotification>(_ notification: N.Type, in range: RPCVersionRange = .all) {
        notifications.removeAll { $0.name == N.name }
        notifications.append(
            RPCNotificationDescription(
                name: N.name, summary: N.summary, params: JSONSchema.of(N.Params.self), versions: Set(range.names(in: versions.map(\.name)))))
    }

    private enum Execution<M: RPCMethod> {
        case task(@Sendable (M.Params, RPCContext) async throws -> M.Result)
        case inline(@Sendable (M.Params, RPCContext) throws -> M.Result)
        case inlineEncoded(@Sendable (M.Params, RPCContext) throws -> ByteBuffer)
    }

    private mutating func add<M: RPCMethod>(_ method: M.Type, in range: RPCVersionRange, deprecated: String?, execution: Execution<M>) {
        let names = range.names(in: versions.map(\.name))
        precondition(!names.isEmpty, "method \(M.name): no version in \(range)")
        for name in names { precondition(tables[name]?[M.name] == nil, "method \(M.name) registered twice in version \(name)") }
        let paramsSchema = JSONSchema.of(M.Params.self)
        let codec = RPCParamsCodec<M>(schema: paramsSchema)
        let encode = RPCResultEncoder.encoder(for: M.Result.self)
        let invoke: @Sendable (RPCRequest, RPCContext) -> RPCReply
        let preferEventLoop = handlerExecution == .connectionEventLoop
        switch execution {
        case .inline(let handler):
            invoke = { request, context in
                do {
                    let params = try codec.decode(request)
                    return .now(.result(try encode(try handler(params, context))))
                } catch {
                    return .now(.error(RPCErrorFunnel.rpcError(for: error, context: context)))
                }
            }
        case .inlineEncoded(let handler):
            invoke = { request, context in
                do {
                    return .now(.result(try handler(try codec.decode(request), context)))
                } catch {
                    return .now(.error(RPCErrorFunnel.rpcError(for: error, context: context)))
                }
            }
        case .task(let handler):
            invoke = { request, context in
                let promise = context.eventLoop.makePromise(of: RPCOutcome.self)
                let executor: (any TaskExecutor)? = preferEventLoop ? EventLoopTaskExecutor(context.eventLoop) : nil
                let task = Task(executorPreference: executor) {
                    let outcome: RPCOutcome
                    do {
                        let params = try codec.decode(request)
                        outcome = .result(try encode(try await handler(params, context)))
                    } catch {
                        outcome = .error(RPCErrorFunnel.rpcError(for: error, context: context))
                    }
                    promise.succeed(outcome)
                }
                context.cancellation.onCancel { task.cancel() }
                return .later(promise.futureResult)
            }
        }
        var isInline = true
        if case .task = execution { isInline = false }
        let route = RPCRoute(
            name: M.name, summary: M.summary, params: paramsSchema, result: JSONSchema.of(M.Result.self),
            errors: M.errors, timeout: M.timeout, deprecation: deprecated ?? M.deprecation, rateClass: M.rateClass, cacheRule: M.cacheRule,
            isInline: isInline, invoke: invoke)
        for name in names { tables[name]![M.name] = route }
    }
}

/// One API version: its name (`"1"`) and, when it is on its way out, why.
public struct RPCAPIVersion: Sendable, Hashable {
    public var name: String
    /// Set when the version is deprecated: its calls still work, and every reply says so.
    public var deprecation: String?

    public init(_ name: String, deprecation: String? = nil) {
        self.name = name
        self.deprecation = deprecation
    }
}

/// The versions a method is registered in.
public enum RPCVersionRange: Sendable, CustomStringConvertible {
    /// Every version: a method's range unless its contract changed.
    case all
    /// This version and the later ones: a changed contract's new type, beside an older registration
    /// of the same name narrowed `.until` the version before (`RPCRouter.versionGaps`).
    case from(String)
    /// The versions up to and including this one.
    case until(String)

    func names(in versions: [String]) -> [String] {
        switch self {
        case .all: return versions
        case .from(let first):
            guard let index = versions.firstIndex(of: first) else { return [] }
            return Array(versions[index...])
        case .until(let last):
            guard let index = versions.firstIndex(of: last) else { return [] }
            return Array(versions[...index])
        }
    }

    public var description: String {
        switch self {
        case .all: "all"
        case .from(let version): "from \(version)"
        case .until(let version): "until \(version)"
        }
    }
}

/// Where the tasks of `on` (suspending) handlers run.
public enum RPCHandlerExecution: Sendable, Equatable {
    /// Swift's global concurrent pool: a hop from the event loop and back per call.
    case globalPool
    /// The connection's own event loop (`EventLoopTaskExecutor`): no hop, but a handler's CPU work
    /// between `await`s delays that loop's other connections. What the daemon uses; the in-process
    /// test harness (a testing event loop that runs jobs only when told) uses `globalPool`.
    case connectionEventLoop
}

/// One registered method: its description (for `rpc.discover`) and how to call it.
public final class RPCRoute: Sendable {
    public let name: String
    public let summary: String
    public let params: JSONSchema
    public let result: JSONSchema
    public let errors: [RPCErrorDescription]
    public let timeout: Duration?
    /// Set when the method is deprecated (`RPCMethod.deprecation`).
    public let deprecation: String?
    /// `RPCMethod.rateClass`.
    public let rateClass: RPCRateClassName
    /// `RPCMethod.cacheRule`.
    public let cacheRule: RPCCacheRule?
    /// Runs on the event loop and answers at once (`onInline`).
    public let isInline: Bool
    let invoke: @Sendable (RPCRequest, RPCContext) -> RPCReply

    init(
        name: String, summary: String, params: JSONSchema, result: JSONSchema, errors: [RPCErrorDescription],
        timeout: Duration?, deprecation: String?, rateClass: RPCRateClassName, cacheRule: RPCCacheRule?, isInline: Bool,
        invoke: @escaping @Sendable (RPCRequest, RPCContext) -> RPCReply
    ) {
        self.deprecation = deprecation
        self.rateClass = rateClass
        self.cacheRule = cacheRule
        self.isInline = isInline
        self.name = name
        self.summary = summary
        self.params = params
        self.result = result
        self.errors = errors
        self.timeout = timeout
        self.invoke = invoke
    }
}

public struct RPCNotificationDescription: Sendable {
    public var name: String
    public var summary: String
    public var params: JSONSchema
    /// The API versions that document it.
    public var versions: Set<String>
}

/// Turns a request's raw params into the method's `Params`, by name or by position.
struct RPCParamsCodec<M: RPCMethod>: Sendable {
    /// Parameter names in declaration order (positional params map onto these).
    let names: [String]
    /// Names a params object may contain; nil when the schema does not say (accept anything).
    let known: Set<String>?
    /// `RPCLargeStringParams.largeStringName`, when `M.Params` has such a member.
    let largeStringName: String?

    init(schema: JSONSchema) {
        if let properties = schema.properties {
            names = properties.map(\.name)
            known = Set(names)
        } else {
            names = []
            known = nil
        }
        largeStringName = (M.Params.self as? any RPCLargeStringParams.Type)?.largeStringName
    }

    func decode(_ request: RPCRequest) throws -> M.Params {
        if M.Params.self == RPCNoParams.self {
            if let params = request.params, params.readableBytes > 2, !Self.isEmptyContainer(params) {
                throw RPCError.invalidParams(field: "", reason: "\(M.name) takes no params")
            }
            return RPCNoParams() as! M.Params
        }
        if M.Params.self == JSONFragment.self {
            return JSONFragment(unchecked: request.params.map { String(buffer: $0) } ?? "null") as! M.Params
        }
        let object: ByteBuffer
        if let params = request.params {
            object = request.paramsAreByPosition ? try byName(params) : params
            if !request.paramsAreByPosition, let known { try checkNames(object, known: known) }
        } else {
            object = ByteBuffer(string: "{}")
        }
        do {
            guard let largeStringName, let (rest, large) = Self.cutString(named: largeStringName, from: object) else {
                return try JSONDecoder().decode(M.Params.self, from: Data(object.readableBytesView))
            }
            var params = try JSONDecoder().decode(M.Params.self, from: Data(rest.readableBytesView)) as! any RPCLargeStringParams
            params.setLargeString(large)
            return params as! M.Params
        } catch let error as DecodingError {
            throw RPCErrorFunnel.invalidParams(error)
        }
    }

    /// Takes the string value of the top-level member `name` out of a validated params object:
    /// the object with `""` in its place, and the string. nil when the member is absent or not a
    /// string (`JSONDecoder` then says what is wrong). With the name twice, the first counts, as with
    /// `JSONDecoder`.
    static func cutString(named name: String, from object: ByteBuffer) -> (rest: ByteBuffer, value: String)? {
        let found: (value: Range<Int>, escaped: Bool)? = object.withUnsafeReadableBytes { bytes in
            var scanner = JSONScanner(bytes, maxDepth: Int.max)
            var found: (Range<Int>, Bool)?
            scanner.index = 1  // {
            while true {
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: "\""), let key = try? scanner.scanString() else { return found }
                let matches =
                    key.escaped
                    ? RPCMessageParser.decodeString(scanner.base, key.contents.lowerBound - 1..<key.contents.upperBound + 1) == name
                    : String(decoding: UnsafeRawBufferPointer(rebasing: bytes[key.contents]), as: UTF8.self) == name
                scanner.skipWhitespace()
                scanner.index += 1  // :
                scanner.skipWhitespace()
                let start = scanner.index
                if matches, found == nil, scanner.peek() == UInt8(ascii: "\""), let string = try? scanner.scanString() {
                    found = (start..<scanner.index, string.escaped)
                } else {
                    _ = scanner.skipValueLeniently()
                }
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: ",") else { return found }
                scanner.index += 1
            }
        }
        guard let found else { return nil }
        let value = object.withUnsafeReadableBytes { bytes in
            found.escaped
                ? RPCMessageParser.decodeString(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), found.value)
                : String(decoding: UnsafeRawBufferPointer(rebasing: bytes[found.value.lowerBound + 1..<found.value.upperBound - 1]), as: UTF8.self)
        }
        var rest = ByteBuffer()
        rest.reserveCapacity(object.readableBytes - found.value.count + 2)
        var head = object.getSlice(at: object.readerIndex, length: found.value.lowerBound)!
        var tail = object.getSlice(at: object.readerIndex + found.value.upperBound, length: object.readableBytes - found.value.upperBound)!
        rest.writeBuffer(&head)
        rest.writeStaticString("\"\"")
        rest.writeBuffer(&tail)
        return (rest, value)
    }

    private static func isEmptyContainer(_ params: ByteBuffer) -> Bool {
        params.readableBytesView.allSatisfy {
            [0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "["), UInt8(ascii: "]")].contains($0)
        }
    }

    /// Rewrites `[a, b]` as `{"first": a, "second": b}` using the declared parameter order.
    private func byName(_ params: ByteBuffer) throws -> ByteBuffer {
        let elements: [Range<Int>] = params.withUnsafeReadableBytes { bytes in
            var scanner = JSONScanner(bytes, maxDepth: Int.max)
            var ranges: [Range<Int>] = []
            scanner.index = 1
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "]") { return ranges }
            while true {
                let start = scanner.index
                _ = try? scanner.skipValue(depth: 1)  // already validated by the parser
                ranges.append(start..<scanner.index)
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: ",") else { return ranges }
                scanner.index += 1
                scanner.skipWhitespace()
            }
        }
        guard elements.count <= names.count else {
            throw RPCError.invalidParams(
                field: "", reason: "\(M.name) takes at most \(names.count) params by position, got \(elements.count)")
        }
        var object = ByteBuffer()
        object.reserveCapacity(params.readableBytes + 16 * elements.count)
        object.writeInteger(UInt8(ascii: "{"))
        for (index, range) in elements.enumerated() {
            if index > 0 { object.writeInteger(UInt8(ascii: ",")) }
            JSONWriter.writeQuoted(names[index], into: &object)
            object.writeInteger(UInt8(ascii: ":"))
            var element = params.getSlice(at: params.readerIndex + range.lowerBound, length: range.count)!
            object.writeBuffer(&element)
        }
        object.writeInteger(UInt8(ascii: "}"))
        return object
    }

    /// Refuses names the method does not declare, so that a misspelt optional param is an error
    /// instead of being silently ignored.
    private func checkNames(_ params: ByteBuffer, known: Set<String>) throws {
        let unknown: String? = params.withUnsafeReadableBytes { bytes in
            var scanner = JSONScanner(bytes, maxDepth: Int.max)
            scanner.index = 1
            while true {
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: "\""), let key = try? scanner.scanString() else { return nil }
                let name = RPCMessageParser.decodeString(scanner.base, key.contents.lowerBound - 1..<key.contents.upperBound + 1)
                if !known.contains(name) { return name }
                scanner.skipWhitespace()
                scanner.index += 1  // :
                scanner.skipWhitespace()
                // Validated by the parser already: a second validating pass over a 5 MiB string
                // (`files.upload.chunk`) cost a fifth of the call.
                _ = scanner.skipValueLeniently()
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: ",") else { return nil }
                scanner.index += 1
            }
        }
        if let unknown {
            let expected = names.isEmpty ? "none" : names.joined(separator: ", ")
            throw RPCError.invalidParams(field: unknown, reason: "unknown parameter (expected: \(expected))")
        }
    }
}

/// Encodes results with `RPCJSONEncoder`; strings and JSON fragments are written directly. The
/// choice is made once per method at registration (a dynamic cast per call showed up in the profile).
enum RPCResultEncoder {
    static func encoder<T: Encodable & Sendable>(for type: T.Type) -> @Sendable (T) throws -> ByteBuffer {
        if T.self == String.self {
            return { value in
                let string = unsafeBitCast(value, to: String.self)
                var buffer = ByteBuffer()
                buffer.reserveCapacity(string.utf8.count + 2)
                JSONWriter.writeQuoted(string, into: &buffer)
                return buffer
            }
        }
        if T.self == JSONFragment.self {
            return { value in ByteBuffer(string: unsafeBitCast(value, to: JSONFragment.self).text) }
        }
        let encoder = RPCJSONEncoder()
        return { value in try encoder.encode(value) }
    }
}
