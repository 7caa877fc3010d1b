-- Analytics rollups: events per type per UTC hour, maintained by the queue workers in the
-- transaction that stores the batch, counting only the events inserted there (after the
-- event_ids dedupe), so every stored event is counted exactly once.
--
-- Hot rows: every worker of every instance adds to the current hour's row of each type, and
-- an upserted row stays locked until its transaction commits. So each writer adds to its own
-- shard of the row (shard 1..EVENT_ROLLUP_SHARDS, from its connection's backend pid), and
-- readers sum the shards. Rollup maintenance folds the shards of past hours into shard 0
-- (written by maintenance alone), so a year's range reads one row per hour and type.
CREATE TABLE event_counts (
    hour   timestamptz NOT NULL,
    type   text        NOT NULL,
    shard  smallint    NOT NULL,
    events bigint      NOT NULL,
    PRIMARY KEY (hour, type, shard)
);

-- The time an event counts at: its client time when that lies within 24 hours of when Tally
-- received it (a phone offline for a while reports when things happened), else its received
-- time (a clock at 0, a year ahead or days late would scatter counts into hours nobody
-- reads, or that retention already dropped). Swift's RollupTime applies the same rule before
-- the insert; recounts and checks over the events table use this function.
CREATE FUNCTION event_rollup_time(client_time timestamptz, received_at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN client_time BETWEEN received_at - interval '24 hours' AND received_at + interval '24 hours'
                THEN client_time ELSE received_at END
$$;

-- The distinct users of one UTC day, exactly, from the events table (the day's HyperLogLog in
-- Redis estimates their number). An event counts on a day within 24 hours of its receipt, so
-- only the partitions of the day and the days around it are read.
CREATE FUNCTION event_day_users(day date) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT user_id FROM events
    WHERE received_at >= (day::timestamp AT TIME ZONE 'UTC') - interval '1 day'
      AND received_at < (day::timestamp AT TIME ZONE 'UTC') + interval '2 days'
      AND event_rollup_time(client_time, received_at) >= day::timestamp AT TIME ZONE 'UTC'
      AND event_rollup_time(client_time, received_at) < (day::timestamp AT TIME ZONE 'UTC') + interval '1 day'
$$;

-- How many: `SELECT event_active_users('2026-12-04')`.
CREATE FUNCTION event_active_users(day date) RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT count(*) FROM event_day_users(day) $$;
