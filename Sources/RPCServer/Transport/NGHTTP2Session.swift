internal import CNGHTTP2

/// Creates nghttp2 server sessions wired to the callbacks in `ServerConnection+Callbacks`.
///
/// Callbacks and options are built once per process and shared: nghttp2 copies them into
/// each session. The session itself is owned (and deleted) by its `ServerConnection`.
enum NGHTTP2Session {
    /// Reused by every session; nghttp2 reads but never mutates them after `*_new`.
    private struct Shared: @unchecked Sendable {  // immutable after creation
        let callbacks: OpaquePointer
        let options: OpaquePointer
    }

    private static let shared: Shared = {
        var callbacks: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&callbacks) == 0, "nghttp2_session_callbacks_new failed")
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunkRecv)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)

        var options: OpaquePointer?
        precondition(nghttp2_option_new(&options) == 0, "nghttp2_option_new failed")
        // Window credit is returned as handlers consume messages, not when bytes arrive.
        nghttp2_option_set_no_auto_window_update(options, 1)
        return Shared(callbacks: callbacks!, options: options!)
    }()

    static func makeServer(userData: UnsafeMutableRawPointer) -> OpaquePointer {
        var session: OpaquePointer?
        let result = nghttp2_session_server_new2(&session, shared.callbacks, userData, shared.options)
        precondition(result == 0 && session != nil, "nghttp2_session_server_new2 failed: \(result)")
        return session!
    }
}
