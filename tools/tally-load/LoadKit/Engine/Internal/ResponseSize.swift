import Codec
import NIOCore

/// A response counted, not decoded: the load generator measures the server, and a copy or a
/// decode per response would spend the client's CPU on nothing the report shows.
struct ResponseSize: ProtobufMessage {
    static let protoName = "tally.load.ResponseSize"
    var count: Int

    init() {
        self.count = 0
    }

    init(protobuf bytes: UnsafeRawBufferPointer) throws(ProtobufError) {
        self.count = bytes.count
    }

    func encode(into buffer: inout ByteBuffer) {}

    var encodedSize: Int { 0 }
}
