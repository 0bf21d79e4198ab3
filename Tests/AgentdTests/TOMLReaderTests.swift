import Testing

@testable import Daemon

/// The configuration file's reader against the TOML 1.0.0 specification's own examples
/// (toml.io/en/v1.0.0; dates and arrays of tables aside, which it refuses by design).
@Suite("TOML reader")
struct TOMLReaderTests {
    /// The entries as `key → value`, failing the test on a duplicate key.
    static func read(_ text: String) throws -> [String: ConfigValue] {
        var values: [String: ConfigValue] = [:]
        for entry in try TOMLReader.read(text) {
            #expect(values.updateValue(entry.value, forKey: entry.key) == nil, "\(entry.key) twice")
        }
        return values
    }

    /// The reason and line of the failure reading `text`.
    static func failure(_ text: String) -> TOMLReader.Failure? {
        do {
            _ = try TOMLReader.read(text)
            return nil
        } catch {
            return error
        }
    }

    @Test("keys: bare, quoted, dotted, with spaces around the dots; tables and their keys; the line of each key")
    func keys() throws {
        let text = """
            # This is a full-line comment
            key = "value"  # This is a comment at the end of a line
            bare_key = "value"
            bare-key = "value"
            1234 = "value"
            "127.0.0.1" = "value"
            "ʎǝʞ" = "value"
            'quoted "value"' = "value"
            name = "Orange"
            physical.color = "orange"
            physical.shape = "round"
            site."google.com" = true
            fruit. flavor = "banana"

            [table-1]
            key1 = "some string"
            key2 = 123

            [dog."tater.man"]
            type.name = "pug"
            [ j . "ʞ" . 'l' ]
            x = 1
            """
        let entries = try TOMLReader.read(text)
        #expect(
            entries.map(\.key) == [
                "key", "bare_key", "bare-key", "1234", "127.0.0.1", "ʎǝʞ", "quoted \"value\"", "name", "physical.color", "physical.shape",
                "site.google.com", "fruit.flavor", "table-1.key1", "table-1.key2", "dog.tater.man.type.name", "j.ʞ.l.x",
            ])
        #expect(entries.map(\.line) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 20, 22])
        #expect(entries[9].value == .string("round") && entries[10].value == .bool(true) && entries[13].value == .integer(123))
    }

    @Test("basic strings and their escapes, \\u and \\U included")
    func basicStrings() throws {
        let values = try Self.read(
            #"""
            str = "I'm a string. \"You can quote me\". Name\tJos\u00E9\nLocation\tSF."
            all = "\b\t\n\f\r\"\\"
            emoji = "\U0001F600 and \u00e9 and é"
            """#)
        #expect(values["str"] == .string("I'm a string. \"You can quote me\". Name\tJos\u{E9}\nLocation\tSF."))
        #expect(values["all"] == .string("\u{8}\t\n\u{C}\r\"\\"))
        #expect(values["emoji"] == .string("\u{1F600} and \u{E9} and é"))
    }

    @Test("multi-line basic strings: the first newline dropped, a line-ending backslash trims, quotes inside")
    func multiLineBasicStrings() throws {
        let values = try Self.read(
            #"""
            str1 = """
            Roses are red
            Violets are blue"""
            str2 = "The quick brown fox jumps over the lazy dog."
            str3 = """
            The quick brown \


              fox jumps over \
                the lazy dog."""
            str4 = """\
                   The quick brown \
                   fox jumps over \
                   the lazy dog.\
                   """
            str5 = """Here are two quotation marks: "". Simple enough."""
            str6 = """Here are three quotation marks: ""\"."""
            str7 = """Here are fifteen quotation marks: ""\"""\"""\"""\"""\"."""
            str8 = """"This," she said, "is just a pointless statement.""""
            after = 1
            """#)
        #expect(values["str1"] == .string("Roses are red\nViolets are blue"))
        #expect(values["str3"] == values["str2"])
        #expect(values["str4"] == values["str2"])
        #expect(values["str5"] == .string(#"Here are two quotation marks: "". Simple enough."#))
        #expect(values["str6"] == .string(#"Here are three quotation marks: """."#))
        #expect(values["str7"] == .string(#"Here are fifteen quotation marks: """""""""""""""."#))
        #expect(values["str8"] == .string(#""This," she said, "is just a pointless statement.""#))
        #expect(try TOMLReader.read("s = \"\"\"\na\nb\"\"\"\nafter = 1\n").last?.line == 4, "lines inside a string are counted")
    }

    @Test("literal strings, one line and multi-line, no escapes")
    func literalStrings() throws {
        let values = try Self.read(
            #"""
            winpath  = 'C:\Users\nodejs\templates'
            winpath2 = '\\ServerX\admin$\system32\'
            quoted   = 'Tom "Dubs" Preston-Werner'
            regex    = '<\i\c*\s*>'
            regex2 = '''I [dw]on't need \d{2} apples'''
            lines  = '''
            The first newline is
            trimmed in raw strings.
               All other whitespace
               is preserved.
            '''
            quot15 = '''Here are fifteen quotation marks: """""""""""""""'''
            apos15 = "Here are fifteen apostrophes: '''''''''''''''"
            str = ''''That,' she said, 'is still pointless.''''
            """#)
        #expect(values["winpath"] == .string(#"C:\Users\nodejs\templates"#))
        #expect(values["winpath2"] == .string(#"\\ServerX\admin$\system32\"#))
        #expect(values["quoted"] == .string(#"Tom "Dubs" Preston-Werner"#))
        #expect(values["regex"] == .string(#"<\i\c*\s*>"#))
        #expect(values["regex2"] == .string(#"I [dw]on't need \d{2} apples"#))
        #expect(values["lines"] == .string("The first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n"))
        #expect(values["quot15"] == .string("Here are fifteen quotation marks: " + String(repeating: "\"", count: 15)))
        #expect(values["apos15"] == .string("Here are fifteen apostrophes: " + String(repeating: "'", count: 15)))
        #expect(values["str"] == .string("'That,' she said, 'is still pointless.'"))
    }

    @Test("integers: signs, underscores, hex, octal, binary")
    func integers() throws {
        let values = try Self.read(
            """
            int1 = +99
            int2 = 42
            int3 = 0
            int4 = -17
            int5 = 1_000
            int6 = 5_349_221
            int7 = 53_49_221
            int8 = 1_2_3_4_5
            hex1 = 0xDEADBEEF
            hex2 = 0xdeadbeef
            hex3 = 0xdead_beef
            oct1 = 0o01234567
            oct2 = 0o755
            bin1 = 0b11010110
            zero = -0
            """)
        let expected: [String: Int] = [
            "int1": 99, "int2": 42, "int3": 0, "int4": -17, "int5": 1000, "int6": 5_349_221, "int7": 5_349_221, "int8": 12345,
            "hex1": 0xDEAD_BEEF, "hex2": 0xDEAD_BEEF, "hex3": 0xDEAD_BEEF, "oct1": 0o01234567, "oct2": 0o755, "bin1": 0b11010110, "zero": 0,
        ]
        #expect(values == expected.mapValues(ConfigValue.integer))
    }

    @Test("floats: fractions, exponents, underscores, inf and nan; booleans")
    func floatsAndBooleans() throws {
        let values = try Self.read(
            """
            flt1 = +1.0
            flt2 = 3.1415
            flt3 = -0.01
            flt4 = 5e+22
            flt5 = 1e06
            flt6 = -2E-2
            flt7 = 6.626e-34
            flt8 = 224_617.445_991_228
            sf1 = inf
            sf2 = +inf
            sf3 = -inf
            sf4 = nan
            sf5 = +nan
            sf6 = -nan
            bool1 = true
            bool2 = false
            """)
        let expected: [String: Double] = [
            "flt1": 1.0, "flt2": 3.1415, "flt3": -0.01, "flt4": 5e+22, "flt5": 1e06, "flt6": -2E-2, "flt7": 6.626e-34, "flt8": 224_617.445_991_228,
            "sf1": .infinity, "sf2": .infinity, "sf3": -.infinity,
        ]
        for (key, value) in expected { #expect(values[key] == .float(value), "\(key)") }
        for key in ["sf4", "sf5", "sf6"] {
            guard case .float(let value) = values[key] else {
                Issue.record("\(key): \(String(describing: values[key]))")
                continue
            }
            #expect(value.isNaN, "\(key)")
        }
        #expect(values["bool1"] == .bool(true) && values["bool2"] == .bool(false))
    }

    @Test("arrays: mixed, nested, over several lines with comments and a trailing comma")
    func arrays() throws {
        let values = try Self.read(
            """
            integers = [ 1, 2, 3 ]
            colors = [ "red", "yellow", "green" ]
            nested_arrays_of_ints = [ [ 1, 2 ], [3, 4, 5] ]
            nested_mixed_array = [ [ 1, 2 ], ["a", "b", "c"] ]
            string_array = [ "all", 'strings', \"\"\"are the same\"\"\", '''type''' ]
            numbers = [ 0.1, 0.2, 0.5, 1, 2, 5 ]
            contributors = [
              "Foo Bar <foo@example.com>",
              { name = "Baz Qux", email = "bazqux@example.com", url = "https://example.com/bazqux" }
            ]
            integers2 = [
              1, 2, 3
            ]
            integers3 = [
              1,
              2, # this is ok
            ]
            empty = [ ]
            after = "x"
            """)
        #expect(values["integers"] == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(values["nested_mixed_array"] == .array([.array([.integer(1), .integer(2)]), .array([.string("a"), .string("b"), .string("c")])]))
        #expect(values["string_array"] == .array(["all", "strings", "are the same", "type"].map(ConfigValue.string)))
        #expect(values["numbers"] == .array([.float(0.1), .float(0.2), .float(0.5), .integer(1), .integer(2), .integer(5)]))
        #expect(
            values["contributors"]
                == .array([
                    .string("Foo Bar <foo@example.com>"),
                    .table(["name": .string("Baz Qux"), "email": .string("bazqux@example.com"), "url": .string("https://example.com/bazqux")]),
                ]))
        #expect(values["integers2"] == values["integers"])
        #expect(values["integers3"] == .array([.integer(1), .integer(2)]))
        #expect(values["empty"] == .array([]))
        #expect(try TOMLReader.read("a = [\n1,\n2,\n]\nafter = 1\n").last?.line == 5)
    }

    @Test("inline tables, dotted keys inside them")
    func inlineTables() throws {
        let values = try Self.read(
            """
            name = { first = "Tom", last = "Preston-Werner" }
            point = { x = 1, y = 2 }
            animal = { type.name = "pug" }
            empty = {}
            """)
        #expect(values["name"] == .table(["first": .string("Tom"), "last": .string("Preston-Werner")]))
        #expect(values["point"] == .table(["x": .integer(1), "y": .integer(2)]))
        #expect(values["animal"] == .table(["type": .table(["name": .string("pug")])]))
        #expect(values["empty"] == .table([:]))
    }

    @Test(
        "invalid TOML is refused with its line and reason",
        arguments: [
            ("a = 1\nb = \"x\" y\n", 2, "unexpected text after the value of b"),
            ("a = 1\nname = \"Tom\"\nname = \"Pradyun\"\n", 3, "name is set twice"),
            ("spelling = \"favorite\"\n\"spelling\" = \"favourite\"\n", 2, "spelling is set twice"),
            ("fruit.apple = 1\nfruit.apple.smooth = true\n", 2, "fruit.apple is both a value and a table"),
            ("[fruit]\napple = 1\n[fruit]\norange = 2\n", 3, "table [fruit] is defined twice"),
            ("key = # INVALID\n", 1, "missing value"),
            ("first = \"Tom\" last = \"Preston-Werner\"\n", 1, "unexpected text after the value of first"),
            ("= \"no key name\"\n", 1, "invalid key"),
            ("\"\"\"key\"\"\" = 1\n", 1, "a key cannot be a multi-line string"),
            ("x = \"a\nb\"\n", 1, "unterminated string"),
            ("x = 'a\nb'\n", 1, "unterminated string"),
            ("\n\nx = \"\"\"\nab\n", 5, "unterminated multi-line string"),
            ("x = \"bad \\q escape\"\n", 1, "unsupported escape \\q"),
            ("x = \"\\u12\"\n", 1, "\\u needs 4 hex digits"),
            ("x = \"\\uD800\"\n", 1, "\\uD800 is not a Unicode scalar value"),
            ("x = \"tab\u{1}\"\n", 1, "a control character in a string must be escaped"),
            ("a = [\n  1,\n  2 3\n]\n", 3, "expected , or ] in array"),
            ("a = [\n  1,\n", 3, "unterminated array"),
            ("type = { name = \"Nail\" }\ntype.edible = false\n", 2, "type is both a value and a table"),
            ("p = { x = 1,\n y = 2 }\n", 1, "an inline table must end on the line it starts on"),
            ("p = { x = 1, }\n", 1, "an inline table takes no trailing comma"),
            ("p = { x = 1, x = 2 }\n", 1, "x is set twice in an inline table"),
            ("n = 012\n", 1, "012: leading zeros are not allowed"),
            ("n = 1__2\n", 1, "cannot read value 1__2"),
            ("n = _1\n", 1, "cannot read value _1"),
            ("n = 1.\n", 1, "cannot read value 1."),
            ("n = .7\n", 1, "cannot read value .7"),
            ("n = 3.e+20\n", 1, "cannot read value 3.e+20"),
            ("n = -0x1\n", 1, "takes no sign"),
            ("n = 99999999999999999999\n", 1, "out of range for an integer"),
            ("d = 1979-05-27T07:32:00Z\n", 1, "dates and times are not supported"),
            ("d = 07:32:00\n", 1, "dates and times are not supported"),
            ("[[products]]\nname = \"Hammer\"\n", 1, "arrays of tables ([[…]]) are not supported"),
            ("[a\nb = 1\n", 1, "expected ] after the table name"),
            ("x = /tmp/x\n", 1, "cannot read value /tmp/x (strings need quotes)"),
            ("a = 1\r\nb = 2\rc = 3\n", 2, "a carriage return without a line feed"),
        ])
    func refusals(text: String, line: Int, reason: String) {
        let failure = Self.failure(text)
        #expect(failure?.line == line, "\(String(describing: failure))")
        #expect(failure?.reason.contains(reason) == true, "\(String(describing: failure))")
    }

    @Test("CRLF line ends, comments everywhere, the file's end without a newline")
    func lineEnds() throws {
        let entries = try TOMLReader.read("# c\r\n[server] # c\r\nthreads = 4 # c\r\n\r\n[limits]\r\nmax_in_flight = 8")
        #expect(
            entries == [
                TOMLReader.Entry(key: "server.threads", value: .integer(4), line: 3),
                TOMLReader.Entry(key: "limits.max_in_flight", value: .integer(8), line: 6),
            ])
    }
}
