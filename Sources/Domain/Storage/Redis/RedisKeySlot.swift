/// The Redis Cluster hash slot of a key: CRC16 (XMODEM) of the key, or of its hash tag, mod 16384.
///
/// A hash tag is the part between the first `{` and the next `}` when it is not empty: keys
/// sharing a tag share a slot, so a script or pipeline over them runs on one node.
public enum RedisKeySlot {
    public static let count = 16_384

    public static func of(_ key: String) -> Int {
        of(Array(key.utf8)[...])
    }

    public static func of(_ key: ArraySlice<UInt8>) -> Int {
        Int(crc16(hashed(key)) & UInt16(count - 1))
    }

    /// The tag when the key has a non-empty one, else the whole key (Redis' rule).
    static func hashed(_ key: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        else { return key }
        return key[(open + 1)..<close]
    }

    /// CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), the variant Redis Cluster uses.
    static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int((crc >> 8) ^ UInt16(byte))]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
