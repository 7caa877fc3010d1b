import NIOCore
import NIOPosix

/// One TCP connection to Redis: a NIO channel handler that writes commands (formatted by
/// hiredis) and hands replies (parsed by hiredis' reader) to their waiting handlers in order.
///
/// Loop-bound: every method runs on the channel's event loop. All commands issued during one
/// loop tick go out in one write and flush (pipelining without asking the caller to batch).
/// A command without a reply within the timeout resets the connection: later replies could no
/// longer be matched to their commands.
// @unchecked: loop-bound; every method runs on its channel's event loop (NIO handler rules).
final class RedisConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var handler: RedisReplyHandler
        var deadline: NIODeadline
    }

    private let reader = RESPReader()
    private let commandTimeout: TimeAmount
    private var pending = CircularBuffer<Pending>(initialCapacity: 64)
    private var context: ChannelHandlerContext?
    private var outbound = ByteBuffer()
    private var flushScheduled = false
    private var timeoutCheck: Scheduled<Void>?
    private var closed = false

    /// Receives pushed messages (pub/sub); when set, no reply is matched to a command.
    var onPush: ((RESPValue) -> Void)?
    /// Called once when the connection is gone, after failing every waiting command.
    var onClose: (() -> Void)?

    init(commandTimeout: Duration) {
        self.commandTimeout = TimeAmount(commandTimeout)
    }

    /// Starts a TCP connection to Redis on `loop` with a new handler; the future completes
    /// once connected (before any handshake).
    static func open(_ configuration: RedisConfiguration, on loop: any EventLoop) -> (RedisConnection, EventLoopFuture<any Channel>) {
        let connection = RedisConnection(commandTimeout: configuration.commandTimeout)
        let channel = ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
            .connect(host: configuration.host, port: configuration.port)
        return (connection, channel)
    }

    var isOpen: Bool { context != nil && !closed }
    var waitingReplies: Int { pending.count }

    // MARK: sending

    func send(_ command: RedisCommand, handler: RedisReplyHandler) {
        guard let context, !closed else {
            handler.fail(RedisError(.unavailable, "connection to Redis is closed"))
            return
        }
        command.write(to: &outbound)
        pending.append(Pending(handler: handler, deadline: .now() + commandTimeout))
        scheduleFlush(context)
        if timeoutCheck == nil { armTimeoutCheck(context) }
    }

    /// Sends a command whose answers arrive as pushes (SUBSCRIBE and friends).
    func sendWithoutReply(_ command: RedisCommand) {
        guard let context, !closed else { return }
        command.write(to: &outbound)
        scheduleFlush(context)
    }

    func close() {
        context?.close(promise: nil)
    }

    private func scheduleFlush(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { self.flush() }
    }

    private func flush() {
        flushScheduled = false
        guard let context, !closed, outbound.readableBytes > 0 else { return }
        let bytes = outbound
        outbound = context.channel.allocator.buffer(capacity: 512)
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    }

    // MARK: command timeout

    private func armTimeoutCheck(_ context: ChannelHandlerContext) {
        guard let oldest = pending.first else { return }
        timeoutCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: oldest.deadline) {
            self.timeoutCheck = nil
            self.checkTimeouts()
        }
    }

    private func checkTimeouts() {
        guard let context, let oldest = pending.first else { return }
        if oldest.deadline <= .now() {
            failAll(RedisError(.timeout, "no reply from Redis within \(commandTimeout.nanoseconds / 1_000_000) ms"))
            context.close(promise: nil)
        } else {
            armTimeoutCheck(context)
        }
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        outbound = context.channel.allocator.buffer(capacity: 512)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        shutDown(RedisError(.unavailable, "connection to Redis closed"))
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.feed(unwrapInboundIn(data))
        do {
            while try reader.withNextReply({ reply in
                if let onPush {
                    onPush(reply.value)
                } else if let waiting = pending.popFirst() {
                    waiting.handler.deliver(reply)
                } else {
                    throw RESPReader.ProtocolError(description: "a reply from Redis matched no command")
                }
            }) {}
        } catch {
            failAll(RedisError(.unavailable, "\(error)"))
            context.close(promise: nil)
        }
        if pending.isEmpty, let timeoutCheck {
            timeoutCheck.cancel()
            self.timeoutCheck = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        shutDown(RedisError(.unavailable, "connection to Redis lost"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(RedisError(.unavailable, "connection to Redis failed: \(error)"))
        context.close(promise: nil)
    }

    private func shutDown(_ error: RedisError) {
        guard !closed else { return }
        closed = true
        timeoutCheck?.cancel()
        timeoutCheck = nil
        failAll(error)
        let onClose = self.onClose
        self.onClose = nil
        onClose?()
    }

    private func failAll(_ error: RedisError) {
        while let waiting = pending.popFirst() {
            waiting.handler.fail(error)
        }
    }
}
