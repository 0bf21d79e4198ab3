import Foundation
import NIOCore
import Testing

@testable import RPC

/// `RPCJSONEncoder` against `JSONEncoder` (`JSONWriter.makeEncoder()`): the same bytes for every
/// value, or the same error.
@Suite("RPCJSONEncoder writes what JSONEncoder writes")
struct RPCJSONEncoderTests {
    // MARK: Scalars

    @Test("top-level scalars, optionals and the special Foundation types")
    func scalars() {
        expectSameEncoding("plain")
        expectSameEncoding("")
        expectSameEncoding(42)
        expectSameEncoding(true)
        expectSameEncoding(false)
        expectSameEncoding(Int?.none)
        expectSameEncoding(Int?.some(3))
        expectSameEncoding(1.5)
        expectSameEncoding(Date(timeIntervalSince1970: 1_795_755_813.75))
        expectSameEncoding(Data([0, 1, 2, 0xFE, 0xFF]))
        expectSameEncoding(Data())
        expectSameEncoding(URL(string: "https://example.com/a%20b/c?d=e&f=g#h")!)
        expectSameEncoding(URL(string: "relative/path", relativeTo: URL(string: "https://example.com/base/"))!)
        for decimal in ["0", "1.50", "-3.25", "12345678901234567890.123", "1e-20"] {
            expectSameEncoding(Decimal(string: decimal)!)
        }
        expectSameEncoding(Decimal.nan)
        expectSameEncoding([Decimal(string: "2.5")!])
    }

    @Test("integers of every width, at their extremes")
    func integers() {
        expectSameEncoding(NastyValues.integers)
        expectSameEncoding([Int8.min, Int8.max, 0])
        expectSameEncoding([Int16.min, Int16.max])
        expectSameEncoding([Int32.min, Int32.max])
        expectSameEncoding([Int64.min, Int64.max])
        expectSameEncoding([Int128.min, Int128.max, 0, -1])
        expectSameEncoding([UInt.max, 0])
        expectSameEncoding([UInt8.max, UInt8.min])
        expectSameEncoding([UInt16.max])
        expectSameEncoding([UInt32.max])
        expectSameEncoding([UInt64.max])
        expectSameEncoding([UInt128.max, 0])
        expectSameEncoding(Int128.min)
        expectSameEncoding(UInt128.max)
        struct Widths: Codable {
            var a: Int8 = .min, b: Int16 = .min, c: Int32 = .min, d: Int64 = .min, e: Int128 = .min
            var f: UInt8 = .max, g: UInt16 = .max, h: UInt32 = .max, i: UInt64 = .max, j: UInt128 = .max, k: UInt = .max, l: Int = .min
        }
        expectSameEncoding(Widths())
        expectSameEncoding([Widths()])
        expectSameEncoding(["w": Widths()])
    }

