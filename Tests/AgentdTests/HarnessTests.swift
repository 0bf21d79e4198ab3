import Foundation
import Testing

/// The comparisons the live tests rely on, checked without a daemon: an equality that always said
/// "equal" would make every other test pass vacuously.
@Suite("Test harness")
struct HarnessTests {
    @Test func jsonComparesByMeaning() throws {
        #expect(try JSON(parsing: #"{"a": 1, "b": [true, null]}"#) == JSON(parsing: #"{"b":[true,null],"a":1.0}"#))
        #expect(try JSON(parsing: "1.50") == JSON(parsing: "1.5"))
        #expect(try JSON(parsing: #""x""#) == .string("x"))
    }

    @Test func jsonTellsValuesApart() throws {
        #expect(try JSON(parsing: "1") != JSON(parsing: "true"))
        #expect(try JSON(parsing: "0") != JSON(parsing: "false"))
        #expect(try JSON(parsing: "null") != JSON(parsing: "0"))
        #expect(try JSON(parsing: "[1,2]") != JSON(parsing: "[2,1]"))
        #expect(try JSON(parsing: #"{"a":1}"#) != JSON(parsing: #"{"a":1,"b":2}"#))
        #expect(try JSON(parsing: #""1""#) != JSON(parsing: "1"))
        #expect(try JSON(parsing: "9007199254740993") != JSON(parsing: "9007199254740992"))
        #expect(try JSON(parsing: "true") == .bool(true))
    }

    @Test func errorDataIsIgnoredOnlyInErrors() throws {
        let reply = try JSON(parsing: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found","data":{"method":"x"}}}"#)
        #expect(reply.withoutErrorData == (try JSON(parsing: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}"#)))
        let result = try JSON(parsing: #"{"jsonrpc":"2.0","id":1,"result":{"data":1}}"#)
        #expect(result.withoutErrorData == result)
    }

    @Test func firstDifferenceNamesThePath() throws {
        let a = try JSON(parsing: #"{"methods":[{"name":"a"},{"name":"b"}],"x":1}"#)
        let b = try JSON(parsing: #"{"methods":[{"name":"a"},{"name":"c"}],"x":1}"#)
        #expect(a.firstDifference(from: a) == nil)
        #expect(a.firstDifference(from: b) == #"$.methods[1].name: "b" vs "c""#)
    }

    @Test func theDaemonBinaryExists() {
        #expect(FileManager.default.isExecutableFile(atPath: TestPaths.agentdBinary), "agentd not found at \(TestPaths.agentdBinary): build it, or set AGENTD_BINARY")
    }

    @Test func rawMemberReturnsTheBytesAsSent() {
        let line = #"{"jsonrpc":"2.0","id":1.50,"result":{"a": [1, "}]"], "b":"\"x"},"z":null}"#
        #expect(rawMember("id", in: line) == "1.50")
        #expect(rawMember("result", in: line) == #"{"a": [1, "}]"], "b":"\"x"}"#)
        #expect(rawMember("z", in: line) == "null")
        #expect(rawMember("missing", in: line) == nil)
        #expect(rawMember("id", in: #"{ "id" : "abc" }"#) == #""abc""#)
    }
}
