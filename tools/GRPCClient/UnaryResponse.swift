public import Codec

/// A unary call's response message with the metadata that came around it.
public struct UnaryResponse<Res: Sendable>: Sendable {
    public var message: Res
    public var initialMetadata: Metadata
    public var trailers: Metadata

    public init(message: Res, initialMetadata: Metadata, trailers: Metadata) {
        self.message = message
        self.initialMetadata = initialMetadata
        self.trailers = trailers
    }
}
