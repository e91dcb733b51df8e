-- Invitations into a lab (issue 12): a membership exists only once the
-- invitee accepts. Records are JSON documents; the columns are what queries
-- filter on.
CREATE TABLE invitations (
    id         TEXT PRIMARY KEY,
    lab_id     TEXT NOT NULL REFERENCES labs(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    state      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX invitations_lab ON invitations(lab_id, created_at);
CREATE INDEX invitations_user ON invitations(user_id, created_at);

-- The order in which a user joined their labs: the first is their default
-- lab, so joining another lab (older or newer) never changes it. Existing
-- memberships keep the order they had (by lab id).
ALTER TABLE memberships ADD COLUMN joined_seq INTEGER NOT NULL DEFAULT 0;
UPDATE memberships SET joined_seq = (
    SELECT COUNT(*) FROM memberships m2
    WHERE m2.user_id = memberships.user_id AND m2.lab_id <= memberships.lab_id
);
