import GRDB
import GRDBSQLite
import Synchronization

/// A prepared statement on the sqlite3 C API, for the few writes on the hottest path.
///
/// GRDB's `Statement` costs tens of µs per execution here (argument boxing, row cursors,
/// observation bookkeeping): measured inside a group-commit batch, an append's five statements
/// took ~170 µs through GRDB against ~17 µs for the same SQL in the sqlite3 shell. These run on the
/// same connection, inside the same GRDB transaction, and never change the schema, so GRDB's view
/// of the connection stays true.
///
/// Not thread-safe: a `RawStatement` belongs to one connection and is used only while that
/// connection's queue runs (the writer's, for group-committed writes).
final class RawStatement: @unchecked Sendable {
    private let statement: OpaquePointer
    private let connection: OpaquePointer

    init(_ sql: String, on connection: OpaquePointer) throws {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(connection, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)), sql: sql)
        }
        self.statement = statement
        self.connection = connection
    }

    deinit { sqlite3_finalize(statement) }

    /// Binds `values` (`String`, `Int`, `Int64` or nil) and runs the statement to its end.
    func run(_ values: [(any Sendable)?]) throws {
        _ = try firstRow(values) { _ in () }
    }

    /// Binds `values`, steps once and, when a row came back, reads it with `read` (`text(_:)`,
    /// `integer(_:)`); the statement is reset before this returns, so it holds nothing open.
    func firstRow<T>(_ values: [(any Sendable)?], _ read: (RawStatement) -> T) throws -> T? {
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        bind(values)
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return read(self)
        case SQLITE_DONE: return nil
        case let code:
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)))
        }
    }

    /// Binds `values` and reads every row with `read`; the statement is reset before this returns.
    func rows<T>(_ values: [(any Sendable)?], _ read: (RawStatement) throws -> T) throws -> [T] {
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        bind(values)
        var rows: [T] = []
        while true {
            switch sqlite3_step(statement) {
            case SQLITE_ROW: rows.append(try read(self))
            case SQLITE_DONE: return rows
            case let code:
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)))
            }
        }
    }

    private func bind(_ values: [(any Sendable)?]) {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case nil: sqlite3_bind_null(statement, index)
            case let text as String: sqlite3_bind_text(statement, index, text, -1, SQLITE_TRANSIENT)
            case let number as Int: sqlite3_bind_int64(statement, index, Int64(number))
            case let number as Int64: sqlite3_bind_int64(statement, index, number)
            default: preconditionFailure("RawStatement binds String, Int and Int64 only")
            }
        }
    }

    func text(_ column: Int32) -> String? {
        guard sqlite3_column_type(statement, column) != SQLITE_NULL, let text = sqlite3_column_text(statement, column) else { return nil }
        return String(cString: text)
    }

    func integer(_ column: Int32) -> Int64 {
        sqlite3_column_int64(statement, column)
    }
}

/// `SQLITE_TRANSIENT`: SQLite copies the bound text (the C macro does not import into Swift).
private let SQLITE_TRANSIENT = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

/// Raw statements prepared once per connection and SQL text.
final class RawStatementCache: Sendable {
    // Keyed by connection address and SQL; touched under the mutex only.
    private let statements = Mutex<[RawStatementKey: RawStatement]>([:])

    func statement(_ sql: String, in db: Database) throws -> RawStatement {
        guard let connection = db.sqliteConnection else { throw DatabaseError(message: "connection closed") }
        let key = RawStatementKey(connection: UInt(bitPattern: connection), sql: sql)
        if let cached = statements.withLock({ $0[key] }) { return cached }
        let prepared = try RawStatement(sql, on: connection)
        statements.withLock { $0[key] = prepared }
        return prepared
    }
}

private struct RawStatementKey: Hashable, Sendable {
    var connection: UInt
    var sql: String
}
