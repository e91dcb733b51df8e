-- Drift records (issue 5): events, per-environment live state, webhook
-- targets, undelivered alerts and agent recommendations. As elsewhere, each
-- record is a JSON document (`doc`) beside the columns that are filtered,
-- sorted or constrained; times are `format_time` text (RFC 3339, UTC,
-- microseconds, fixed width), so they sort as text.
--
-- No foreign keys: an environment's events (and recommendations) outlive it.

-- `seq` is the global order streams resume from (`Last-Event-ID`).
-- AUTOINCREMENT: a seq is never handed out twice, even after the newest
-- events are deleted.
CREATE TABLE drift_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    lab_id         TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    detected_at    TEXT NOT NULL,
    doc            TEXT NOT NULL
);
CREATE INDEX drift_events_env ON drift_events(environment_id, detected_at);
CREATE INDEX drift_events_lab ON drift_events(lab_id, seq);

-- One row per environment: its current status and findings fingerprint.
CREATE TABLE drift_state (
    environment_id TEXT PRIMARY KEY,
    lab_id         TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    doc            TEXT NOT NULL
);
CREATE INDEX drift_state_lab ON drift_state(lab_id);

CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    lab_id     TEXT NOT NULL,
    url        TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc        TEXT NOT NULL,
    UNIQUE (lab_id, url)
);
CREATE INDEX webhooks_lab ON webhooks(lab_id, created_at);

CREATE TABLE dead_letters (
    id     TEXT PRIMARY KEY,
    lab_id TEXT NOT NULL,
    at     TEXT NOT NULL,
    doc    TEXT NOT NULL
);
CREATE INDEX dead_letters_lab ON dead_letters(lab_id, at);

CREATE TABLE recommendations (
    id             TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    doc            TEXT NOT NULL
);
CREATE INDEX recommendations_env ON recommendations(environment_id, created_at);
