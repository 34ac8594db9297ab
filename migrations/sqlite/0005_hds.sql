-- HDS (French health-data hosting): the designated healthcare data point of contact of
-- accounts hosting health data, reviewed at least every 12 months.
CREATE TABLE hds_contacts (
    account_id       TEXT PRIMARY KEY REFERENCES accounts (id),
    name             TEXT NOT NULL,
    email            TEXT NOT NULL,
    phone            TEXT NOT NULL,
    reviewed_at      TEXT NOT NULL,
    last_reminder_at TEXT
);
