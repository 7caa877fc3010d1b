import Storage
/// An event's string attributes as the text of a JSON object, for the `attributes` jsonb column.
///
/// Written by hand because Foundation's JSONSerialization bridges the dictionary and casts each
/// value dynamically: it was a quarter of the events worker's CPU. Escaping follows RFC 8259
/// (quote, backslash and U+0000-U+001F); every other byte is copied, so UTF-8 passes through.
/// jsonb normalises key order, so keys are written in the dictionary's order.
/// U+0000 cannot be stored in jsonb at all: the validator refuses it before an event is queued.
enum AttributesJSON {
    static func object(_ attributes: [String: String]) -> String {
        guard !attributes.isEmpty else { return "{}" }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 + attributes.count * 24)
        bytes.append(UInt8(ascii: "{"))
        for (index, (key, value)) in attributes.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            appendString(key, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            appendString(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func appendString(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(hexDigit(byte >> 4))
                bytes.append(hexDigit(byte & 0xF))
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
