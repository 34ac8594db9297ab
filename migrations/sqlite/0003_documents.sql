-- Invoice documents and email delivery.

-- The PDF of an invoice, made in the transaction that finalizes it.
CREATE TABLE invoice_documents (
    invoice_id BIGINT PRIMARY KEY REFERENCES invoices (id),
    pdf        BLOB NOT NULL,
    sha256     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Delivery state of the outbox: pending → sending (claimed by one deliverer until
-- claimed_until) → sent, or failed (permanent SMTP rejection), or back to pending (temporary
-- failure, with next_attempt_at).
ALTER TABLE outbox ADD COLUMN message_id TEXT;
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at TEXT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;
ALTER TABLE outbox ADD COLUMN sent_at TEXT;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
