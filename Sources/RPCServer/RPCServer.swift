// RPCServer: HTTP/2 transport and gRPC dispatch.
