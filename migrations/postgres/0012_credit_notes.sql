-- Credit notes (avoirs, issue 22): the only way to correct an issued invoice (article 272-1 of
-- the CGI; article 242 nonies A of annex II to the CGI for what they carry). Never deleted:
-- kept ten years like invoices (article L123-22 of the Code de commerce).

-- What an invoice's credit notes credited (VAT included), and the part of it that lowered
-- what the invoice owed (the rest was refunded): what is due now accounts for both.
ALTER TABLE invoices ADD COLUMN credited_minor BIGINT NOT NULL DEFAULT 0
    CHECK (credited_minor >= 0 AND credited_minor <= total_minor);
ALTER TABLE invoices ADD COLUMN credited_due_minor BIGINT NOT NULL DEFAULT 0
    CHECK (credited_due_minor >= 0 AND credited_due_minor <= credited_minor);
ALTER TABLE invoices DROP CONSTRAINT invoices_check2;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_due_reconciles CHECK (amount_due_minor =
    total_minor + brought_forward_minor - credit_applied_minor - amount_paid_minor
    - carried_forward_minor - credited_due_minor);

-- Credit given back to the prepaid credit by a credit note: a third kind of ledger row.
ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_kind_check;
ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_check;
ALTER TABLE credit_ledger ADD CONSTRAINT credit_ledger_kind_check
    CHECK (kind IN ('purchase', 'applied', 'refund'));
ALTER TABLE credit_ledger ADD CONSTRAINT credit_ledger_amount_sign CHECK (
    (kind IN ('purchase', 'refund') AND amount_minor > 0) OR (kind = 'applied' AND amount_minor < 0));

-- One gapless counter per year, as for invoices: taken in the transaction that issues the
-- credit note (article 242 nonies A, I-7° of annex II to the CGI: a unique number in a
-- continuous series).
CREATE TABLE credit_note_sequences (
    year       INTEGER PRIMARY KEY,
    last_value BIGINT NOT NULL
);

CREATE TABLE credit_notes (
    id                   BIGSERIAL PRIMARY KEY,
    number               TEXT NOT NULL UNIQUE,
    invoice_id           BIGINT NOT NULL REFERENCES invoices (id),
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    issued_at            TIMESTAMPTZ NOT NULL,
    reason               TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    currency             TEXT NOT NULL,
    language             TEXT NOT NULL,
    subtotal_minor       BIGINT NOT NULL CHECK (subtotal_minor > 0),
    tax_case             TEXT NOT NULL,
    tax_rate             NUMERIC(8, 4) NOT NULL,
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
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id);
CREATE INDEX credit_notes_account ON credit_notes (account_id, id);

CREATE TABLE credit_note_lines (
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
CREATE TABLE credit_note_documents (
    credit_note_id BIGINT PRIMARY KEY REFERENCES credit_notes (id),
    pdf            BYTEA NOT NULL,
    sha256         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
ALTER TABLE credit_note_documents ALTER COLUMN pdf SET STORAGE EXTERNAL;

-- Refunds through the gateway, one per payment refunded, committed before the gateway is
-- called (as charges are): the idempotency key is derived from the credit note and the
-- payment, so a retry after a crash or an unknown outcome refunds once (Stripe API
-- "Idempotent requests"). requested: committed, no conclusive answer yet; pending: accepted,
-- the money is on its way; succeeded; failed; unknown: asked, no conclusive answer.
CREATE TABLE refunds (
    id                BIGSERIAL PRIMARY KEY,
    credit_note_id    BIGINT NOT NULL REFERENCES credit_notes (id),
    attempt_id        BIGINT NOT NULL REFERENCES payment_attempts (id),
    payment_intent_id TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
    idempotency_key   TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL CHECK (status IN ('requested', 'pending', 'succeeded', 'failed', 'unknown')),
    stripe_refund_id  TEXT,
    failure_message   TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    settled_at        TIMESTAMPTZ,
    UNIQUE (credit_note_id, attempt_id)
);
CREATE INDEX refunds_open ON refunds (id) WHERE status IN ('requested', 'unknown');

-- A referral reward shrinks when the invoice it was earned from is credited (by the credited
-- share); what the referrer already used stays used. One row per credit note that shrank it.
CREATE TABLE referral_reward_reductions (
    reward_id      BIGINT NOT NULL REFERENCES referral_rewards (id),
    credit_note_id BIGINT NOT NULL REFERENCES credit_notes (id),
    amount_minor   BIGINT NOT NULL CHECK (amount_minor >= 0),
    -- What was left to use that this took away (never more than was left).
    remaining_cut_minor BIGINT NOT NULL CHECK (remaining_cut_minor >= 0),
    PRIMARY KEY (reward_id, credit_note_id)
);

-- Disputes (chargebacks): never a credit note. Keyed by Stripe's dispute id; a lost one made
-- the amount owed again (the invoice's amount paid falls by it).
CREATE TABLE disputes (
    id                BIGSERIAL PRIMARY KEY,
    stripe_dispute_id TEXT NOT NULL UNIQUE,
    invoice_id        BIGINT NOT NULL REFERENCES invoices (id),
    amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
    status            TEXT NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX disputes_invoice ON disputes (invoice_id);

-- Credit notes are kept as invoices are: the stores refuse deleting one, its lines or its
-- document, or changing its number (article L123-22 of the Code de commerce).
CREATE FUNCTION credit_notes_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit notes are kept: a credit note is never deleted or renumbered'
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER credit_notes_never_deleted BEFORE DELETE OR TRUNCATE ON credit_notes
    FOR EACH STATEMENT EXECUTE FUNCTION credit_notes_are_kept();
CREATE TRIGGER credit_note_lines_never_deleted BEFORE DELETE OR TRUNCATE ON credit_note_lines
    FOR EACH STATEMENT EXECUTE FUNCTION credit_notes_are_kept();
CREATE TRIGGER credit_note_documents_never_deleted BEFORE DELETE OR TRUNCATE ON credit_note_documents
    FOR EACH STATEMENT EXECUTE FUNCTION credit_notes_are_kept();
CREATE TRIGGER credit_notes_never_renumbered BEFORE UPDATE OF id, number ON credit_notes
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.number IS DISTINCT FROM NEW.number)
    EXECUTE FUNCTION credit_notes_are_kept();
