internal import CNGHTTP2

/// A list of HTTP/2 header fields laid out for nghttp2: one byte buffer and an `nghttp2_nv`
/// array pointing into it, valid for the duration of a `withNameValues` call (nghttp2 copies
/// them when a frame is submitted).
struct HeaderBlock {
    private var bytes: [UInt8] = []
    private var fields: [(nameStart: Int, nameLength: Int, valueStart: Int, valueLength: Int)] = []

    init() {
        bytes.reserveCapacity(128)
    }

    init(_ pairs: [(String, String)]) {
        self.init()
        for (name, value) in pairs { add(name, value) }
    }

    mutating func add(_ name: String, _ value: String) {
        let nameStart = bytes.count
        bytes.append(contentsOf: name.utf8)
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        fields.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
    }

    var isEmpty: Bool { fields.isEmpty }

    func withNameValues<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        bytes.withUnsafeBufferPointer { raw in
            // nghttp2_nv wants mutable pointers but never writes through them.
            let base = UnsafeMutablePointer(mutating: raw.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var nvs: [nghttp2_nv] = []
            nvs.reserveCapacity(fields.count)
            for field in fields {
                nvs.append(
                    nghttp2_nv(
                        name: base + field.nameStart, value: base + field.valueStart,
                        namelen: field.nameLength, valuelen: field.valueLength,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
            }
            return nvs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}
