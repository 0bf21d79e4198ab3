import NIOCore
import Testing

@testable import RPC

@Suite("Client codec")
struct RPCClientCodecTests {
    func parse(_ text: String) throws -> RPCServerMessage {
        try RPCClientCodec.parse(ByteBuffer(string: text))
    }

    @Test("a request line is the envelope the server parses, params and id as given")
    func requestLine() throws {
        let line = RPCClientCodec.request(id: RPCID(7), method: "modules.get", params: JSONFragment(unchecked: #"{"id":"m\"1"}"#))
        #expect(String(buffer: line) == #"{"jsonrpc":"2.0","id":7,"method":"modules.get","params":{"id":"m\"1"}}"# + "\n")
        let notification = RPCClientCodec.request(id: nil, method: "$/cancelRequest", params: nil)
        #expect(String(buffer: notification) == #"{"jsonrpc":"2.0","method":"$/cancelRequest"}"# + "\n")
        guard case .single(.request(let request)) = RPCMessageParser(maxDepth: 64, maxBatchLength: 10).parse(line) else {
            Issue.record("the server does not read the client's request")
            return
        }
        #expect(request.id == RPCID(7) && request.method == "modules.get")
    }

    @Test("responses: a result kept as raw text (numbers exact), an error with code, message and data")
    func responses() throws {
        guard case .response(let id, .success(let result)) = try parse(#"{"jsonrpc":"2.0","id":3,"result":{"n":9007199254740993,"x":1.50}}"#) else {
            Issue.record("not a result")
            return
        }
        #expect(id == RPCID(3) && result.text == #"{"n":9007199254740993,"x":1.50}"#)
        guard
            case .response(let errorID, .failure(let error)) = try parse(
                #"{"jsonrpc":"2.0","id":"a","error":{"code":-32030,"message":"Not \u0046ound","data":{"kind":"module"}}}"#)
        else {
            Issue.record("not an error")
            return
        }
        #expect(errorID == RPCID(string: "a") && error.code == RPCError.Code(-32030) && error.message == "Not Found")
        #expect(error.data?.text == #"{"kind":"module"}"#)
        // The deprecation notice next to a result does not get in the way.
        guard case .response(_, .success(let kept)) = try parse(#"{"jsonrpc":"2.0","id":1,"result":"pong","deprecation":{"m":1}}"#) else {
            Issue.record("a deprecated result")
            return
        }
        #expect(kept.text == #""pong""#)
    }

    @Test("notifications with and without params; malformed messages are refused with a reason")
    func notificationsAndMalformed() throws {
        guard case .notification(let method, let params) = try parse(#"{"jsonrpc":"2.0","method":"agent.delta","params":{"text":"hi"}}"#) else {
            Issue.record("not a notification")
            return
        }
        #expect(method == "agent.delta" && params?.text == #"{"text":"hi"}"#)
        guard case .notification(_, nil) = try parse(#"{"jsonrpc":"2.0","method":"server.shuttingDown"}"#) else {
            Issue.record("params should be absent")
            return
        }
        for bad in ["[1]", "{", #"{"jsonrpc":"2.0"}"#, #"{"id":1,"error":{"message":"no code"}}"#, #"{"id":1}"#, "{} x"] {
            #expect(throws: RPCClientCodec.Malformed.self, "\(bad)") { try parse(bad) }
        }
    }
}
