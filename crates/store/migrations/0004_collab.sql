-- Collaboration and succession (issue 6): shares with other labs, templates,
-- handovers. Records are JSON documents; the columns are what queries filter on.
CREATE TABLE shares (
    id          TEXT PRIMARY KEY,
    owner_lab   TEXT NOT NULL,
    target_lab  TEXT NOT NULL,
    resource    TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    doc         TEXT NOT NULL
);
CREATE INDEX shares_owner ON shares(owner_lab, created_at);
CREATE INDEX shares_target ON shares(target_lab, created_at);
CREATE INDEX shares_resource ON shares(resource_id);

CREATE TABLE templates (
    id           TEXT PRIMARY KEY,
    lab_id       TEXT NOT NULL,
    snapshot_id  TEXT NOT NULL,
    published_at TEXT NOT NULL,
    withdrawn    INTEGER NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX templates_lab ON templates(lab_id, published_at);
CREATE INDEX templates_snapshot ON templates(snapshot_id);

CREATE TABLE handovers (
    id             TEXT PRIMARY KEY,
    lab_id         TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    from_user      TEXT NOT NULL,
    to_user        TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    doc            TEXT NOT NULL
);
CREATE INDEX handovers_env ON handovers(environment_id, created_at);
CREATE INDEX handovers_from ON handovers(from_user);
CREATE INDEX handovers_to ON handovers(to_user);
