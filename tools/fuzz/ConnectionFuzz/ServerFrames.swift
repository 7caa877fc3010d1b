import NIOCore

/// What a server wrote on one connection, checked as HTTP/2 (RFC 9113) frames a server may
/// send: whole frames, SETTINGS first, each type on the streams and with the lengths the RFC
/// allows, no new response after a GOAWAY beyond its last stream, and a GOAWAY before the
/// server closes the connection.
struct ServerFrames {
    private var bytes: [UInt8] = []

    var byteCount: Int { bytes.count }

    mutating func append(_ buffer: ByteBuffer) {
        bytes += buffer.readableBytesView
    }

    func verify(closedByServer: Bool) {
        var offset = 0
        var index = 0
        var goAwayLastStream: UInt32?
        while offset < bytes.count {
            precondition(bytes.count - offset >= 9, "frame \(index): a partial frame header at the end of the output")
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            let type = bytes[offset + 3]
            let flags = bytes[offset + 4]
            let streamWord = bytes[offset + 5..<offset + 9].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let stream = streamWord & 0x7fff_ffff
            precondition(streamWord == stream, "frame \(index): the reserved bit is set")
            precondition(offset + 9 + length <= bytes.count, "frame \(index): \(length) bytes announced, fewer written")
            if index == 0 { precondition(type == 0x4 && flags & 0x1 == 0, "the server's first frame is not its SETTINGS") }
            switch type {
            case 0x0, 0x1, 0x9:  // DATA, HEADERS, CONTINUATION: on a client-opened stream
                precondition(stream % 2 == 1, "frame \(index): type \(type) on stream \(stream)")
                if type == 0x1, let last = goAwayLastStream {
                    precondition(stream <= last, "frame \(index): HEADERS on stream \(stream) after GOAWAY naming \(last)")
                }
            case 0x3:  // RST_STREAM
                precondition(stream != 0 && length == 4, "frame \(index): RST_STREAM of \(length) bytes on stream \(stream)")
            case 0x4:  // SETTINGS
                precondition(stream == 0 && length % 6 == 0, "frame \(index): SETTINGS of \(length) bytes on stream \(stream)")
                precondition(flags & 0x1 == 0 || length == 0, "frame \(index): a SETTINGS ACK with a payload")
            case 0x6:  // PING
                precondition(stream == 0 && length == 8, "frame \(index): PING of \(length) bytes on stream \(stream)")
            case 0x7:  // GOAWAY
                precondition(stream == 0 && length >= 8, "frame \(index): GOAWAY of \(length) bytes on stream \(stream)")
                let last = bytes[offset + 9..<offset + 13].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7fff_ffff
                if let previous = goAwayLastStream { precondition(last <= previous, "frame \(index): a later GOAWAY names a higher stream") }
                goAwayLastStream = last
            case 0x8:  // WINDOW_UPDATE
                precondition(length == 4, "frame \(index): WINDOW_UPDATE of \(length) bytes")
            default:
                preconditionFailure("frame \(index): type \(type) is not one a server sends")
            }
            offset += 9 + length
            index += 1
        }
        precondition(index > 0, "the server wrote nothing")
        if closedByServer { precondition(goAwayLastStream != nil, "the server closed the connection without a GOAWAY") }
    }
}
