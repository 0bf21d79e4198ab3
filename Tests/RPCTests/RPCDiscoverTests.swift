import Logging
import NIOCore
import Testing

@testable import RPC

/// `rpc.discover` (issue 17, item 2): each version's document is encoded once and its bytes are
/// served as they are, so a batch of 1,000 calls costs no 1,000 encodings or copies of ~100 KiB.
@Suite("rpc.discover")
struct RPCDiscoverTests {
    @Test("the reply is the document's text byte for byte, in each version and with the version param")
    func sameBytes() async throws {
        let connection = try await InProcessConnection()
        let document = try #require(connection.handler?.dispatcher.openRPCDocuments["1"]?.text)
        try await connection.send(#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"# + "\n")
        #expect(try await connection.next() == #"{"jsonrpc":"2.0","id":1,"result":"# + document + "}")
        try await connection.send(#"{"jsonrpc":"2.0","id":2,"method":"rpc.discover","params":{"version":"1"}}"# + "\n")
        #expect(try await connection.next() == #"{"jsonrpc":"2.0","id":2,"result":"# + document + "}")
    }

    @Test("two calls answer the same bytes in memory (encoded once, never copied per call)")
    func encodedOnce() async throws {
        let connection = try await InProcessConnection()
        let channel = connection.channel
        let handler = try #require(connection.handler)
        let dispatcher = handler.dispatcher
        let info = RPCConnectionInfo(id: 1, peer: nil, logger: Logger(label: "test"), notifier: handler.handle)
        func discover() throws -> ByteBuffer {
            let request = RPCRequest(id: RPCID(1), method: "rpc.discover")
            let reply = dispatcher.dispatch(request, context: dispatcher.makeContext(for: request, connection: info, eventLoop: channel.eventLoop))
            guard case .now(.result(let bytes)) = reply else { throw Failure(reply: "\(reply)") }
            return bytes
        }
        let first = try discover()
        let second = try discover()
        #expect(String(buffer: first) == dispatcher.openRPCDocuments["1"]?.text)
        let firstAddress = first.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let secondAddress = second.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(firstAddress == secondAddress, "each call encoded or copied the document again")
    }

    struct Failure: Error { let reply: String }
}
