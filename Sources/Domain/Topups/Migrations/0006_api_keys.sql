-- Partners' API keys. Only a SHA-256 of the key is stored (keys are 32 random bytes: a slow
-- password hash buys nothing against brute force there and would cost every call); the key
-- itself is shown once, at creation. A key is valid while not revoked and not past expires_at
-- (set on the old key by a rotation with an overlap).
CREATE TABLE api_keys (
    id           text        PRIMARY KEY,
    customer_id  text        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    key_hash     bytea       NOT NULL UNIQUE,
    prefix       text        NOT NULL,
    -- Top-ups per minute for this key's customer; NULL: the server's TOPUP_RATE_PER_MIN.
    rate_per_min integer     CHECK (rate_per_min > 0),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    expires_at   timestamptz
);
CREATE INDEX api_keys_customer ON api_keys (customer_id);
