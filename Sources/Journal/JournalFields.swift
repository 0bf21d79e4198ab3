import Logging

/// The journal fields of one log line. Kept apart from the sending so that they can be checked
/// where no journal runs (tests, containers) and fuzzed (fuzz/Sources/FuzzJournal).
public enum JournalFields {
    /// Our metadata keys with the field names the journal queries use.
    static let renamed: [String: String] = ["request": "REQUEST_ID", "method": "RPC_METHOD", "duration_us": "DURATION_US"]

    /// `NAME=value` fields. Values are escaped (`escaped(_:)`): a client chooses some of them
    /// (`session.hello`'s client name, request ids, method names) before it has logged in.
    public static func make(
        level: Logger.Level, message: String, metadata: Logger.Metadata, identifier: String,
        file: String, function: String, line: UInt
    ) -> [String] {
        var fields = [
            "MESSAGE=" + escaped(message),
            "PRIORITY=\(priority(level))",
            "SYSLOG_IDENTIFIER=" + escaped(identifier),
            "CODE_FILE=" + escaped(file),
            "CODE_LINE=\(line)",
            "CODE_FUNC=" + escaped(function),
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            fields.append(fieldName(key) + "=" + escaped("\(value)"))
        }
        return fields
    }

    /// syslog priorities: trace and debug are 7 (debug), info 6, notice 5, warning 4, error 3, critical 2.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Journal field names are upper-case ASCII letters, digits and underscores, not starting with `_`.
    public static func fieldName(_ key: String) -> String {
        if let renamed = renamed[key] { return renamed }
        var name = String(
            String.UnicodeScalarView(
                key.unicodeScalars.map { scalar in
                    switch scalar {
                    case "a"..."z": Unicode.Scalar(scalar.value - 32)!
                    case "A"..."Z", "0"..."9": scalar
                    default: "_"
                    }
                }))
        while name.hasPrefix("_") { name.removeFirst() }
        return name.isEmpty ? "FIELD" : name
    }

    /// The value with its control characters (C0, DEL, C1: NUL, newline, escape sequences…) written
    /// as `\n`, `\t`, `\r` or `\u{XX}`, so that no value ends early, spans lines in `journalctl`'s
    /// output, or drives a terminal. Values without any (nearly all) are returned as they are.
    public static func escaped(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: isControl) else { return value }
        var out = String.UnicodeScalarView()
        for scalar in value.unicodeScalars {
            guard isControl(scalar) else {
                out.append(scalar)
                continue
            }
            switch scalar {
            case "\n": out.append(contentsOf: #"\n"#.unicodeScalars)
            case "\t": out.append(contentsOf: #"\t"#.unicodeScalars)
            case "\r": out.append(contentsOf: #"\r"#.unicodeScalars)
            default: out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16))}".unicodeScalars)
            }
        }
        return String(out)
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