    @Test("doubles and floats: integral values without .0, negative zero, extremes, shortest digits")
    func floats() {
        expectSameEncoding(NastyValues.doubles)
        for double in NastyValues.doubles {
            expectSameEncoding(double)
            expectSameEncoding(["d": double])
            expectSameEncoding([Optional(double), nil])
        }
        expectSameEncoding([Float(0), -0.0, 1, 0.1, 3.4e38, .leastNonzeroMagnitude, 16_777_216, 0.3])
        var random = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let double = NastyValues.double(&random)
            expectSameEncoding(double, "\(double.bitPattern)")
            let float = NastyValues.float(&random)
            expectSameEncoding(float, "\(float.bitPattern)")
        }
        struct Floats: Codable {
            var f: Float
            var d: Double
            var fs: [Float]
            var ds: [Double]
        }
        expectSameEncoding(Floats(f: 0.1, d: -0.0, fs: [1, 2.5], ds: [1e300, .leastNonzeroMagnitude]))
    }

    @Test("NaN and infinities throw, with JSONEncoder's message and coding path")
    func nonConformingFloats() {
        struct Holder: Codable {
            var value: Double
            var values: [Double]?
            var nested: [Holder]?
        }
        for bad in [Double.nan, .infinity, -.infinity] {
            expectSameEncoding(bad)
            expectSameEncoding([bad])
            expectSameEncoding([1, bad])
            expectSameEncoding(Float(bad))
            expectSameEncoding([Float(bad)])
            expectSameEncoding(["key": bad])
            expectSameEncoding(Holder(value: bad))
            expectSameEncoding(Holder(value: 1, values: [0, bad]))
            expectSameEncoding(Holder(value: 1, nested: [Holder(value: 2), Holder(value: bad)]))
            expectSameEncoding([[1, bad]])
            expectSameEncoding([Optional(1), Optional(bad)])
        }
    }

    // MARK: Strings

    @Test("string escaping: every control character, quotes, backslashes, slashes, DEL, unicode")
    func strings() {
        for byte in 0..<0x80 {
            expectSameEncoding(String(UnicodeScalar(UInt8(byte))))
            expectSameEncoding("ab" + String(UnicodeScalar(UInt8(byte))) + "cdefghijklmnop")
        }
        expectSameEncoding(NastyValues.stringPieces)
        expectSameEncoding(NastyValues.stringPieces.joined())
        // Every position of an escape inside and across the eight-byte words of the fast scan.
        for length in 0..<24 {
            for position in 0..<length {
                for special in ["\"", "\\", "\n", "\u{1F}", "é"] {
                    var characters = Array(repeating: "x", count: length)
                    characters[position] = special
                    expectSameEncoding(characters.joined())
                }
            }
        }
        var random = SeededGenerator(seed: 11)
        for _ in 0..<2000 {
            expectSameEncoding(NastyValues.string(&random))
        }
    }

    // MARK: Keys

    @Test("keys sort by UTF-8 bytes: case, digits, prefixes, non-ASCII, escaped characters")
    func keyOrder() {
        var dictionary: [String: Int] = [:]
        for (index, key) in NastyValues.keys.enumerated() { dictionary[key] = index }
        expectSameEncoding(dictionary)
        let pairs: [[String]] = [
            ["\"", "A"], ["\\", "]"], ["\n", " "], ["a\u{1}", "a"], ["é", "f"], ["😀", "日本"], ["10", "9"], ["B", "a"], ["", "a"],
        ]
        for keys in pairs {
            expectSameEncoding(Dictionary(uniqueKeysWithValues: keys.map { ($0, $0) }))
        }
        var random = SeededGenerator(seed: 3)
        for _ in 0..<500 {
            let keys = Set((0..<Int.random(in: 0...12, using: &random)).map { _ in NastyValues.string(&random, maxPieces: 3) })
            expectSameEncoding(Dictionary(uniqueKeysWithValues: keys.map { ($0, 1) }))
        }
        expectSameEncoding([1: "a", 10: "b", 2: "c", -1: "d"])  // Int keys become strings: "-1" "1" "10" "2"
        expectSameEncoding([true: 1])  // other keys: an array of alternating keys and values
    }

    @Test("a key written twice keeps its last value")
    func duplicateKeys() {
        struct Twice: Encodable {
            var keys: [String]
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: AnyCodingKey.self)
                for (index, key) in keys.enumerated() { try container.encode(index, forKey: AnyCodingKey(key)) }
            }
        }
        expectSameEncoding(Twice(keys: ["b", "a", "b"]))
        expectSameEncoding(Twice(keys: ["a", "a", "a"]))
        expectSameEncoding(Twice(keys: ["a", "b", "a", "c", "b"]))
        expectSameEncoding(Twice(keys: ["z", "y", "x", "y", "z", "z"]))
    }

    @Test("keys equal only under canonical equivalence are left to JSONEncoder, which merges them")
    func canonicallyEquivalentKeys() {
        struct Keys: Encodable {
            var keys: [String]
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: AnyCodingKey.self)
                for (index, key) in keys.enumerated() { try container.encode(index, forKey: AnyCodingKey(key)) }
            }
        }
        expectSameEncoding(Keys(keys: ["K", "\u{212A}"]), streams: false)  // KELVIN SIGN is "K"
        expectSameEncoding(Keys(keys: ["é", "e\u{301}", "a"]), streams: false)
        expectSameEncoding(Keys(keys: ["é", "f", "e"]))  // non-ASCII but distinct: streamed
    }

    // MARK: Containers

    struct Record: Codable, Equatable {
        var zeta: String
        var alpha: Int?
        var Beta: [String?]
        var _under: [String: Int]
        var nested: [Record]?
        var when: Date
        var ratio: Double?
        var blob: Data?
        var flag: Bool
        var kind: Kind
        var raw: JSONFragment?

        enum Kind: String, RPCStringEnum {
            case first
            case second = "Second"
            case third = "3rd"
        }

        static func random(_ random: inout SeededGenerator, depth: Int = 0) -> Record {
            Record(
                zeta: NastyValues.string(&random),
                alpha: Bool.random(using: &random) ? nil : NastyValues.integers.randomElement(using: &random),
                Beta: (0..<Int.random(in: 0...3, using: &random)).map { _ in Bool.random(using: &random) ? nil : NastyValues.string(&random) },
                _under: Dictionary(
                    (0..<Int.random(in: 0...4, using: &random)).map { _ in
                        (NastyValues.keys.randomElement(using: &random)!, Int.random(in: -5...5, using: &random))
                    },
                    uniquingKeysWith: { $1 }),
                nested: depth < 2 && Bool.random(using: &random)
                    ? (0..<Int.random(in: 0...2, using: &random)).map { _ in Record.random(&random, depth: depth + 1) } : nil,
                when: NastyValues.date(&random),
                ratio: Bool.random(using: &random) ? NastyValues.double(&random) : nil,
                blob: Bool.random(using: &random)
                    ? Data((0..<Int.random(in: 0...9, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }) : nil,
                flag: Bool.random(using: &random),
                kind: Kind.allCases.randomElement(using: &random)!,
                raw: Bool.random(using: &random) ? RPCJSONEncoderTests.canonicalFragment : nil)
        }
    }

    /// A fragment as the engine makes them (RPCJSONEncoder writes fragments verbatim; JSONEncoder
    /// re-encodes them, so only the canonical spelling compares equal).
    static let canonicalFragment = try! JSONFragment(
        encoding: try! JSONDecoder().decode(JSONValue.self, from: Data(#"{"b":[1,2.5,"x\/y",null,true],"a":{"c":-0.0,"B":1e300}}"#.utf8)))

    @Test("synthesized Codable: declaration order sorted, nil omitted, arrays of optionals, dictionaries, enums, fragments")
    func synthesized() {
        var random = SeededGenerator(seed: 5)
        for index in 0..<1000 {
            let record = Record.random(&random)
            expectSameEncoding(record, "record \(index)")
            if index % 10 == 0 { expectSameEncoding([record, record], "records \(index)") }
        }
    }

    @Test("a value that encodes nothing is {} inside, an error at the top")
    func emptyValues() {
        struct Nothing: Encodable { func encode(to encoder: any Encoder) throws {} }
        expectSameEncoding(Nothing())
        expectSameEncoding([Nothing()])
        expectSameEncoding(["a": Nothing()])
        expectSameEncoding(RPCNoParams())
        expectSameEncoding([RPCNoParams()])
        expectSameEncoding([String]())
        expectSameEncoding([String: Int]())
        expectSameEncoding([[Int]]())
        expectSameEncoding([[Int]()])
    }

    @Test("nested containers, written in order and interleaved")
    func nestedContainers() {
        struct Nested: Encodable {
            enum Keys: String, CodingKey { case z, a, inner, list, m }
            enum InnerKeys: String, CodingKey { case y, b }
            var interleave: Bool
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                try container.encode(1, forKey: .z)
                var inner = container.nestedContainer(keyedBy: InnerKeys.self, forKey: .inner)
                try inner.encode("y", forKey: .y)
                var list = container.nestedUnkeyedContainer(forKey: .list)
                try list.encode(1)
                var deeper = list.nestedContainer(keyedBy: InnerKeys.self)
                try deeper.encode(true, forKey: .b)
                try deeper.encodeNil(forKey: .y)
                var deepest = list.nestedUnkeyedContainer()
                try deepest.encode("x")
                try list.encode(2)
                try container.encode("a", forKey: .a)
                if interleave {
                    // Back to the first nested container after its siblings: cannot be streamed.
                    try inner.encode("b", forKey: .b)
                }
                try container.encodeNil(forKey: .m)
            }
        }
        expectSameEncoding(Nested(interleave: false))
        expectSameEncoding(Nested(interleave: true), streams: false)
        expectSameEncoding([Nested(interleave: false), Nested(interleave: true)], streams: false)
    }

    @Test("asking the same encoder for its keyed container twice gives the same object")
    func containerTwice() {
        struct Twice: Encodable {
            enum Keys: String, CodingKey { case b, a }
            func encode(to encoder: any Encoder) throws {
                var first = encoder.container(keyedBy: Keys.self)
                try first.encode(1, forKey: .b)
                var second = encoder.container(keyedBy: Keys.self)
                try second.encode(2, forKey: .a)
                try first.encode(3, forKey: .a)
            }
        }
        expectSameEncoding(Twice())
        expectSameEncoding([Twice()])
    }

    class Base: Encodable {
        var baseName = "base"
        var shared = 1
        enum Keys: String, CodingKey { case baseName, shared }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(baseName, forKey: .baseName)
            try container.encode(shared, forKey: .shared)
        }
    }

    /// The classic pattern: the superclass under "super".
    final class ViaSuperEncoder: Base {
        var extra = [1, 2]
        enum Keys: String, CodingKey { case extra, zz, parent }
        override func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(extra, forKey: .extra)
            try super.encode(to: container.superEncoder())
            try super.encode(to: container.superEncoder(forKey: .parent))
            _ = container.superEncoder(forKey: .zz)  // never used: {}
        }
    }

    /// The other pattern: the superclass's keys merged into the same object.
    final class ViaSameEncoder: Base {
        var extra = "e"
        enum Keys: String, CodingKey { case extra, shared }
        override func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(extra, forKey: .extra)
            try super.encode(to: encoder)
            try container.encode(99, forKey: .shared)  // overrides the superclass's value
        }
    }

    @Test("superEncoder in keyed and unkeyed containers, and superclasses sharing the encoder")
    func superEncoders() {
        expectSameEncoding(ViaSuperEncoder())
        expectSameEncoding(ViaSameEncoder())
        expectSameEncoding([ViaSuperEncoder(), ViaSuperEncoder()])
        struct ArraySuper: Encodable {
            func encode(to encoder: any Encoder) throws {
                var container = encoder.unkeyedContainer()
                try container.encode(1)
                try Base().encode(to: container.superEncoder())
                try container.encode(2)
                _ = container.superEncoder()
                try container.encode(3)
            }
        }
        expectSameEncoding(ArraySuper())
    }

    @Test("a single value container written twice throws (JSONEncoder traps)")
    func singleValueTwice() {
        struct Twice: Encodable {
            func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                try container.encode(1)
                try container.encode(2)
            }
        }
        #expect(throws: EncodingError.self) { try RPCJSONEncoder().encodeToBytes(Twice()) }
        #expect(throws: EncodingError.self) { try RPCJSONEncoder().encodeToBytes([Twice()]) }
    }

    @Test("single value containers holding containers, nil and values")
    func singleValues() {
        struct Wrapper<Value: Encodable>: Encodable {
            var value: Value
            func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                try container.encode(value)
            }
        }
        var random = SeededGenerator(seed: 1)
        expectSameEncoding(Wrapper(value: Record.random(&random)))
        expectSameEncoding(Wrapper(value: Wrapper(value: [1, 2])))
        expectSameEncoding(Wrapper(value: Int?.none))
        expectSameEncoding(["a": Wrapper(value: Wrapper(value: "x"))])
        expectSameEncoding(Record.Kind.third)
        expectSameEncoding([Record.Kind.first: 1])
    }

    @Test("a JSONFragment nested in a result is written as it is; in the engine's own form that is what JSONEncoder writes")
    func fragments() throws {
        let texts = [
            #"{"b":1,"a":[true,null,"x\/y\u0041"],"c":{"é":1.0,"e":-0.0,"d":1e300,"f":12345678901234567890}}"#,
            #"[]"#, #"{}"#, #""text""#, #"-3"#, #"0.1"#, #"null"#,
        ]
        for text in texts {
            // Verbatim, whatever its spelling (an event's data is stored encoded and sent as it is).
            let verbatim = JSONFragment(unchecked: text)
            #expect(try RPCJSONEncoder().encodeToString(["k": verbatim]) == #"{"k":\#(text)}"#)
            // The engine's own encoding of the same value: both encoders agree byte for byte.
            let fragment = try JSONFragment(encoding: try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)))
            expectSameEncoding(fragment)
            expectSameEncoding([fragment])
            expectSameEncoding(["k": fragment])
            let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            expectSameEncoding(value)
            // JSONFragment(encoding:) and the reference agree too.
            #expect(try JSONFragment(encoding: value).text == String(decoding: try JSONWriter.makeEncoder().encode(value), as: UTF8.self))
        }
    }

    @Test("nesting: 511 levels encode, 512 throw, arrays of numbers or strings count as levels")
    func depth() {
        indirect enum Deep: Encodable {
            case leaf
            case strings
            case integers
            case array(Deep)
            case object(Deep)
            func encode(to encoder: any Encoder) throws {
                switch self {
                case .leaf:
                    var container = encoder.singleValueContainer()
                    try container.encode(1)
                case .strings:
                    var container = encoder.singleValueContainer()
                    try container.encode(["a", "b"])
                case .integers:
                    var container = encoder.container(keyedBy: AnyCodingKey.self)
                    try container.encode([1, 2], forKey: AnyCodingKey("i"))
                case .array(let inner):
                    var container = encoder.unkeyedContainer()
                    try container.encode(inner)
                case .object(let inner):
                    var container = encoder.container(keyedBy: AnyCodingKey.self)
                    try container.encode(inner, forKey: AnyCodingKey("k"))
                }
            }
        }
        for levels in [1, 2, 510, 511, 512, 513] {
            var array = Deep.leaf
            var object = Deep.leaf
            var strings = Deep.strings
            var integers = Deep.integers
            for index in 0..<levels {
                array = .array(array)
                object = .object(object)
                strings = index % 2 == 0 ? .array(strings) : .object(strings)
                integers = .array(integers)
            }
            expectSameEncoding(array, "\(levels) arrays")
            expectSameEncoding(object, "\(levels) objects")
            expectSameEncoding(strings, "\(levels) levels around [String]")
            expectSameEncoding(integers, "\(levels) levels around [Int]")
        }
    }

    @Test("errors thrown by encode(to:) come through unchanged")
    func thrownErrors() {
        struct Boom: Error, Equatable {}
        struct Throws: Encodable {
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: AnyCodingKey.self)
                try container.encode(1, forKey: AnyCodingKey("a"))
                throw Boom()
            }
        }
        #expect(throws: Boom()) { try RPCJSONEncoder().encodeToBytes(Throws()) }
        #expect(throws: Boom()) { try RPCJSONEncoder().encodeToBytes(["x": [Throws()]]) }
        // The pooled state is clean afterwards.
        expectSameEncoding(["after": [1, 2]])
    }

    @Test("coding paths seen by encode(to:) match JSONEncoder's")
    func codingPaths() {
        final class Recorder: Encodable, @unchecked Sendable {
            var paths: [String] = []
            struct Probe: Encodable {
                let recorder: Recorder
                func encode(to encoder: any Encoder) throws {
                    recorder.paths.append(
                        encoder.codingPath.map { "\($0.stringValue)/\($0.intValue.map(String.init) ?? "-")" }.joined(separator: "."))
                    var container = encoder.singleValueContainer()
                    try container.encode(recorder.paths.count)
                }
            }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: AnyCodingKey.self)
                try container.encode(Probe(recorder: self), forKey: AnyCodingKey("a"))
                try container.encode([Probe(recorder: self), Probe(recorder: self)], forKey: AnyCodingKey("list"))
                var nested = container.nestedContainer(keyedBy: AnyCodingKey.self, forKey: AnyCodingKey("n"))
                try nested.encode(["k": Probe(recorder: self)], forKey: AnyCodingKey("dict"))
                try Probe(recorder: self).encode(to: container.superEncoder())
            }
        }
        let reference = Recorder()
        _ = try? JSONWriter.makeEncoder().encode(reference)
        let ours = Recorder()
        _ = try? RPCJSONEncoder().encodeToBytes(ours)
        #expect(ours.paths == reference.paths)
        #expect(!ours.paths.isEmpty)
    }

    // MARK: Dates

    @Test("dates: ISO 8601 in UTC, fractional seconds floored, before 1970, around the edges, far past and future")
    func dates() {
        var random = SeededGenerator(seed: 2026)
        for index in 0..<20_000 {
            let date = NastyValues.date(&random)
            if !expectSameEncoding(date, "date \(date.timeIntervalSinceReferenceDate) (\(index))") { break }
        }
        for reference in [
            JSONOutput.handFormattedDates.lowerBound, JSONOutput.handFormattedDates.lowerBound.nextDown,
            JSONOutput.handFormattedDates.upperBound, JSONOutput.handFormattedDates.upperBound.nextDown, -0.5, -1e-9, 0.999_999_999,
            Double.greatestFiniteMagnitude, -Double.greatestFiniteMagnitude, .nan, .infinity, -.infinity,
        ] {
            expectSameEncoding(Date(timeIntervalSinceReferenceDate: reference), "\(reference)")
        }
        expectSameEncoding([Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -1), Date(timeIntervalSince1970: 951_782_400)])
    }

    // MARK: Random trees

    @Test("random trees through every container API: thousands of cases, all identical")
    func randomTrees() {
        for seed in 0..<3000 as Range<UInt64> {
            var random = SeededGenerator(seed: seed)
            let tree = RandomTree.make(&random, depth: 0)
            if !expectSameEncoding(tree, "seed \(seed)") { break }
        }
    }

    @Test("encode(into:) appends to the buffer; the pooled state does not leak between values")
    func appendsAndReuses() throws {
        var buffer = ByteBuffer(string: "prefix:")
        try RPCJSONEncoder().encode(["b": 1, "a": 2], into: &buffer)
        #expect(String(buffer: buffer) == #"prefix:{"a":2,"b":1}"#)
        #expect(throws: EncodingError.self) { try RPCJSONEncoder().encode(Double.nan, into: &buffer) }
        #expect(String(buffer: buffer) == #"prefix:{"a":2,"b":1}"#)
        #expect(try RPCJSONEncoder().encodeToString(["z": [String?.none]]) == #"{"z":[null]}"#)
    }
}

