internal import CNGHTTP2

/// Creates nghttp2 client sessions wired to the callbacks in `ClientConnection+Callbacks`.
///
/// Callbacks and options are built once per process and shared: nghttp2 copies them into
/// each session. The session itself is owned (and deleted) by its `ClientConnection`.
enum ClientSession {
    private struct Shared: @unchecked Sendable {  // immutable after creation
        let callbacks: OpaquePointer
        let options: OpaquePointer
    }

    private static let shared: Shared = {
        var callbacks: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&callbacks) == 0, "nghttp2_session_callbacks_new failed")
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, clientOnBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, clientOnHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, clientOnFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, clientOnDataChunkRecv)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, clientOnStreamClose)
        nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks, clientOnFrameNotSend)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, clientOnFrameSend)

        var options: OpaquePointer?
        precondition(nghttp2_option_new(&options) == 0, "nghttp2_option_new failed")
        // Window credit is returned as the application reads messages, not when bytes arrive.
        nghttp2_option_set_no_auto_window_update(options, 1)
        return Shared(callbacks: callbacks!, options: options!)
    }()

    static func makeClient(userData: UnsafeMutableRawPointer) -> OpaquePointer {
        var session: OpaquePointer?
        let result = nghttp2_session_client_new2(&session, shared.callbacks, userData, shared.options)
        precondition(result == 0 && session != nil, "nghttp2_session_client_new2 failed: \(result)")
        return session!
    }
}
