-- Account lifecycle: suspension for non-payment, the platform's view of apps, the deletion queue.

ALTER TABLE accounts ADD COLUMN suspended_at TEXT;
ALTER TABLE accounts ADD COLUMN deletion_warning_at TEXT;

-- What the platform should run: `stopped` while the owner is suspended.
ALTER TABLE apps ADD COLUMN status TEXT NOT NULL DEFAULT 'running';

-- Events the platform reads to stop and start apps.
CREATE TABLE platform_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    app_id     TEXT REFERENCES apps (id),
    kind       TEXT NOT NULL CHECK (kind IN ('app.stop', 'app.start')),
    reason     TEXT NOT NULL
);

-- Accounts whose data is to be deleted, and why.
CREATE TABLE deletion_queue (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    reason     TEXT NOT NULL CHECK (reason IN ('request', 'non_payment')),
    queued_at  TEXT NOT NULL
);
