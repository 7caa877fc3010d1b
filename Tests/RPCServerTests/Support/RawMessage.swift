import Codec
import NIOCore

/// A message whose encoding is its bytes: lets transport tests run without generated types.
struct RawMessage: ProtobufMessage {
    static let protoName = "test.Raw"
    var bytes: [UInt8] = []

    init() {}
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    init(protobuf bytes: UnsafeRawBufferPointer) throws(ProtobufError) {
        self.bytes = Array(bytes)
    }

    func encode(into buffer: inout ByteBuffer) { buffer.writeBytes(bytes) }
    var encodedSize: Int { bytes.count }
}
