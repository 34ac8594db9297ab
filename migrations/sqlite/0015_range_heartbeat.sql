-- Scale-out needs PostgreSQL (`--join` is refused on SQLite): the column is here so that both
-- schemas keep the same shape. See migrations/postgres/0015_range_heartbeat.sql.
ALTER TABLE job_run_batches ADD COLUMN heartbeat_at TEXT;
