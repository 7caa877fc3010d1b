// GRPCClient
