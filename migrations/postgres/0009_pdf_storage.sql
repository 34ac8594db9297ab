-- A PDF is stored as written: its streams are already deflated, so PostgreSQL's own
-- compression of the value (pglz, tried on every value over 2 KB) never saved a byte and
-- cost more server time than the rest of the insert (seen with perf during `billrun
-- bench`). EXTERNAL: out of line in TOAST, uncompressed. Existing rows keep their storage.
ALTER TABLE invoice_documents ALTER COLUMN pdf SET STORAGE EXTERNAL;
