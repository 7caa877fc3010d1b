import Storage
// Domain: product services and storage engines.
