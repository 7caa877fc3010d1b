int tally_proto_placeholder(void) { return 0; }
