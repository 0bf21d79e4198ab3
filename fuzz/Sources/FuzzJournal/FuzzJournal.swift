// libFuzzer target: the journal fields of a log line (JournalFields) and the buffer they are sent
// from (JournalEntry), with values a client chooses (NUL, newlines, invalid UTF-8, long runs).
// Checks: no control byte in any field, every iovec covers exactly its field's bytes (ASan sees a
// read past the buffer), a field name is valid for journald.
import Journal
import Logging

#if !FUZZING
import FuzzSupport
#endif

func fuzzJournal(_ input: UnsafeRawBufferPointer) {
    // The input is "key\u{1}value\u{1}message": what a client's hello, request id or method name
    // becomes in the metadata and the message.
    let parts = input.split(separator: 1, maxSplits: 2, omittingEmptySubsequences: false)
        .map { String(decoding: UnsafeRawBufferPointer(rebasing: $0), as: UTF8.self) }
    let key = parts.first ?? ""
    let value = parts.count > 1 ? parts[1] : ""
    let message = parts.count > 2 ? parts[2] : ""
    var metadata: Logger.Metadata = ["request": "\(value)"]
    metadata[key] = "\(value)"
    let fields = JournalFields.make(
        level: .info, message: message, metadata: metadata, identifier: "agentd",
        file: "fuzz", function: "fuzzJournal", line: 1)
    for field in fields {
        precondition(!field.utf8.contains { $0 < 0x20 || $0 == 0x7F }, "a control byte in a field")
        let name = field.utf8.prefix { $0 != UInt8(ascii: "=") }
        precondition(!name.isEmpty && name.count < field.utf8.count, "a field without a name")
        precondition(name.allSatisfy { (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }, "an invalid field name")
        precondition(name.first != 0x5F, "a field name starting with _")
    }
    let entry = JournalEntry(fields: fields)
    // What sd_journal_sendv does with the vectors: reads each one's whole length (here compared
    // with the field; under ASan a vector longer than the buffer is a heap overflow).
    entry.withIOVecs { vectors in
        precondition(vectors.count == fields.count, "one vector per field")
        for (vector, field) in zip(vectors, fields) {
            let bytes = UnsafeRawBufferPointer(start: vector.iov_base, count: vector.iov_len)
            precondition(bytes.elementsEqual(field.utf8), "a vector that is not its field")
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzJournal(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
@main
enum Replay {
    static func main() { CorpusReplay.main(fuzzJournal) }
}
#endif
