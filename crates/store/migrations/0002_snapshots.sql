-- Snapshots of environments. The bytes live in the vault; this is the record.
CREATE TABLE snapshots (
    id             TEXT PRIMARY KEY,
    lab_id         TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    stored_bytes   INTEGER NOT NULL,
    doc            TEXT NOT NULL
);
CREATE INDEX snapshots_env ON snapshots(environment_id, created_at);
CREATE INDEX snapshots_lab ON snapshots(lab_id, created_at);
