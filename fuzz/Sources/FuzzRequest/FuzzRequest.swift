// libFuzzer target: the request decoder. A message is parsed (RPCMessageParser), each call gets its
// context from the dispatcher (method name, `vN.` prefix, API version) and its params are decoded into
// the method's real `Params` type (by name and by position, unknown names refused, the types' own
// validation in `init(from:)`) — every method of API versions 1 and 2, without a socket or a store:
// the handlers only count the calls that decoded.
//
// New methods: add their type to `methods` below (a method missing here is still reached through the
// JSON target, but its Params decoding is not fuzzed).
import Logging
import NIOCore
import NIOEmbedded
import RPC
import Services

#if !FUZZING
import FuzzSupport
#endif

/// Registers `M` with a handler that never runs its service: decoding is what is under test.
func register<M: RPCMethod>(_ method: M.Type, _ router: inout RPCRouter, in range: RPCVersionRange = .all) {
    router.onInline(M.self, in: range) { _, _ in throw RPCError(.internalError, "decoded") }
}

let dispatcher: RPCDispatcher = {
    var router = RPCRouter(versions: [RPCAPIVersion("1"), RPCAPIVersion("2")])
    register(System.Ping.self, &router)
    register(System.Echo.self, &router)
    register(System.Version.self, &router)
    register(System.Metrics.self, &router)
    register(System.Sleep.self, &router)
    register(Auth.Register.self, &router)
    register(Auth.Login.self, &router)
    register(Auth.Authenticate.self, &router)
    register(Auth.Logout.self, &router)
    register(Auth.WhoAmI.self, &router)
    register(Auth.ChangePassword.self, &router)
    register(Modules.Create.self, &router)
    register(Modules.Get.self, &router)
    register(Modules.Update.self, &router)
    register(Modules.Delete.self, &router)
    register(Modules.List.self, &router)
    register(Chats.Create.self, &router)
    register(Chats.Get.self, &router)
    register(Chats.List.self, &router, in: .until("1"))
    register(Chats.ListV2.self, &router, in: .from("2"))
    register(Chats.Rename.self, &router)
    register(Chats.Delete.self, &router)
    register(Chats.Fork.self, &router)
    register(Chats.Export.self, &router)
    register(Chats.Messages.List.self, &router)
    register(Chats.Messages.Get.self, &router, in: .until("1"))
    register(Chats.Messages.GetV2.self, &router, in: .from("2"))
    register(Chats.Messages.Append.self, &router)
    register(Chats.Branches.Select.self, &router)
    register(Prompts.Create.self, &router)
    register(Prompts.Get.self, &router)
    register(Prompts.Update.self, &router)
    register(Prompts.Delete.self, &router)
    register(Prompts.List.self, &router)
    register(Prompts.Versions.self, &router)
    register(Prompts.Render.self, &router)
    register(Search.Query.self, &router)
    register(Events.Subscribe.self, &router)
    register(Events.Unsubscribe.self, &router)
    register(Events.Replay.self, &router)
    register(Audit.List.self, &router)
    register(Agent.Act.self, &router)
    register(Agent.Regenerate.self, &router)
    register(Agent.Cancel.self, &router)
    register(Agent.Runs.List.self, &router)
    register(Agent.Runs.Get.self, &router)
    return RPCDispatcher(
        router: router, middleware: [], limits: RPCLimits(),
        server: RPCServerDescription(name: "agentd-fuzz", version: "0", apiVersions: ["1", "2"]),
        logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
}()

/// Never used: no handler here sends notifications.
struct NoNotifier: RPCNotifier {
    func notify(method: String, params: ByteBuffer?) {}
    func openPushStream(openedBy requestNumber: UInt64, _ options: RPCPushStreamOptions) -> RPCPushStream {
        fatalError("no push streams in the request fuzzer")
    }
}

let eventLoop = EmbeddedEventLoop()
let connection = RPCConnectionInfo(
    id: 1, peer: RPCPeer(uid: 1000, gid: 1000, pid: 1), logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }),
    notifier: NoNotifier())
let methodNames = dispatcher.router.routes.keys.sorted()

func fuzzRequest(_ input: UnsafeRawBufferPointer) {
    guard let selector = input.first else { return }
    let rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
    // Two shapes: a whole message (batches, ids, prefixes), or params alone for a method the first
    // byte picks (so the fuzzer need not rediscover the envelope to reach every Params type).
    let requests: [RPCRequest]
    if selector & 0x80 == 0 {
        switch RPCMessageParser(maxDepth: 64, maxBatchLength: 1000).parse(ByteBuffer(bytes: rest)) {
        case .single(.request(let request)): requests = [request]
        case .batch(let entries):
            requests = entries.compactMap { if case .request(let request) = $0 { request } else { nil } }
        default: requests = []
        }
    } else {
        let params = ByteBuffer(bytes: rest)
        // Params must be a container that the parser validated: wrap them in a request and parse.
        let method = methodNames[Int(selector & 0x7F) % methodNames.count]
        var message = ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":""#)
        message.writeString(((selector & 0x40) != 0 ? "v2." : "") + method)
        message.writeString(#"","params":"#)
        message.writeImmutableBuffer(params)
        message.writeString("}")
        guard case .single(.request(let request)) = RPCMessageParser(maxDepth: 64, maxBatchLength: 1000).parse(message) else { return }
        requests = [request]
    }
    for request in requests {
        let context = dispatcher.makeContext(for: request, connection: connection, eventLoop: eventLoop)
        switch dispatcher.dispatch(request, context: context) {
        case .now(.error(let error)):
            // Every refusal is a JSON-RPC error a client can read: a standard or application code.
            precondition(error.code.rawValue < 0, "error code \(error.code.rawValue)")
        case .now: break
        case .later: preconditionFailure("an inline method answered later")
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzRequest(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
@main
enum Replay {
    static func main() { CorpusReplay.main(fuzzRequest) }
}
#endif
