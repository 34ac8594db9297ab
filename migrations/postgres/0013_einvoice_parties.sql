-- E-invoicing data (EN 16931, the French CTC rules) the accounts import and the invoice job
-- record: the buyer's SIREN (BT-47) and electronic address (BT-49 with its scheme, BT-49-1),
-- copied onto each invoice as issued, as the other buyer fields are; the SEPA mandate
-- reference (BT-89) of a SEPA debit method; and how the invoice was expected to be paid when
-- it was issued (BG-16: card, SEPA debit, prepaid credit, nothing due, not defined).

ALTER TABLE accounts ADD COLUMN siren TEXT CHECK (siren IS NULL OR length(siren) = 9);
ALTER TABLE accounts ADD COLUMN electronic_address TEXT;
ALTER TABLE accounts ADD COLUMN electronic_address_scheme TEXT;

ALTER TABLE payment_methods ADD COLUMN sepa_mandate TEXT;

ALTER TABLE invoices ADD COLUMN buyer_siren TEXT;
ALTER TABLE invoices ADD COLUMN buyer_electronic_address TEXT;
ALTER TABLE invoices ADD COLUMN buyer_electronic_address_scheme TEXT;
-- Invoices issued before this migration keep the instruction they were issued with
-- ('unrecorded': UNTDID 4461 code 1, "card or SEPA direct debit on file").
ALTER TABLE invoices ADD COLUMN payment_means TEXT NOT NULL DEFAULT 'unrecorded'
    CHECK (payment_means IN ('card', 'sepa_debit', 'prepaid_credit', 'nothing_due', 'not_defined', 'unrecorded'));
ALTER TABLE invoices ADD COLUMN sepa_mandate TEXT;
