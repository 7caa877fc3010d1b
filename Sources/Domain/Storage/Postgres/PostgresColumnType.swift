/// A column's type, as far as binary COPY needs to know it to encode a value for the column.
///
/// Binary COPY sends each value in its type's binary form (a timestamp as 8 bytes, not 32
/// characters the server has to parse), so a value must know what it is being written as.
public struct PostgresColumnType: Hashable, Sendable, CustomStringConvertible {
    /// The type's OID in `pg_type`.
    public let oid: UInt32

    public init(oid: UInt32) { self.oid = oid }

    public static let bool = PostgresColumnType(oid: 16)
    public static let bytea = PostgresColumnType(oid: 17)
    public static let name = PostgresColumnType(oid: 19)
    public static let int8 = PostgresColumnType(oid: 20)
    public static let int2 = PostgresColumnType(oid: 21)
    public static let int4 = PostgresColumnType(oid: 23)
    public static let text = PostgresColumnType(oid: 25)
    public static let json = PostgresColumnType(oid: 114)
    public static let float4 = PostgresColumnType(oid: 700)
    public static let float8 = PostgresColumnType(oid: 701)
    public static let bpchar = PostgresColumnType(oid: 1042)
    public static let varchar = PostgresColumnType(oid: 1043)
    public static let date = PostgresColumnType(oid: 1082)
    public static let timestamp = PostgresColumnType(oid: 1114)
    public static let timestamptz = PostgresColumnType(oid: 1184)
    public static let jsonb = PostgresColumnType(oid: 3802)

    /// The types the built-in values encode in binary; a COPY with a column of any other type
    /// goes in text format.
    static let binaryEncodable: Set<PostgresColumnType> = [
        .bool, .bytea, .name, .int8, .int2, .int4, .text, .json, .float4, .float8, .bpchar, .varchar, .date, .timestamp,
        .timestamptz, .jsonb,
    ]

    /// Whether values for this type are the UTF-8 text as is (jsonb adds a version byte).
    var isTextual: Bool { self == .text || self == .varchar || self == .bpchar || self == .name || self == .json }

    public var description: String {
        switch self {
        case .bool: "boolean"
        case .bytea: "bytea"
        case .name: "name"
        case .int8: "bigint"
        case .int2: "smallint"
        case .int4: "integer"
        case .text: "text"
        case .json: "json"
        case .float4: "real"
        case .float8: "double precision"
        case .bpchar: "character"
        case .varchar: "character varying"
        case .date: "date"
        case .timestamp: "timestamp"
        case .timestamptz: "timestamptz"
        case .jsonb: "jsonb"
        default: "type \(oid)"
        }
    }
}
