-- Analytics and game events, range-partitioned by month on received_at (server time).
-- Partitions are created ahead and dropped after EVENT_RETENTION_DAYS by EventPartitions,
-- named events_yYYYYmMM; there is no default partition, so maintenance runs at start.
--
-- Dedupe: a unique key on a partitioned table must include the partition key, and the same
-- client event_id can arrive twice with two different received_at values. So uniqueness lives
-- in event_ids, a plain table keyed by event_id alone: writers insert there first
-- (INSERT ... ON CONFLICT DO NOTHING RETURNING event_id) and write to events only the ids that
-- came back, in the same transaction, so a duplicate is stored once. event_ids rows older than
-- the retention are pruned with the partitions (the dedupe window equals the retention).
CREATE TABLE events (
    event_id         text        NOT NULL,
    type             text        NOT NULL,
    user_id          text        NOT NULL,
    client_time      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    score            bigint,
    game_mode        text,
    tournament_id    text,
    duration_ms      bigint,
    level            integer,
    attributes       jsonb       NOT NULL DEFAULT '{}',
    processed_at     timestamptz,
    processing_error text
) PARTITION BY RANGE (received_at);

CREATE INDEX events_user_received ON events (user_id, received_at);
CREATE INDEX events_type_received ON events (type, received_at);
-- Work queue of the aggregator: only unprocessed rows are indexed.
CREATE INDEX events_unprocessed ON events (received_at) WHERE processed_at IS NULL;

CREATE TABLE event_ids (
    event_id    text        PRIMARY KEY,
    received_at timestamptz NOT NULL
);
CREATE INDEX event_ids_received ON event_ids (received_at);
