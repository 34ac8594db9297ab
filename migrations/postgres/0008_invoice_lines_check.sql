-- Invoices are kept: an invoice is never deleted (nor its id changed), whatever its state, as
-- the law keeps invoices; the stores refuse it outright.
CREATE FUNCTION invoices_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'invoices are kept: an invoice is never deleted or renumbered'
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER invoices_never_deleted BEFORE DELETE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION invoices_are_kept();
CREATE TRIGGER invoices_never_truncated BEFORE TRUNCATE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION invoices_are_kept();
CREATE TRIGGER invoices_id_never_changed BEFORE UPDATE OF id ON invoices
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION invoices_are_kept();

-- A line's invoice must exist. The foreign key checked that one line at a time (a lookup and a
-- row lock on the invoice per line: two thirds of the time the invoice job spent writing
-- lines); since invoices can no longer disappear, one check per statement over the rows it
-- wrote gives the same guarantee. (SQLite keeps its foreign key: there it costs little.)
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_invoice_id_fkey;
CREATE FUNCTION invoice_lines_check_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT invoice_id FROM written) w
               WHERE NOT EXISTS (SELECT 1 FROM invoices i WHERE i.id = w.invoice_id)) THEN
        RAISE EXCEPTION 'invoice_lines: a line names an invoice that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER invoice_lines_invoice_exists AFTER INSERT ON invoice_lines
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION invoice_lines_check_invoice();
CREATE TRIGGER invoice_lines_invoice_exists_on_update AFTER UPDATE ON invoice_lines
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION invoice_lines_check_invoice();
