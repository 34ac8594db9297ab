-- A refund the gateway answered `failed` (a closed card, a closed account) can be settled by
-- the operator (`billrun credit-notes refund NUMBER --to credit|none`): the row becomes
-- `rerouted`, saying where the money went (`credit`: the prepaid credit, a `refund` ledger row
-- of reference `credit-note:<number>:reroute:<refund id>`; `none`: paid outside billrun, by the
-- operator), why, and when. SQLite cannot change a CHECK on a table it has: the table is
-- rebuilt (nothing references it), as 0012 rebuilt the credit ledger.
DROP TABLE IF EXISTS refunds_new;
CREATE TABLE refunds_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    credit_note_id    BIGINT NOT NULL REFERENCES credit_notes (id),
    attempt_id        BIGINT NOT NULL REFERENCES payment_attempts (id),
    payment_intent_id TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
    idempotency_key   TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL CHECK (status IN ('requested', 'pending', 'succeeded', 'failed', 'unknown', 'rerouted')),
    stripe_refund_id  TEXT,
    failure_message   TEXT,
    created_at        TEXT NOT NULL,
    settled_at        TEXT,
    rerouted_to       TEXT CHECK (rerouted_to IN ('credit', 'none')),
    reroute_reason    TEXT CHECK (length(reroute_reason) BETWEEN 1 AND 500),
    rerouted_at       TEXT,
    UNIQUE (credit_note_id, attempt_id),
    CHECK ((status = 'rerouted') = (rerouted_to IS NOT NULL AND rerouted_at IS NOT NULL))
);
INSERT INTO refunds_new (id, credit_note_id, attempt_id, payment_intent_id, amount_minor, idempotency_key,
        status, stripe_refund_id, failure_message, created_at, settled_at)
    SELECT id, credit_note_id, attempt_id, payment_intent_id, amount_minor, idempotency_key,
        status, stripe_refund_id, failure_message, created_at, settled_at FROM refunds;
DROP TABLE refunds;
ALTER TABLE refunds_new RENAME TO refunds;
CREATE INDEX refunds_open ON refunds (id) WHERE status IN ('requested', 'unknown');