/// A random value that encodes itself through every container API: typed and generic `encode`,
/// `encodeIfPresent`, `encodeNil`, nested keyed and unkeyed containers, super encoders, single value
/// containers; keys written out of order and twice.
indirect enum RandomTree: Encodable {
    case scalar(Scalar)
    case object([Member])
    case array([Element])
    case dictionary([String: RandomTree])
    case single(RandomTree)
    case nothing

    enum Scalar {
        case string(String), int(Int), int64(Int64), int8(Int8), uint64(UInt64), uint32(UInt32), double(Double), float(Float)
        case bool(Bool), null, date(Date), data(Data), decimal(Decimal), url(URL), strings([String]), ints([Int]), doubles([Double])
    }

    struct Member {
        var key: String
        var kind: Kind
        enum Kind {
            /// Through the typed overload when there is one (`encode(_: String, forKey:)`).
            case typed(Scalar)
            /// Through `encode<T: Encodable>`.
            case generic(RandomTree)
            case ifPresent(RandomTree?)
            case null
            case nestedObject([Member])
            case nestedArray([Element])
            case superEncoder(RandomTree)
        }
    }

    enum Element {
        case typed(Scalar)
        case generic(RandomTree)
        case nestedObject([Member])
        case nestedArray([Element])
        case superEncoder(RandomTree)
    }

    static func make(_ random: inout SeededGenerator, depth: Int) -> RandomTree {
        let choice = depth >= 4 ? 0 : Int.random(in: 0..<10, using: &random)
        switch choice {
        case 0, 1, 2: return .scalar(scalar(&random))
        case 3, 4: return .object(members(&random, depth: depth))
        case 5, 6: return .array(elements(&random, depth: depth))
        case 7:
            let count = Int.random(in: 0...5, using: &random)
            return .dictionary(
                Dictionary(
                    (0..<count).map { _ in (NastyValues.keys.randomElement(using: &random)!, make(&random, depth: depth + 1)) },
                    uniquingKeysWith: { $1 }))
        case 8: return .single(make(&random, depth: depth + 1))
        default: return depth == 0 ? .array([]) : .nothing
        }
    }

    static func scalar(_ random: inout SeededGenerator) -> Scalar {
        switch Int.random(in: 0..<17, using: &random) {
        case 0, 1: return .string(NastyValues.string(&random))
        case 2: return .int(NastyValues.integers.randomElement(using: &random)!)
        case 3: return .int64(Int64(truncatingIfNeeded: random.next()))
        case 4: return .int8(Int8(truncatingIfNeeded: random.next()))
        case 5: return .uint64(random.next())
        case 6: return .uint32(UInt32(truncatingIfNeeded: random.next()))
        case 7: return .double(NastyValues.double(&random))
        case 8: return .float(NastyValues.float(&random))
        case 9: return .bool(Bool.random(using: &random))
        case 10: return .null
        case 11: return .date(NastyValues.date(&random))
        case 12: return .data(Data((0..<Int.random(in: 0...7, using: &random)).map { _ in UInt8(truncatingIfNeeded: random.next()) }))
        case 13: return .decimal([Decimal(string: "1.50")!, Decimal(-7), Decimal(string: "0.000001")!].randomElement(using: &random)!)
        case 14: return .strings((0..<Int.random(in: 0...3, using: &random)).map { _ in NastyValues.string(&random, maxPieces: 4) })
        case 15: return .ints((0..<Int.random(in: 0...3, using: &random)).map { _ in NastyValues.integers.randomElement(using: &random)! })
        default: return .doubles((0..<Int.random(in: 0...3, using: &random)).map { _ in NastyValues.double(&random) })
        }
    }

    /// Plain members may repeat a key (the last one wins in both encoders); nested containers and
    /// super encoders get keys of their own (JSONEncoder merges or traps otherwise).
    static func members(_ random: inout SeededGenerator, depth: Int) -> [Member] {
        var keys = NastyValues.keys.shuffled(using: &random)
        let plainKeys = Array(keys.prefix(6))
        keys.removeFirst(6)
        return (0..<Int.random(in: 0...7, using: &random)).map { _ in
            let plainKey = plainKeys.randomElement(using: &random)!
            switch Int.random(in: 0..<9, using: &random) {
            case 0, 1: return Member(key: plainKey, kind: .typed(scalar(&random)))
            case 2, 3: return Member(key: plainKey, kind: .generic(make(&random, depth: depth + 1)))
            case 4: return Member(key: plainKey, kind: .ifPresent(Bool.random(using: &random) ? nil : make(&random, depth: depth + 1)))
            case 5: return Member(key: plainKey, kind: .null)
            case 6: return Member(key: keys.removeFirst(), kind: .nestedObject(depth >= 4 ? [] : members(&random, depth: depth + 1)))
            case 7: return Member(key: keys.removeFirst(), kind: .nestedArray(depth >= 4 ? [] : elements(&random, depth: depth + 1)))
            default: return Member(key: keys.removeFirst(), kind: .superEncoder(make(&random, depth: depth + 1)))
            }
        }
    }

    static func elements(_ random: inout SeededGenerator, depth: Int) -> [Element] {
        (0..<Int.random(in: 0...5, using: &random)).map { _ in
            switch Int.random(in: 0..<7, using: &random) {
            case 0, 1: return .typed(scalar(&random))
            case 2, 3: return .generic(make(&random, depth: depth + 1))
            case 4: return .nestedObject(depth >= 4 ? [] : members(&random, depth: depth + 1))
            case 5: return .nestedArray(depth >= 4 ? [] : elements(&random, depth: depth + 1))
            default: return .superEncoder(make(&random, depth: depth + 1))
            }
        }
    }

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .scalar(let scalar):
            var container = encoder.singleValueContainer()
            try Self.encode(scalar, into: &container)
        case .object(let members):
            var container = encoder.container(keyedBy: AnyCodingKey.self)
            try Self.encode(members, into: &container)
        case .array(let elements):
            var container = encoder.unkeyedContainer()
            try Self.encode(elements, into: &container)
        case .dictionary(let dictionary):
            try dictionary.encode(to: encoder)
        case .single(let tree):
            var container = encoder.singleValueContainer()
            try container.encode(tree)
        case .nothing:
            break
        }
    }

    static func encode(_ scalar: Scalar, into container: inout some SingleValueEncodingContainer) throws {
        switch scalar {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .int64(let value): try container.encode(value)
        case .int8(let value): try container.encode(value)
        case .uint64(let value): try container.encode(value)
        case .uint32(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .float(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        case .date(let value): try container.encode(value)
        case .data(let value): try container.encode(value)
        case .decimal(let value): try container.encode(value)
        case .url(let value): try container.encode(value)
        case .strings(let value): try container.encode(value)
        case .ints(let value): try container.encode(value)
        case .doubles(let value): try container.encode(value)
        }
    }

    static func encode(_ members: [Member], into container: inout KeyedEncodingContainer<AnyCodingKey>) throws {
        for member in members {
            let key = AnyCodingKey(member.key)
            switch member.kind {
            case .typed(let scalar):
                switch scalar {
                case .string(let value): try container.encode(value, forKey: key)
                case .int(let value): try container.encode(value, forKey: key)
                case .int64(let value): try container.encode(value, forKey: key)
                case .int8(let value): try container.encode(value, forKey: key)
                case .uint64(let value): try container.encode(value, forKey: key)
                case .uint32(let value): try container.encode(value, forKey: key)
                case .double(let value): try container.encode(value, forKey: key)
                case .float(let value): try container.encode(value, forKey: key)
                case .bool(let value): try container.encode(value, forKey: key)
                case .null: try container.encodeNil(forKey: key)
                case .date(let value): try container.encode(value, forKey: key)
                case .data(let value): try container.encode(value, forKey: key)
                case .decimal(let value): try container.encode(value, forKey: key)
                case .url(let value): try container.encode(value, forKey: key)
                case .strings(let value): try container.encode(value, forKey: key)
                case .ints(let value): try container.encode(value, forKey: key)
                case .doubles(let value): try container.encode(value, forKey: key)
                }
            case .generic(let tree): try container.encode(tree, forKey: key)
            case .ifPresent(let tree): try container.encodeIfPresent(tree, forKey: key)
            case .null: try container.encodeNil(forKey: key)
            case .nestedObject(let members):
                var nested = container.nestedContainer(keyedBy: AnyCodingKey.self, forKey: key)
                try encode(members, into: &nested)
            case .nestedArray(let elements):
                var nested = container.nestedUnkeyedContainer(forKey: key)
                try encode(elements, into: &nested)
            case .superEncoder(let tree):
                try tree.encode(to: container.superEncoder(forKey: key))
            }
        }
    }

    static func encode(_ elements: [Element], into container: inout any UnkeyedEncodingContainer) throws {
        for element in elements {
            switch element {
            case .typed(let scalar):
                switch scalar {
                case .string(let value): try container.encode(value)
                case .int(let value): try container.encode(value)
                case .int64(let value): try container.encode(value)
                case .int8(let value): try container.encode(value)
                case .uint64(let value): try container.encode(value)
                case .uint32(let value): try container.encode(value)
                case .double(let value): try container.encode(value)
                case .float(let value): try container.encode(value)
                case .bool(let value): try container.encode(value)
                case .null: try container.encodeNil()
                case .date(let value): try container.encode(value)
                case .data(let value): try container.encode(value)
                case .decimal(let value): try container.encode(value)
                case .url(let value): try container.encode(value)
                case .strings(let value): try container.encode(value)
                case .ints(let value): try container.encode(value)
                case .doubles(let value): try container.encode(value)
                }
            case .generic(let tree): try container.encode(tree)
            case .nestedObject(let members):
                var nested = container.nestedContainer(keyedBy: AnyCodingKey.self)
                try encode(members, into: &nested)
            case .nestedArray(let elements):
                var nested = container.nestedUnkeyedContainer()
                try encode(elements, into: &nested)
            case .superEncoder(let tree):
                try tree.encode(to: container.superEncoder())
            }
        }
    }
}
