-- Kept in step with PostgreSQL's 0009 (PDF values stored uncompressed there). SQLite never
-- compresses values: nothing to change.
SELECT 1;
