-- Collecting money: payment methods, the prepaid-credit ledger, referral rewards, payment
-- attempts, small balances carried forward, and the email outbox.

ALTER TABLE accounts ADD COLUMN credit_balance_minor BIGINT NOT NULL DEFAULT 0 CHECK (credit_balance_minor >= 0);

-- The account's default payment method; `version` grows with each change, so that a hard
-- decline blocks retries only until the method changes.
CREATE TABLE payment_methods (
    account_id            TEXT PRIMARY KEY REFERENCES accounts (id),
    kind                  TEXT NOT NULL CHECK (kind IN ('card', 'sepa_debit')),
    stripe_customer       TEXT NOT NULL,
    stripe_payment_method TEXT NOT NULL,
    version               BIGINT NOT NULL,
    updated_at            TEXT NOT NULL
);

-- Prepaid credit: purchases (+) and applications to invoices (−). The balance after each row is
-- kept on the row and on the account; Σ amount = accounts.credit_balance_minor.
CREATE TABLE credit_ledger (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id          TEXT NOT NULL REFERENCES accounts (id),
    at                  TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('purchase', 'applied')),
    amount_minor        BIGINT NOT NULL,
    reference           TEXT NOT NULL UNIQUE,
    invoice_id          BIGINT REFERENCES invoices (id),
    balance_after_minor BIGINT NOT NULL CHECK (balance_after_minor >= 0),
    CHECK ((kind = 'purchase' AND amount_minor > 0) OR (kind = 'applied' AND amount_minor < 0))
);
CREATE INDEX credit_ledger_account ON credit_ledger (account_id, id);

-- A referrer's reward for one paid invoice of an invitee: granted once per source invoice.
CREATE TABLE referral_rewards (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    referrer_id       TEXT NOT NULL REFERENCES accounts (id),
    invitee_id        TEXT NOT NULL REFERENCES accounts (id),
    invitee_name      TEXT NOT NULL,
    source_invoice_id BIGINT NOT NULL UNIQUE REFERENCES invoices (id),
    period            TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
    remaining_minor   BIGINT NOT NULL CHECK (remaining_minor >= 0 AND remaining_minor <= amount_minor),
    earned_at         TEXT NOT NULL
);
CREATE INDEX referral_rewards_referrer ON referral_rewards (referrer_id, id);

-- Discount lines of an invoice (referral rewards used on it).
CREATE TABLE invoice_discounts (
    invoice_id   BIGINT NOT NULL REFERENCES invoices (id),
    position     INTEGER NOT NULL,
    description  TEXT NOT NULL,
    reward_id    BIGINT REFERENCES referral_rewards (id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    PRIMARY KEY (invoice_id, position)
);

-- An amount due below Stripe's minimum, moved from one invoice to the account's next one.
CREATE TABLE balance_transfers (
    from_invoice_id BIGINT PRIMARY KEY REFERENCES invoices (id),
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    to_invoice_id   BIGINT REFERENCES invoices (id),
    at              TEXT NOT NULL
);

-- Every collection attempt, committed before the gateway is called.
CREATE TABLE payment_attempts (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    invoice_id             BIGINT NOT NULL REFERENCES invoices (id),
    number                 INTEGER NOT NULL,
    trigger                TEXT NOT NULL,
    method                 TEXT NOT NULL CHECK (method IN ('card', 'sepa_debit', 'none')),
    payment_method_version BIGINT,
    stripe_customer        TEXT,
    stripe_payment_method  TEXT,
    amount_minor           BIGINT NOT NULL CHECK (amount_minor >= 0),
    idempotency_key        TEXT NOT NULL UNIQUE,
    gateway                TEXT NOT NULL,
    payment_intent_id      TEXT,
    outcome                TEXT NOT NULL CHECK (outcome IN ('unknown', 'processing', 'succeeded', 'failed')),
    decline_code           TEXT,
    failure_message        TEXT,
    created_at             TEXT NOT NULL,
    settled_at             TEXT,
    UNIQUE (invoice_id, number)
);
CREATE INDEX payment_attempts_outcome ON payment_attempts (outcome);

-- Emails to send, written in the transaction of the change that causes them; `dedupe_key`
-- makes a repeat a no-op.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    kind        TEXT NOT NULL,
    dedupe_key  TEXT NOT NULL UNIQUE,
    language    TEXT NOT NULL,
    to_address  TEXT NOT NULL,
    invoice_id  BIGINT REFERENCES invoices (id),
    data        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX outbox_status ON outbox (status, id);
