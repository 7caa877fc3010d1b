-- Top-ups: Postgres is the truth, Redis's queue only speeds processing up. A top-up and its
-- idempotency key commit in one statement before the partner gets an answer.
CREATE TABLE topups (
    id                 text        PRIMARY KEY,
    customer_id        text        NOT NULL,
    idempotency_key    text        NOT NULL,
    phone_number       text        NOT NULL,
    amount_minor_units bigint      NOT NULL,
    currency           text        NOT NULL,
    carrier            text        NOT NULL DEFAULT '',
    state              text        NOT NULL DEFAULT 'PENDING'
                                   CHECK (state IN ('PENDING', 'PROCESSING', 'SUCCEEDED', 'FAILED')),
    failure_reason     text        NOT NULL DEFAULT '',
    provider_reference text        NOT NULL DEFAULT '',
    -- Provider calls started (a charge counts from the moment a worker claims the top-up, so a
    -- worker killed mid-call leaves a count behind and the next one asks the provider first).
    attempts           integer     NOT NULL DEFAULT 0,
    -- The worker holding the top-up and until when: a second worker (a redelivered job) cannot
    -- claim it meanwhile, and a worker's late result after losing its lease is not applied.
    lease_owner        text,
    lease_until        timestamptz,
    -- Not to be called before this (retry backoff); the sweeper ignores it until then.
    next_attempt_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- ListTopups' keyset pages (newest first) and GetTopup's customer check.
CREATE INDEX topups_customer_created ON topups (customer_id, created_at DESC, id DESC);
-- The sweeper's scan: only unfinished top-ups are indexed.
CREATE INDEX topups_unfinished ON topups (next_attempt_at) WHERE state IN ('PENDING', 'PROCESSING');
-- Today's totals over every customer.
CREATE INDEX topups_created ON topups (created_at);

-- Idempotency keys, scoped to the customer, kept TOPUP_IDEMPOTENCY_RETENTION_H and then pruned
-- (the top-up itself stays). Its primary key is what makes a concurrent retry wait for the
-- first request's commit and then find its top-up.
CREATE TABLE topup_idempotency_keys (
    customer_id     text        NOT NULL,
    idempotency_key text        NOT NULL,
    topup_id        text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (customer_id, idempotency_key)
);
CREATE INDEX topup_idempotency_keys_created ON topup_idempotency_keys (created_at);

-- Every provider call, for audit: charges and status queries, their outcome and latency.
CREATE TABLE topup_attempts (
    id          bigserial        PRIMARY KEY,
    topup_id    text             NOT NULL,
    attempt     integer          NOT NULL,
    -- 'charge' or 'status'.
    call        text             NOT NULL,
    outcome     text             NOT NULL,
    detail      text             NOT NULL DEFAULT '',
    latency_ms  double precision NOT NULL,
    worker      text             NOT NULL,
    started_at  timestamptz      NOT NULL
);
CREATE INDEX topup_attempts_topup ON topup_attempts (topup_id);
CREATE INDEX topup_attempts_started ON topup_attempts (started_at);
