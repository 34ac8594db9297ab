-- Invoices are kept: an invoice is never deleted (nor its id changed), whatever its state, as
-- the law keeps invoices; the stores refuse it outright. (On PostgreSQL this migration also
-- replaces the lines' per-row foreign key with a per-statement check; SQLite keeps its foreign
-- key, which costs little there.)
CREATE TRIGGER invoices_never_deleted BEFORE DELETE ON invoices
BEGIN
    SELECT RAISE(ABORT, 'invoices are kept: an invoice is never deleted or renumbered');
END;
CREATE TRIGGER invoices_id_never_changed BEFORE UPDATE OF id ON invoices
    WHEN OLD.id IS NOT NEW.id
BEGIN
    SELECT RAISE(ABORT, 'invoices are kept: an invoice is never deleted or renumbered');
END;
