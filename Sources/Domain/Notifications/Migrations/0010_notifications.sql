-- Notifications: the outbox. A domain records its messages in its own transaction, so a
-- message exists exactly when what it announces committed; the Redis queue only carries ids
-- to the workers, and the sweeper queues rows whose job never came or was lost.
CREATE TABLE notifications (
    id           text        PRIMARY KEY,
    -- The user the message goes to: the per-destination rate limit and pause key.
    destination  text        NOT NULL,
    kind         text        NOT NULL,
    -- JSON text, opaque to the queue.
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- When a job for it was last queued (dispatch or sweeper); NULL: never.
    queued_at    timestamptz,
    delivered_at timestamptz,
    -- Sends made (requests the sink received or may have received).
    attempts     integer     NOT NULL DEFAULT 0,
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    last_error   text
);
-- The sweeper's scan, oldest mark first (queued, or recorded if never queued); only undelivered
-- rows are indexed.
CREATE INDEX notifications_pending ON notifications ((coalesce(queued_at, created_at))) WHERE status = 'pending';
