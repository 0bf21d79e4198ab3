import Testing

@testable import RPC

@Suite("Connection attributes")
struct RPCConnectionAttributesTests {
    enum Name: RPCConnectionAttributeKey { typealias Value = String }
    enum Count: RPCConnectionAttributeKey { typealias Value = Int }

    @Test("values are kept by key type, removable, and setIfAbsent keeps the first value")
    func typedKeys() {
        let attributes = RPCConnectionAttributes()
        #expect(attributes[Name.self] == nil)
        attributes[Name.self] = "alice"
        attributes[Count.self] = 3
        #expect(attributes[Name.self] == "alice")
        #expect(attributes[Count.self] == 3)
        #expect(attributes.setIfAbsent(Name.self, "bob") == "alice")
        attributes[Name.self] = nil
        #expect(attributes[Name.self] == nil)
        #expect(attributes.setIfAbsent(Name.self, "bob") == "bob")
    }

    @Test("concurrent writers: setIfAbsent answers every caller with the same winner")
    func concurrent() async {
        let attributes = RPCConnectionAttributes()
        let winners = await withTaskGroup(of: Int.self, returning: Set<Int>.self) { group in
            for value in 0..<100 { group.addTask { attributes.setIfAbsent(Count.self, value) } }
            return await group.reduce(into: []) { $0.insert($1) }
        }
        #expect(winners.count == 1)
    }
}
