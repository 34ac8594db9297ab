-- Accounts are kept, as invoices are (0008): an account closed or deleted keeps its row
-- (status `deleted`, profile stripped), since its invoices, payments and timeline name it
-- and the law keeps those. The stores refuse deleting an account or changing its id. (On
-- PostgreSQL this migration also replaces the per-row foreign keys of invoices, account
-- events and the outbox with per-statement checks; SQLite keeps its foreign keys, which
-- cost little there.)
CREATE TRIGGER accounts_never_deleted BEFORE DELETE ON accounts
BEGIN
    SELECT RAISE(ABORT, 'accounts are kept: an account is never deleted or renamed (deletion strips its data and keeps the row)');
END;
CREATE TRIGGER accounts_id_never_changed BEFORE UPDATE OF id ON accounts
    WHEN OLD.id IS NOT NEW.id
BEGIN
    SELECT RAISE(ABORT, 'accounts are kept: an account is never deleted or renamed (deletion strips its data and keeps the row)');
END;

-- The invoice job reads each page's open small balances by account: without an index that
-- read scanned every balance ever carried, once per page.
CREATE INDEX balance_transfers_open ON balance_transfers (account_id)
    WHERE to_invoice_id IS NULL AND waived_at IS NULL;
