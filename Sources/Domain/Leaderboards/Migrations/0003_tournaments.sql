CREATE TABLE tournaments (
    id               text        PRIMARY KEY,
    name             text        NOT NULL,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    max_participants integer CHECK (max_participants IS NULL OR max_participants > 0),
    join_required    boolean     NOT NULL DEFAULT false,
    CHECK (ends_at > starts_at)
);

CREATE TABLE tournament_participants (
    tournament_id text        NOT NULL REFERENCES tournaments (id) ON DELETE CASCADE,
    user_id       text        NOT NULL,
    joined_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tournament_id, user_id)
);
