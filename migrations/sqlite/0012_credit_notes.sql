-- no-transaction
-- Credit notes (avoirs, issue 22): the only way to correct an issued invoice (article 272-1 of
-- the CGI; article 242 nonies A of annex II to the CGI for what they carry). Never deleted:
-- kept ten years like invoices (article L123-22 of the Code de commerce).
--
-- SQLite cannot alter a CHECK: `invoices` (whose amount-due check gains a term) and
-- `credit_ledger` (a third kind of row) are rebuilt, by SQLite's own procedure for it
-- (https://www.sqlite.org/lang_altertable.html#otheralter): foreign keys off, one
-- transaction, the new table filled and renamed. Hence `no-transaction` above: the pragma
-- has no effect inside a transaction. Every step is safe to run again.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

DROP TABLE IF EXISTS invoices_new;
CREATE TABLE invoices_new (
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
    brought_forward_minor BIGINT NOT NULL DEFAULT 0 CHECK (brought_forward_minor >= 0),
    credit_applied_minor BIGINT NOT NULL DEFAULT 0 CHECK (credit_applied_minor >= 0),
    amount_paid_minor    BIGINT NOT NULL DEFAULT 0 CHECK (amount_paid_minor >= 0),
    carried_forward_minor BIGINT NOT NULL DEFAULT 0 CHECK (carried_forward_minor >= 0),
    amount_due_minor     BIGINT NOT NULL CHECK (amount_due_minor >= 0),
    next_attempt_at      TEXT,
    scheduled_failures   INTEGER NOT NULL DEFAULT 0,
    last_failure_at      TEXT,
    blocked_pm_version   BIGINT,
    collection_exhausted_at TEXT,
    issued_at            TEXT NOT NULL,
    due_at               TEXT NOT NULL,
    vies_consultation    TEXT,
    -- What the invoice's credit notes credited (VAT included), and the part of it that lowered
    -- what the invoice owed (the rest was refunded): what is due now accounts for both.
    credited_minor       BIGINT NOT NULL DEFAULT 0 CHECK (credited_minor >= 0 AND credited_minor <= total_minor),
    credited_due_minor   BIGINT NOT NULL DEFAULT 0 CHECK (credited_due_minor >= 0 AND credited_due_minor <= credited_minor),
    UNIQUE (account_id, period),
    CHECK (amount_due_minor = total_minor + brought_forward_minor - credit_applied_minor - amount_paid_minor
           - carried_forward_minor - credited_due_minor)
);
INSERT INTO invoices_new (id, number, account_id, period, period_start, period_end, status, currency,
    language, buyer_name, buyer_company, buyer_address, buyer_country, buyer_vat_number,
    subtotal_minor, discount_minor, tax_case, tax_rate, tax_minor, total_minor,
    brought_forward_minor, credit_applied_minor, amount_paid_minor, carried_forward_minor,
    amount_due_minor, next_attempt_at, scheduled_failures, last_failure_at, blocked_pm_version,
    collection_exhausted_at, issued_at, due_at, vies_consultation)
SELECT id, number, account_id, period, period_start, period_end, status, currency,
    language, buyer_name, buyer_company, buyer_address, buyer_country, buyer_vat_number,
    subtotal_minor, discount_minor, tax_case, tax_rate, tax_minor, total_minor,
    brought_forward_minor, credit_applied_minor, amount_paid_minor, carried_forward_minor,
    amount_due_minor, next_attempt_at, scheduled_failures, last_failure_at, blocked_pm_version,
    collection_exhausted_at, issued_at, due_at, vies_consultation FROM invoices;
DROP TABLE invoices;
ALTER TABLE invoices_new RENAME TO invoices;
CREATE INDEX invoices_status ON invoices (status);
CREATE TRIGGER invoices_never_deleted BEFORE DELETE ON invoices
BEGIN
    SELECT RAISE(ABORT, 'invoices are kept: an invoice is never deleted or renumbered');
END;
CREATE TRIGGER invoices_id_never_changed BEFORE UPDATE OF id ON invoices
    WHEN OLD.id IS NOT NEW.id
BEGIN
    SELECT RAISE(ABORT, 'invoices are kept: an invoice is never deleted or renumbered');
END;

-- Credit given back to the prepaid credit by a credit note: a third kind of ledger row.
DROP TABLE IF EXISTS credit_ledger_new;
CREATE TABLE credit_ledger_new (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id          TEXT NOT NULL REFERENCES accounts (id),
    at                  TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('purchase', 'applied', 'refund')),
    amount_minor        BIGINT NOT NULL,
    reference           TEXT NOT NULL UNIQUE,
    invoice_id          BIGINT REFERENCES invoices (id),
    balance_after_minor BIGINT NOT NULL CHECK (balance_after_minor >= 0),
    CHECK ((kind IN ('purchase', 'refund') AND amount_minor > 0) OR (kind = 'applied' AND amount_minor < 0))
);
INSERT INTO credit_ledger_new (id, account_id, at, kind, amount_minor, reference, invoice_id, balance_after_minor)
    SELECT id, account_id, at, kind, amount_minor, reference, invoice_id, balance_after_minor FROM credit_ledger;
