-- Account deletion: what an account owns on the platform beyond apps (deployments, aliases,
-- domains, certificates), deletion requests with their confirmation token, and the record a
-- deletion leaves (per-category progress and counts).

ALTER TABLE accounts ADD COLUMN deleted_at TEXT;
-- An app deleted (or transferred away) by its owner; its usage stays for billing.
ALTER TABLE apps ADD COLUMN deleted_at TEXT;

CREATE TABLE deployments (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES apps (id),
    git_ref    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX deployments_app ON deployments (app_id);

-- Account-level aliases (names under which the account is known on the platform).
CREATE TABLE aliases (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    name       TEXT NOT NULL
);
CREATE INDEX aliases_account ON aliases (account_id);

CREATE TABLE domains (
    id     TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    name   TEXT NOT NULL
);
CREATE INDEX domains_app ON domains (app_id);

CREATE TABLE certificates (
    id         TEXT PRIMARY KEY,
    domain_id  TEXT NOT NULL REFERENCES domains (id),
    issuer     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX certificates_domain ON certificates (domain_id);

-- A deletion asked for by the owner: only the SHA-256 of the emailed token is kept.
CREATE TABLE deletion_requests (
    account_id   TEXT PRIMARY KEY REFERENCES accounts (id),
    requested_at TEXT NOT NULL,
    token_sha256 TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    confirmed_at TEXT
);

-- The queue row stays as the deletion record: when it started and finished.
ALTER TABLE deletion_queue ADD COLUMN started_at TEXT;
ALTER TABLE deletion_queue ADD COLUMN completed_at TEXT;

-- What the delete job removed, per category, counted in the transaction that removed it.
CREATE TABLE deletion_progress (
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    category     TEXT NOT NULL,
    deleted      BIGINT NOT NULL DEFAULT 0,
    completed_at TEXT,
    PRIMARY KEY (account_id, category)
);

-- A balance below Stripe's minimum on a closing account's last invoice is waived, not carried.
ALTER TABLE balance_transfers ADD COLUMN waived_at TEXT;

-- The platform also reads app deletions.
-- (SQLite cannot alter a CHECK: the table is rebuilt; nothing references it.)
CREATE TABLE platform_events_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    app_id     TEXT REFERENCES apps (id),
    kind       TEXT NOT NULL CHECK (kind IN ('app.stop', 'app.start', 'app.delete')),
    reason     TEXT NOT NULL
);
INSERT INTO platform_events_new (id, at, account_id, app_id, kind, reason)
    SELECT id, at, account_id, app_id, kind, reason FROM platform_events;
DROP TABLE platform_events;
ALTER TABLE platform_events_new RENAME TO platform_events;
