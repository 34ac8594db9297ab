//! Job runs: claims keyed by (job, scheduled tick), the one-running-run-per-job guard, the
//! history `billrun runs` prints, and the batches processes share when a run scales out.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, Db};
use crate::with_db;

/// Where a run stands (`job_runs.status`, held to these names by a CHECK since migration
/// 0007). Matched exhaustively everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Claimed and not over: its owner beats (`heartbeat_at`).
    Running,
    Succeeded,
    /// The job failed, or finished with failed items.
    Failed,
    /// Stopped (a signal, or its process gone): its tick is run again.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Whether the run is over (recorded, or interrupted): anything but running.
    pub fn is_over(self) -> bool {
        match self {
            RunStatus::Running => false,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Interrupted => true,
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        match s {
            "running" => Some(RunStatus::Running),
            "succeeded" => Some(RunStatus::Succeeded),
            "failed" => Some(RunStatus::Failed),
            "interrupted" => Some(RunStatus::Interrupted),
            _ => None,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Read from the name it is stored under; a name billrun never wrote is an error.
impl TryFrom<String> for RunStatus {
    type Error = crate::core::stored::UnknownName;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        RunStatus::parse(&value).ok_or(crate::core::stored::UnknownName {
            what: "run status",
            value,
        })
    }
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub job: String,
    /// The tick claimed (`None` for a manual run).
    pub scheduled_at: Option<DateTime<Utc>>,
    pub trigger: String,
    /// The run's clock (`--now`).
    pub clock: DateTime<Utc>,
    pub owner: String,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// JSON object of the run's counts.
    pub counts: String,
    pub failures: i32,
    pub summary: Option<String>,
    pub error: Option<String>,
}

const RUN_COLUMNS: &str = "id, job, scheduled_at, trigger, clock, owner, status, started_at, heartbeat_at, finished_at, counts, failures, summary, error";

pub struct NewRun<'a> {
    pub job: &'a str,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub trigger: &'a str,
    pub clock: DateTime<Utc>,
    pub owner: &'a str,
    pub started_at: DateTime<Utc>,
}

/// Marks runs of `job` whose owner stopped beating before `cutoff` as interrupted (a crashed
/// or killed process), so that the job can run again.
pub async fn expire_stale(
    db: impl Into<Conn<'_>>,
    job: &str,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    Ok(with_db!(db, p => sqlx::query(
        "UPDATE job_runs SET status = 'interrupted', finished_at = $3,
             error = COALESCE(error, 'its process stopped reporting (crashed or killed)')
         WHERE job = $1 AND status = 'running' AND heartbeat_at < $2")
        .bind(job).bind(cutoff).bind(now).execute(p).await?.rows_affected()))
}

/// Takes an interrupted tick's run again; false when another run of the job is going (the
/// one-running-run index refuses) or someone else took it first.
pub async fn reclaim(
    db: impl Into<Conn<'_>>,
    id: i64,
    owner: &str,
    trigger: &str,
    clock: DateTime<Utc>,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let r = with_db!(db, p => sqlx::query(
        "UPDATE job_runs SET status = 'running', owner = $2, trigger = $3, clock = $4, started_at = $5,
             heartbeat_at = $5, finished_at = NULL, error = NULL, summary = NULL
         WHERE id = $1 AND status = 'interrupted'")
        .bind(id).bind(owner).bind(trigger).bind(clock).bind(at).execute(p).await.map(|d| d.rows_affected()));
    match r {
        Ok(n) => Ok(n == 1),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Marks one running run interrupted.
pub async fn interrupt(
    db: impl Into<Conn<'_>>,
    id: i64,
    at: DateTime<Utc>,
    why: &str,
) -> anyhow::Result<()> {
    with_db!(db, p => sqlx::query(
        "UPDATE job_runs SET status = 'interrupted', finished_at = $2, error = COALESCE(error, $3)
         WHERE id = $1 AND status = 'running'")
        .bind(id).bind(at).bind(why).execute(p).await?.rows_affected());
    Ok(())
}

/// Gives back a claim that never ran: the row goes, so the tick is as if unclaimed. Only the
/// claimant's own row, still `running`, is removed.
pub async fn release(db: impl Into<Conn<'_>>, id: i64, owner: &str) -> anyhow::Result<()> {
    with_db!(db, p => sqlx::query(
        "DELETE FROM job_runs WHERE id = $1 AND owner = $2 AND status = 'running'")
        .bind(id).bind(owner).execute(p).await?.rows_affected());
    Ok(())
}

/// Claims a run: `Some(id)`, or `None` when the tick is taken or the job is running.
pub async fn claim(db: impl Into<Conn<'_>>, r: &NewRun<'_>) -> anyhow::Result<Option<i64>> {
    let row: Option<(i64,)> = with_db!(db, p => sqlx::query_as(
        "INSERT INTO job_runs (job, scheduled_at, trigger, clock, owner, status, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, 'running', $6, $6) ON CONFLICT DO NOTHING RETURNING id")
        .bind(r.job).bind(r.scheduled_at).bind(r.trigger).bind(r.clock).bind(r.owner).bind(r.started_at)
        .fetch_optional(p).await?);
    Ok(row.map(|r| r.0))
}

pub async fn by_tick(
    db: impl Into<Conn<'_>>,
    job: &str,
    tick: DateTime<Utc>,
) -> anyhow::Result<Option<RunRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE job = $1 AND scheduled_at = $2"
    ));
    Ok(
        with_db!(db, p => sqlx::query_as::<_, RunRow>(sql).bind(job).bind(tick).fetch_optional(p).await?),
    )
}

pub async fn running(db: impl Into<Conn<'_>>, job: &str) -> anyhow::Result<Option<RunRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE job = $1 AND status = 'running'"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, RunRow>(sql).bind(job).fetch_optional(p).await?))
}

pub async fn get(db: impl Into<Conn<'_>>, id: i64) -> anyhow::Result<Option<RunRow>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {RUN_COLUMNS} FROM job_runs WHERE id = $1"));
    Ok(with_db!(db, p => sqlx::query_as::<_, RunRow>(sql).bind(id).fetch_optional(p).await?))
}

pub async fn heartbeat(db: impl Into<Conn<'_>>, id: i64, at: DateTime<Utc>) -> anyhow::Result<()> {
    with_db!(db, p => sqlx::query("UPDATE job_runs SET heartbeat_at = $2 WHERE id = $1 AND status = 'running'")
        .bind(id).bind(at).execute(p).await?.rows_affected());
    Ok(())
}

pub struct Finish {
    pub status: RunStatus,
    pub at: DateTime<Utc>,
    pub counts: String,
    pub failures: i32,
    pub summary: Option<String>,
    pub error: Option<String>,
}

/// Records how a run ended. With `owner`, only while that process owns the run and it is
/// running (a shared run: false, nothing written, when another process took it over or
/// recorded it); without, whoever holds it.
pub async fn finish(
    db: impl Into<Conn<'_>>,
    id: i64,
    owner: Option<&str>,
    f: &Finish,
) -> anyhow::Result<bool> {
    let n = with_db!(db, p => sqlx::query(
        "UPDATE job_runs SET status = $2, finished_at = $3, heartbeat_at = $3, counts = $4, failures = $5, summary = $6, error = $7
         WHERE id = $1 AND ($8 IS NULL OR (owner = $8 AND status = 'running'))")
        .bind(id).bind(f.status.as_str()).bind(f.at).bind(&f.counts).bind(f.failures).bind(&f.summary).bind(&f.error).bind(owner)
        .execute(p).await?.rows_affected());
    Ok(n == 1)
}

/// History, newest first.
pub async fn list(
    db: impl Into<Conn<'_>>,
    job: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<RunRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE ($1 IS NULL OR job = $1) ORDER BY id DESC LIMIT $2"
    ));
    Ok(
        with_db!(db, p => sqlx::query_as::<_, RunRow>(sql).bind(job).bind(limit).fetch_all(p).await?),
    )
}

/// The latest tick claimed for `job` (by any daemon or cron run) that was not interrupted.
pub async fn last_tick(
    db: impl Into<Conn<'_>>,
    job: &str,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let row: Option<(Option<DateTime<Utc>>,)> = with_db!(db, p => sqlx::query_as(
        "SELECT MAX(scheduled_at) FROM job_runs WHERE job = $1 AND status <> 'interrupted'")
        .bind(job).fetch_optional(p).await?);
    Ok(row.and_then(|r| r.0))
}

// ---------------------------------------------------------------------------------------------
// Scale-out batches (PostgreSQL)

/// Cuts the run into account ranges; the claim's process does it right after claiming.
pub async fn add_batches(db: &Db, run: i64, ranges: &[(String, String)]) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    for (first, last) in ranges {
        with_db!(&mut tx, c => sqlx::query(
            "INSERT INTO job_run_batches (run_id, first_account, last_account) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING")
            .bind(run).bind(first).bind(last).execute(c).await?.rows_affected());
    }
    tx.commit().await?;
    Ok(())
}

/// Takes the next pending batch of the run, skipping those other processes hold. Its heartbeat
/// starts now (the database's clock), see [`beat_shared`].
pub async fn take_batch(
    db: &Db,
    run: i64,
    worker: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<Option<(String, String)>> {
    match db {
        Db::Postgres(p) => Ok(sqlx::query_as(
            "UPDATE job_run_batches SET status = 'running', worker = $2, claimed_at = $3, heartbeat_at = now()
             WHERE (run_id, first_account) = (
                 SELECT run_id, first_account FROM job_run_batches
                 WHERE run_id = $1 AND status = 'pending' ORDER BY first_account
                 LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING first_account, last_account",
        )
        .bind(run)
        .bind(worker)
        .bind(at)
        .fetch_optional(p)
        .await?),
        Db::Sqlite(_) => anyhow::bail!("scale-out batches need PostgreSQL"),
    }
}

/// Marks a range done with its counts; false when `worker` no longer holds it (it was taken
/// for dead and put back, and another process holds or finished it: that one's counts stand).
/// A range put back but not taken again is marked done by the one that finished it.
pub async fn finish_batch(
    db: impl Into<Conn<'_>>,
    run: i64,
    first: &str,
    worker: &str,
    counts: &str,
) -> anyhow::Result<bool> {
    Ok(with_db!(db, p => sqlx::query(
        "UPDATE job_run_batches SET status = 'done', counts = $3, worker = $4
         WHERE run_id = $1 AND first_account = $2
           AND (status = 'pending' OR (status = 'running' AND worker = $4))")
        .bind(run).bind(first).bind(counts).bind(worker).execute(p).await?.rows_affected())
        == 1)
}

/// A process of a shared run reports that it is alive, with the database's clock: on the
/// ranges it holds and, when it owns the run (it claimed it or took it over), on the run.
pub async fn beat_shared(db: &Db, run: i64, worker: &str) -> anyhow::Result<()> {
    let Db::Postgres(p) = db else {
        anyhow::bail!("scale-out batches need PostgreSQL");
    };
    sqlx::query(
        "UPDATE job_run_batches SET heartbeat_at = now()
         WHERE run_id = $1 AND worker = $2 AND status = 'running'",
    )
    .bind(run)
    .bind(worker)
    .execute(p)
    .await?;
    sqlx::query(
        "UPDATE job_runs SET heartbeat_at = now() WHERE id = $1 AND owner = $2 AND status = 'running'",
    )
    .bind(run)
    .bind(worker)
    .execute(p)
    .await?;
    Ok(())
}

/// (pending or running batches, the counts JSON of each done batch, the workers that did them).
pub async fn batches(
    db: impl Into<Conn<'_>>,
    run: i64,
) -> anyhow::Result<(i64, Vec<String>, Vec<String>)> {
    let rows: Vec<(String, Option<String>, Option<String>)> = with_db!(db, p => sqlx::query_as(
        "SELECT status, counts, worker FROM job_run_batches WHERE run_id = $1 ORDER BY first_account")
        .bind(run).fetch_all(p).await?);
    let open = rows.iter().filter(|r| r.0 != "done").count() as i64;
    let counts = rows.iter().filter_map(|r| r.1.clone()).collect();
    let workers = rows.iter().filter_map(|r| r.2.clone()).collect();
    Ok((open, counts, workers))
}

/// Puts back the ranges whose holder has been silent for longer than `stale` by the database's
/// clock (it died, on whatever machine); returns their holders, each once.
pub async fn requeue_silent_batches(
    db: &Db,
    run: i64,
    stale: std::time::Duration,
) -> anyhow::Result<Vec<String>> {
    let Db::Postgres(p) = db else {
        anyhow::bail!("scale-out batches need PostgreSQL");
    };
    let rows: Vec<(Option<String>,)> = sqlx::query_as(
        "WITH put_back AS (
             SELECT run_id, first_account, worker FROM job_run_batches
             WHERE run_id = $1 AND status = 'running'
               AND COALESCE(heartbeat_at, claimed_at) < now() - make_interval(secs => $2)
             FOR UPDATE SKIP LOCKED)
         UPDATE job_run_batches b SET status = 'pending', worker = NULL, heartbeat_at = NULL
         FROM put_back WHERE (b.run_id, b.first_account) = (put_back.run_id, put_back.first_account)
         RETURNING put_back.worker",
    )
    .bind(run)
    .bind(stale.as_secs_f64())
    .fetch_all(p)
    .await?;
    let mut workers: Vec<String> = rows.into_iter().filter_map(|r| r.0).collect();
    workers.sort();
    workers.dedup();
    Ok(workers)
}

/// The processes holding ranges of the run now (`running`), each once.
pub async fn batch_holders(db: impl Into<Conn<'_>>, run: i64) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String,)> = with_db!(db, p => sqlx::query_as(
        "SELECT DISTINCT worker FROM job_run_batches WHERE run_id = $1 AND status = 'running' AND worker IS NOT NULL")
        .bind(run).fetch_all(p).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Puts back the ranges a process holds (it is gone); returns how many.
pub async fn requeue_worker_batches(
    db: impl Into<Conn<'_>>,
    run: i64,
    worker: &str,
) -> anyhow::Result<u64> {
    Ok(with_db!(db, p => sqlx::query(
        "UPDATE job_run_batches SET status = 'pending', worker = NULL
         WHERE run_id = $1 AND status = 'running' AND worker = $2")
        .bind(run).bind(worker).execute(p).await?.rows_affected()))
}

/// Hands a running run whose owner is gone to `owner`, which finishes and records it; false
/// when it is no longer running or someone else took it first.
pub async fn take_over(
    db: impl Into<Conn<'_>>,
    id: i64,
    from: &str,
    owner: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let n = with_db!(db, p => sqlx::query(
        "UPDATE job_runs SET owner = $3, heartbeat_at = $4 WHERE id = $1 AND owner = $2 AND status = 'running'")
        .bind(id).bind(from).bind(owner).bind(at).execute(p).await?.rows_affected());
    Ok(n == 1)
}

/// Hands a shared run whose owner `from` has been silent for longer than `stale` (the
/// database's clock) to `owner`; false when it beat meanwhile, is no longer running, or
/// someone else took it first.
pub async fn take_over_silent(
    db: &Db,
    id: i64,
    from: &str,
    owner: &str,
    stale: std::time::Duration,
) -> anyhow::Result<bool> {
    let Db::Postgres(p) = db else {
        anyhow::bail!("scale-out batches need PostgreSQL");
    };
    let n = sqlx::query(
        "UPDATE job_runs SET owner = $3, heartbeat_at = now()
         WHERE id = $1 AND owner = $2 AND status = 'running'
           AND heartbeat_at < now() - make_interval(secs => $4)",
    )
    .bind(id)
    .bind(from)
    .bind(owner)
    .bind(stale.as_secs_f64())
    .execute(p)
    .await?
    .rows_affected();
    Ok(n == 1)
}
