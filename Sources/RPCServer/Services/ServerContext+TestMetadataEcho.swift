import Codec

extension ServerContext {
    /// What gRPC's interop test server does with two request headers, for the services that
    /// imitate it (bench.v1.Echo, grpc.testing.TestService): `x-grpc-test-echo-initial` comes
    /// back as initial metadata, `x-grpc-test-echo-trailing-bin` as trailing metadata.
    func echoTestMetadata() {
        if let echo = metadata["x-grpc-test-echo-initial"] {
            setInitialMetadata(Metadata(["x-grpc-test-echo-initial": echo]))
        }
        if let echo = metadata.binary("x-grpc-test-echo-trailing-bin") {
            var trailing = Metadata()
            trailing.add("x-grpc-test-echo-trailing-bin", binary: echo)
            addTrailingMetadata(trailing)
        }
    }
}
