-- Scale-out (issue 25 §3): the process holding a range of a shared run reports on it about every
-- second, with the database's clock (no skew between machines). A range silent for longer than
-- the job's `scale_out_stale_seconds` is put back and finished by a survivor, whether or not its
-- holder ran on the survivor's machine.
ALTER TABLE job_run_batches ADD COLUMN heartbeat_at TIMESTAMPTZ;
