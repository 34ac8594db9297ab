-- VIES consultations: each answer the EU's VAT Information Exchange System gave about an
-- account's VAT number (the vat-check job), kept as the evidence that a customer is a taxable
-- person (article 18 of Implementing Regulation (EU) 282/2011) on which reverse charge rests
-- (article 196 of Directive 2006/112/EC, article 283-2 of the CGI).
CREATE TABLE vies_checks (
    id                  BIGSERIAL PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts (id),
    vat_number          TEXT NOT NULL,
    checked_at          TIMESTAMPTZ NOT NULL,
    outcome             TEXT NOT NULL CHECK (outcome IN ('valid', 'invalid', 'unavailable')),
    -- VIES's own fields: requestDate, requestIdentifier (the consultation number), name and
    -- address as VIES returned them ("---" when the state does not disclose them).
    request_date        TEXT,
    consultation_number TEXT,
    name                TEXT,
    address             TEXT,
    -- Why the answer is `unavailable`: VIES's error code (MS_UNAVAILABLE, ...) or the transport
    -- error (timeout).
    detail              TEXT
);
CREATE INDEX vies_checks_account ON vies_checks (account_id, checked_at);

-- The VIES consultation number an invoice's reverse charge rests on.
ALTER TABLE invoices ADD COLUMN vies_consultation TEXT;
