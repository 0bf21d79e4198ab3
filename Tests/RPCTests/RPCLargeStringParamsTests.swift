import Foundation
import NIOCore
import Testing

@testable import RPC

/// `RPCLargeStringParams`: the router cuts one string member out of the params before
/// `JSONDecoder` sees them. The params must come out exactly as `JSONDecoder` alone makes them.
@Suite("Large string params")
struct RPCLargeStringParamsTests {
    enum Chunk: RPCMethod {
        static let name = "chunk"
        static let summary = "A chunk."
        static let rateClass: RPCRateClassName = .write
        struct Params: Codable, Sendable, Equatable, RPCLargeStringParams {
            var uploadId: String
            var offset: Int64
            var data: String
            var note: String?

            static var largeStringName: String { "data" }
            mutating func setLargeString(_ value: String) { data = value }
        }
        typealias Result = Int
    }

    private func decode(_ params: String, byPosition: Bool = false) throws -> Chunk.Params {
        let codec = RPCParamsCodec<Chunk>(schema: JSONSchema.of(Chunk.Params.self))
        return try codec.decode(RPCRequest(id: RPCID(1), method: Chunk.name, params: ByteBuffer(string: params), paramsAreByPosition: byPosition))
    }

    private struct FieldReason: Decodable {
        var field: String
        var reason: String
    }

    private func plain(_ params: String) throws -> Chunk.Params {
        try JSONDecoder().decode(Chunk.Params.self, from: Data(params.utf8))
    }

    @Test(
        "the params are those JSONDecoder makes: plain, escaped, not first, beside other strings, with spaces",
        arguments: [
            #"{"uploadId":"upl_1","offset":3,"data":"QUJD"}"#,
            #"{"data":"QUJD","uploadId":"upl_1","offset":3}"#,
            #"{ "uploadId" : "upl_1" , "data" : "a\/b\u00e9\n\"" , "offset" : 0 , "note" : "data" }"#,
            #"{"uploadId":"{\"data\":\"no\"}","offset":1,"data":""}"#,
            #"{"uploadId":"u","offset":1,"\u0064ata":"escaped key"}"#,
            #"{"uploadId":"u","offset":1,"data":"first","data":"last"}"#,
        ])
    func sameAsJSONDecoder(_ params: String) throws {
        let decoded = try decode(params)
        #expect(decoded == (try plain(params)), "for \(params)")
    }

    @Test("a long base64 string comes through whole")
    func longString() throws {
        let data = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }).base64EncodedString()
        let decoded = try decode(#"{"uploadId":"u","offset":0,"data":"\#(data)"}"#)
        #expect(decoded.data == data)
        #expect(decoded.uploadId == "u")
    }

    @Test("by position, the member is cut as by name")
    func byPosition() throws {
        #expect(try decode(#"["upl_1", 7, "QUJD"]"#, byPosition: true) == Chunk.Params(uploadId: "upl_1", offset: 7, data: "QUJD"))
    }

    @Test("absent or not a string: the usual -32602 naming the field")
    func invalid() throws {
        for (params, reason) in [
            (#"{"uploadId":"u","offset":1}"#, "required"), (#"{"uploadId":"u","offset":1,"data":5}"#, "expected a string"),
            (#"{"uploadId":"u","offset":1,"data":null}"#, "expected a string"),
        ] {
            let error = #expect(throws: RPCError.self) { try decode(params) }
            #expect(error?.code == .invalidParams, "for \(params)")
            let data = try #require(error?.data.flatMap { try? JSONDecoder().decode(FieldReason.self, from: Data($0.text.utf8)) })
            #expect(data.field == "data", "for \(params): \(data)")
            #expect(data.reason.hasPrefix(reason), "for \(params): \(data)")
        }
    }
}
