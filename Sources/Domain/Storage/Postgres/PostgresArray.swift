/// An array parameter (`$1::text[]`, `$2::bigint[]`), for set-based statements such as
/// `unnest($1::text[], $2::bigint[])`: one statement for a whole batch instead of one per row.
///
/// Encoded in the array text form with every element quoted and escaped, so any text is
/// safe: values never become SQL.
public struct PostgresArray<Element: PostgresEncodable>: PostgresEncodable {
    public var elements: [Element]

    public init(_ elements: [Element]) {
        self.elements = elements
    }

    public func appendPostgresText(to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "{"))
        var element: [UInt8] = []
        for (index, value) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            if value.isPostgresNull {
                bytes.append(contentsOf: "NULL".utf8)
                continue
            }
            element.removeAll(keepingCapacity: true)
            value.appendPostgresText(to: &element)
            bytes.append(UInt8(ascii: "\""))
            for byte in element {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
    }
}
