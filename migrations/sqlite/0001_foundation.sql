-- billrun foundation: accounts, apps, catalog, usage, invoices, timeline.
-- Amounts are integer minor units (cents); unit prices are exact decimals stored as TEXT
-- (SQLite has no exact decimal type); times are RFC 3339 UTC text, whole seconds.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    name        TEXT NOT NULL,
    company     TEXT,
    address     TEXT NOT NULL,
    country     TEXT NOT NULL CHECK (length(country) = 2),
    vat_number  TEXT,
    language    TEXT NOT NULL CHECK (language IN ('fr', 'en')),
    created_at  TEXT NOT NULL,
    referred_by TEXT REFERENCES accounts (id) DEFERRABLE INITIALLY DEFERRED,
    status      TEXT NOT NULL DEFAULT 'active'
);
CREATE INDEX accounts_referred_by ON accounts (referred_by);

CREATE TABLE apps (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id)
);
CREATE INDEX apps_account ON apps (account_id);

CREATE TABLE catalog_prices (
    kind           TEXT NOT NULL CHECK (kind IN ('container', 'addon')),
    item           TEXT NOT NULL,
    hourly_price   TEXT NOT NULL ,
    monthly_cap    TEXT ,
    currency       TEXT NOT NULL CHECK (currency = 'EUR'),
    effective_from TEXT NOT NULL,
    PRIMARY KEY (kind, item, effective_from)
);

CREATE TABLE usage_records (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES apps (id),
    kind       TEXT NOT NULL CHECK (kind IN ('container', 'addon')),
    item       TEXT NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity >= 0),
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    CHECK (ended_at IS NULL OR ended_at > started_at)
);
CREATE INDEX usage_app_started ON usage_records (app_id, started_at);

-- One gapless counter per year: taken in the transaction that finalizes the invoice, so a
-- rolled-back invoice gives its number back.
CREATE TABLE invoice_sequences (
    year       INTEGER PRIMARY KEY,
    last_value BIGINT NOT NULL
);

CREATE TABLE invoices (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    number               TEXT NOT NULL UNIQUE,
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    period               TEXT NOT NULL,
    period_start         TEXT NOT NULL,
    period_end           TEXT NOT NULL,
    status               TEXT NOT NULL,
    currency             TEXT NOT NULL,
    language             TEXT NOT NULL,
    buyer_name           TEXT NOT NULL,
    buyer_company        TEXT,
    buyer_address        TEXT NOT NULL,
    buyer_country        TEXT NOT NULL,
    buyer_vat_number     TEXT,
    subtotal_minor       BIGINT NOT NULL CHECK (subtotal_minor >= 0),
    discount_minor       BIGINT NOT NULL CHECK (discount_minor >= 0 AND discount_minor <= subtotal_minor),
    tax_case             TEXT NOT NULL,
    tax_rate             TEXT NOT NULL,
    tax_minor            BIGINT NOT NULL CHECK (tax_minor >= 0),
    total_minor          BIGINT NOT NULL CHECK (total_minor = subtotal_minor - discount_minor + tax_minor),
    -- Unpaid balances of earlier invoices too small to charge, included in what is due.
    brought_forward_minor BIGINT NOT NULL DEFAULT 0 CHECK (brought_forward_minor >= 0),
    credit_applied_minor BIGINT NOT NULL DEFAULT 0 CHECK (credit_applied_minor >= 0),
    amount_paid_minor    BIGINT NOT NULL DEFAULT 0 CHECK (amount_paid_minor >= 0),
    -- What was too small to charge and moved to the account's next invoice.
    carried_forward_minor BIGINT NOT NULL DEFAULT 0 CHECK (carried_forward_minor >= 0),
    amount_due_minor     BIGINT NOT NULL CHECK (amount_due_minor >= 0),
    -- Collection state (the collect job).
    next_attempt_at      TEXT,
    scheduled_failures   INTEGER NOT NULL DEFAULT 0,
    last_failure_at      TEXT,
    blocked_pm_version   BIGINT,
    collection_exhausted_at TEXT,
    issued_at            TEXT NOT NULL,
    due_at               TEXT NOT NULL,
    UNIQUE (account_id, period),
    CHECK (amount_due_minor = total_minor + brought_forward_minor - credit_applied_minor - amount_paid_minor - carried_forward_minor)
);
CREATE INDEX invoices_status ON invoices (status);

CREATE TABLE invoice_lines (
    invoice_id     BIGINT NOT NULL REFERENCES invoices (id),
    position       INTEGER NOT NULL,
    description    TEXT NOT NULL,
    app_id         TEXT,
    kind           TEXT NOT NULL,
    item           TEXT NOT NULL,
    quantity_hours TEXT NOT NULL,
    unit_price     TEXT NOT NULL,
    amount_minor   BIGINT NOT NULL CHECK (amount_minor >= 0),
    PRIMARY KEY (invoice_id, position)
);

-- The account timeline: every state change of an account, in order.
CREATE TABLE account_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    at         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    invoice_id BIGINT REFERENCES invoices (id),
    message    TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX account_events_account ON account_events (account_id, id);
