// Codec: gRPC framing, status, metadata, protobuf-c bindings, generated messages.
