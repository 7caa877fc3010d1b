// Domain: product services and storage engines.
