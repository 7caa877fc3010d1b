-- Quiz answers: one row per user and question (a later answer replaces the earlier one).
CREATE TABLE quiz_answers (
    quiz_id          text        NOT NULL,
    user_id          text        NOT NULL,
    question_id      text        NOT NULL,
    answer           text        NOT NULL,
    correct          boolean     NOT NULL,
    points           integer     NOT NULL,
    response_time_ms integer     NOT NULL,
    answered_at      timestamptz NOT NULL,
    PRIMARY KEY (quiz_id, user_id, question_id)
);

-- Each user's score in a quiz, maintained in the transaction that saves their answers (the
-- truth behind the quiz:<id> board, whose leaderboard_scores row is written alongside).
CREATE TABLE quiz_scores (
    quiz_id       text        NOT NULL,
    user_id       text        NOT NULL,
    points        bigint      NOT NULL,
    correct       integer     NOT NULL,
    total_time_ms bigint      NOT NULL,
    answers       integer     NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (quiz_id, user_id)
);

-- A reward distribution ran: its tiers (canonical text, to refuse the same id with other
-- tiers) and when. Replaying the id returns its rewards.
CREATE TABLE quiz_distributions (
    quiz_id         text        NOT NULL,
    distribution_id text        NOT NULL,
    tiers           text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (quiz_id, distribution_id)
);

-- The rewards ledger, committed with its distribution. A user gets at most one reward per
-- quiz from tiers that are not `repeatable` (the partial unique index), across distributions.
CREATE TABLE quiz_rewards (
    quiz_id         text        NOT NULL,
    distribution_id text        NOT NULL,
    user_id         text        NOT NULL,
    rank            bigint      NOT NULL,
    reward          text        NOT NULL,
    repeatable      boolean     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (quiz_id, distribution_id, user_id),
    FOREIGN KEY (quiz_id, distribution_id) REFERENCES quiz_distributions (quiz_id, distribution_id)
);
CREATE UNIQUE INDEX quiz_rewards_once ON quiz_rewards (quiz_id, user_id) WHERE NOT repeatable;