DROP TABLE credit_ledger;
ALTER TABLE credit_ledger_new RENAME TO credit_ledger;
CREATE INDEX credit_ledger_account ON credit_ledger (account_id, id);

-- One gapless counter per year, as for invoices: taken in the transaction that issues the
-- credit note (article 242 nonies A, I-7° of annex II to the CGI: a unique number in a
-- continuous series).
CREATE TABLE IF NOT EXISTS credit_note_sequences (
    year       INTEGER PRIMARY KEY,
    last_value BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS credit_notes (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    number               TEXT NOT NULL UNIQUE,
    invoice_id           BIGINT NOT NULL REFERENCES invoices (id),
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    issued_at            TEXT NOT NULL,
    reason               TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    currency             TEXT NOT NULL,
    language             TEXT NOT NULL,
    subtotal_minor       BIGINT NOT NULL CHECK (subtotal_minor > 0),
    tax_case             TEXT NOT NULL,
    tax_rate             TEXT NOT NULL,
    tax_minor            BIGINT NOT NULL CHECK (tax_minor >= 0),
    total_minor          BIGINT NOT NULL CHECK (total_minor = subtotal_minor + tax_minor),
    -- As asked: auto, card (the gateway: card or SEPA), credit, none.
    refund_method        TEXT NOT NULL CHECK (refund_method IN ('auto', 'card', 'credit', 'none')),
    -- How the total is settled: what the invoice stopped owing, then what was given back.
    reduce_due_minor     BIGINT NOT NULL CHECK (reduce_due_minor >= 0),
    refund_gateway_minor BIGINT NOT NULL CHECK (refund_gateway_minor >= 0),
    refund_credit_minor  BIGINT NOT NULL CHECK (refund_credit_minor >= 0),
    refund_outside_minor BIGINT NOT NULL CHECK (refund_outside_minor >= 0),
    CHECK (reduce_due_minor + refund_gateway_minor + refund_credit_minor + refund_outside_minor = total_minor)
);
CREATE INDEX IF NOT EXISTS credit_notes_invoice ON credit_notes (invoice_id);
CREATE INDEX IF NOT EXISTS credit_notes_account ON credit_notes (account_id, id);

CREATE TABLE IF NOT EXISTS credit_note_lines (
    credit_note_id BIGINT NOT NULL REFERENCES credit_notes (id),
    position       INTEGER NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('line', 'gesture', 'deduction')),
    -- The invoice line credited (its position), for kind `line`.
    invoice_line   INTEGER CHECK ((kind = 'line') = (invoice_line IS NOT NULL)),
    description    TEXT NOT NULL,
    amount_minor   BIGINT NOT NULL CHECK ((kind = 'deduction' AND amount_minor < 0) OR (kind <> 'deduction' AND amount_minor > 0)),
    PRIMARY KEY (credit_note_id, position)
);

