-- Core metadata: labs, users, credentials, environments, jobs, audit trail.
-- Entities are stored as JSON documents (`doc`) beside the columns that are
-- filtered, sorted or constrained, so the SQLite and MongoDB adapters keep
-- the same shape.

CREATE TABLE labs (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc  TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    doc           TEXT NOT NULL
);

CREATE TABLE memberships (
    lab_id  TEXT NOT NULL REFERENCES labs(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    role    TEXT NOT NULL,
    PRIMARY KEY (lab_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id),
    expires_at TEXT NOT NULL,
    doc        TEXT NOT NULL
);

CREATE TABLE environments (
    id             TEXT PRIMARY KEY,
    lab_id         TEXT NOT NULL REFERENCES labs(id),
    name           TEXT NOT NULL,
    researcher_id  TEXT NOT NULL,
    status         TEXT NOT NULL,
    jupyter_status TEXT NOT NULL,
    drift_status   TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    version        INTEGER NOT NULL,
    doc            TEXT NOT NULL,
    UNIQUE (lab_id, name)
);
CREATE INDEX environments_lab ON environments(lab_id, created_at, id);

CREATE TABLE jobs (
    id     TEXT PRIMARY KEY,
    lab_id TEXT NOT NULL,
    status TEXT NOT NULL,
    doc    TEXT NOT NULL
);
CREATE INDEX jobs_status ON jobs(status);

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    time        TEXT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT NOT NULL,
    lab_id      TEXT,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_lab ON audit(lab_id, seq);

-- The newest entry's sequence and hash, updated in the same transaction as
-- every append, so deleting the tail of the trail is detectable.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE handled_events (
    consumer   TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
