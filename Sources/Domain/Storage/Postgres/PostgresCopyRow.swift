/// The row being written by a `copyFrom` encoder: append each column's value in order.
public struct PostgresCopyRow {
    var bytes: [UInt8] = []
    let names: [String]
    /// The columns' types when the COPY is binary; nil for text.
    let types: [PostgresColumnType]?
    private var fieldsInRow = 0
    /// A value with no binary form for its column, reported by `endRow` (`append` cannot throw).
    private var mismatch: PostgresError?

    init(columns: [String], types: [PostgresColumnType]?) {
        self.names = columns
        self.types = types
    }

    /// Appends the next field: in binary form for a binary COPY, else escaped for COPY's text
    /// format (NULL as `\N`).
    public mutating func append<Value: PostgresEncodable>(_ value: Value) {
        if let types {
            appendBinary(value, types)
            return
        }
        if fieldsInRow > 0 { bytes.append(UInt8(ascii: "\t")) }
        fieldsInRow += 1
        if value.isPostgresNull {
            bytes.append(UInt8(ascii: "\\"))
            bytes.append(UInt8(ascii: "N"))
            return
        }
        let start = bytes.count
        value.appendPostgresText(to: &bytes)
        // Escape in place only when needed: most fields have nothing to escape.
        var needsEscape = false
        for index in start..<bytes.count where Self.needsEscape(bytes[index]) {
            needsEscape = true
            break
        }
        guard needsEscape else { return }
        let raw = Array(bytes[start...])
        bytes.removeSubrange(start...)
        for byte in raw {
            switch byte {
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            default: bytes.append(byte)
            }
        }
    }

    /// A field: its length (-1 for NULL) and its bytes; a tuple starts with its field count.
    private mutating func appendBinary<Value: PostgresEncodable>(_ value: Value, _ types: [PostgresColumnType]) {
        if fieldsInRow == 0 { PostgresBinary.append(Int16(truncatingIfNeeded: types.count), to: &bytes) }
        let column = fieldsInRow
        fieldsInRow += 1
        guard column < types.count else { return }  // endRow reports the count
        if value.isPostgresNull {
            PostgresBinary.append(Int32(-1), to: &bytes)
            return
        }
        let lengthAt = bytes.count
        PostgresBinary.append(Int32(0), to: &bytes)
        if value.appendPostgresBinary(to: &bytes, as: types[column]) {
            let length = Int32(truncatingIfNeeded: bytes.count - lengthAt - 4)
            bytes.withUnsafeMutableBytes { $0.storeBytes(of: length.bigEndian, toByteOffset: lengthAt, as: Int32.self) }
        } else {
            bytes.removeSubrange(lengthAt...)
            mismatch = mismatch ?? PostgresError(
                .misuse, "COPY column \(names[column]) is \(types[column]): a \(Value.self) has no binary form for it (or does not fit)")
        }
    }

    mutating func endRow() throws(PostgresError) {
        if let mismatch { throw mismatch }
        guard fieldsInRow == names.count else {
            throw PostgresError(.misuse, "COPY row has \(fieldsInRow) fields, the statement names \(names.count) columns")
        }
        if types == nil { bytes.append(UInt8(ascii: "\n")) }
        fieldsInRow = 0
    }

    /// Binary COPY's signature, flags and header extension length.
    mutating func appendHeader() {
        guard types != nil else { return }
        bytes.append(contentsOf: [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00])  // "PGCOPY\n\377\r\n\0"
        PostgresBinary.append(Int32(0), to: &bytes)
        PostgresBinary.append(Int32(0), to: &bytes)
    }

    /// Binary COPY's end marker.
    mutating func appendTrailer() {
        guard types != nil else { return }
        PostgresBinary.append(Int16(-1), to: &bytes)
    }

    @inline(__always)
    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
    }

    /// `"name"` with embedded quotes doubled.
    static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }
}