-- The credit note's PDF (a Factur-X, type 381), made in the transaction that issues it.
CREATE TABLE IF NOT EXISTS credit_note_documents (
    credit_note_id BIGINT PRIMARY KEY REFERENCES credit_notes (id),
    pdf            BLOB NOT NULL,
    sha256         TEXT NOT NULL,
    created_at     TEXT NOT NULL
);

-- Refunds through the gateway, one per payment refunded, committed before the gateway is
-- called (as charges are): the idempotency key is derived from the credit note and the
-- payment, so a retry after a crash or an unknown outcome refunds once (Stripe API
-- "Idempotent requests"). requested: committed, no conclusive answer yet; pending: accepted,
-- the money is on its way; succeeded; failed; unknown: asked, no conclusive answer.
CREATE TABLE IF NOT EXISTS refunds (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    credit_note_id    BIGINT NOT NULL REFERENCES credit_notes (id),
    attempt_id        BIGINT NOT NULL REFERENCES payment_attempts (id),
    payment_intent_id TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
    idempotency_key   TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL CHECK (status IN ('requested', 'pending', 'succeeded', 'failed', 'unknown')),
    stripe_refund_id  TEXT,
    failure_message   TEXT,
    created_at        TEXT NOT NULL,
    settled_at        TEXT,
    UNIQUE (credit_note_id, attempt_id)
);
CREATE INDEX IF NOT EXISTS refunds_open ON refunds (id) WHERE status IN ('requested', 'unknown');

-- A referral reward shrinks when the invoice it was earned from is credited (by the credited
-- share); what the referrer already used stays used. One row per credit note that shrank it.
CREATE TABLE IF NOT EXISTS referral_reward_reductions (
    reward_id      BIGINT NOT NULL REFERENCES referral_rewards (id),
    credit_note_id BIGINT NOT NULL REFERENCES credit_notes (id),
    amount_minor   BIGINT NOT NULL CHECK (amount_minor >= 0),
    -- What was left to use that this took away (never more than was left).
    remaining_cut_minor BIGINT NOT NULL CHECK (remaining_cut_minor >= 0),
    PRIMARY KEY (reward_id, credit_note_id)
);

-- Disputes (chargebacks): never a credit note. Keyed by Stripe's dispute id; a lost one made
-- the amount owed again (the invoice's amount paid falls by it).
CREATE TABLE IF NOT EXISTS disputes (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    stripe_dispute_id TEXT NOT NULL UNIQUE,
    invoice_id        BIGINT NOT NULL REFERENCES invoices (id),
    amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
    status            TEXT NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS disputes_invoice ON disputes (invoice_id);

-- Credit notes are kept as invoices are: the stores refuse deleting one, its lines or its
-- document, or changing its number (article L123-22 of the Code de commerce).
DROP TRIGGER IF EXISTS credit_notes_never_deleted;
CREATE TRIGGER credit_notes_never_deleted BEFORE DELETE ON credit_notes
BEGIN
    SELECT RAISE(ABORT, 'credit notes are kept: a credit note is never deleted or renumbered');
END;
DROP TRIGGER IF EXISTS credit_note_lines_never_deleted;
CREATE TRIGGER credit_note_lines_never_deleted BEFORE DELETE ON credit_note_lines
BEGIN
    SELECT RAISE(ABORT, 'credit notes are kept: a credit note is never deleted or renumbered');
END;
DROP TRIGGER IF EXISTS credit_note_documents_never_deleted;
CREATE TRIGGER credit_note_documents_never_deleted BEFORE DELETE ON credit_note_documents
BEGIN
    SELECT RAISE(ABORT, 'credit notes are kept: a credit note is never deleted or renumbered');
END;
DROP TRIGGER IF EXISTS credit_notes_never_renumbered;
CREATE TRIGGER credit_notes_never_renumbered BEFORE UPDATE OF id, number ON credit_notes
    WHEN OLD.id IS NOT NEW.id OR OLD.number IS NOT NEW.number
BEGIN
    SELECT RAISE(ABORT, 'credit notes are kept: a credit note is never deleted or renumbered');
END;

COMMIT;
PRAGMA foreign_keys = ON;
