//! Running a job as one claimed, recorded run: the daemon's ticks, `billrun run` from cron or
//! by hand, and scale-out workers all go through here.
//!
//! - A tick is claimed in `job_runs`, keyed by (job, scheduled time): however many daemons or
//!   cron entries fire it, it runs once. Manual runs have no tick.
//! - Runs of one job never overlap: one `running` row per job (a partial unique index). A run
//!   whose process stops beating for [`STALE_AFTER`] is marked `interrupted` so that the job can
//!   run again.
//! - Scale-out (PostgreSQL): the claiming process cuts the accounts into ranges; every process
//!   that joins takes ranges with `FOR UPDATE SKIP LOCKED` and runs the job on each. The jobs'
//!   own guarantees (one invoice per account and period, the gapless counter locked until
//!   commit, one attempt number per invoice) make any split produce what one process would.
//!   Each process of a shared run beats about every second on the ranges it holds (and on the
//!   run, when it owns it), with the database's clock; a process silent for the job's
//!   `scale_out_stale_seconds` is taken for dead, on whatever machine it ran, and the others
//!   finish its ranges and, if it owned the run, record it. Billing a range twice (a holder
//!   taken for dead that was only slow) is harmless: the same guarantees hold.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::config::BadInput;
use crate::jobs::{self, Env, JobName, JobReport, RunOptions};
use crate::store::runs::{self, Finish, NewRun, RunRow, RunStatus};
use crate::store::{Db, accounts};

/// A run whose process has not beaten for this long is considered dead.
pub const STALE_AFTER: Duration = Duration::from_secs(120);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The daemon's scheduler fired the tick.
    Schedule,
    /// The daemon found the tick missed while every daemon was down.
    CatchUp,
    /// `billrun run <job> --scheduled` from the system's cron.
    Cron,
    /// An operator's `billrun run <job>`.
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::CatchUp => "catch_up",
            Trigger::Cron => "cron",
            Trigger::Manual => "manual",
        }
    }
}

/// A job that panicked: the run is recorded `failed` with this error (never left `running`)
/// and the command exits 3.
#[derive(Debug, thiserror::Error)]
#[error("the {job} job panicked: {message}")]
pub struct Panicked {
    pub job: &'static str,
    pub message: String,
}

/// Fault injection for tests: set to a job's name, that job panics as it starts, under its
/// claim, as a bug in it would (see `runs_caught`).
pub const PANIC_IN_JOB_ENV: &str = "BILLRUN_TEST_PANIC_IN_JOB";

/// Runs the job, turning a panic anywhere in it (a task it awaits re-raises its own) into a
/// [`Panicked`] error, so that the caller records the run.
async fn run_caught(env: &Env, job: JobName, opts: &RunOptions) -> anyhow::Result<JobReport> {
    use futures_util::FutureExt;
    let run = async {
        if std::env::var(PANIC_IN_JOB_ENV).is_ok_and(|j| j == job.as_str()) {
            panic!("{PANIC_IN_JOB_ENV} asked the {} job to panic", job.as_str());
        }
        jobs::run(env, job, opts).await
    };
    match std::panic::AssertUnwindSafe(run).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            Err(Panicked {
                job: job.as_str(),
                message,
            }
            .into())
        }
    }
}

/// Another run of the job holds the claim: exit code 5.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Busy(pub String);

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// This process holds the run.
    Won(i64),
    /// The tick was already claimed (and maybe finished) by another process.
    TickTaken(RunRow),
    /// Another run of the job is in progress.
    Busy(RunRow),
}

/// Fault injection for tests: the host name this process gives in its claims, as if it ran on
/// another machine (the others then cannot see whether its pid is gone).
pub const TEST_HOST_ENV: &str = "BILLRUN_TEST_HOST";

/// `host:pid`, naming the process that holds a claim.
pub fn owner_id() -> String {
    let host = std::env::var(TEST_HOST_ENV)
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// Whether `owner` (`host:pid`) is a process of this machine that no longer exists.
fn owner_is_dead(owner: &str, me: &str) -> bool {
    let (Some((host, pid)), Some((my_host, _))) = (owner.rsplit_once(':'), me.rsplit_once(':'))
    else {
        return false;
    };
    host == my_host
        && pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
}

pub async fn claim(
    db: &Db,
    job: JobName,
    tick: Option<DateTime<Utc>>,
    trigger: Trigger,
    clock: DateTime<Utc>,
    owner: &str,
) -> anyhow::Result<Claim> {
    for _ in 0..3 {
        let wall = crate::core::period::whole_seconds(Utc::now());
        let stale = chrono::Duration::from_std(STALE_AFTER).expect("small");
        let expired = runs::expire_stale(db, job.as_str(), wall - stale, wall).await?;
        if expired > 0 {
            warn!(
                job = job.as_str(),
                "an earlier run stopped reporting: marked interrupted"
            );
        }
        let new = NewRun {
            job: job.as_str(),
            scheduled_at: tick,
            trigger: trigger.as_str(),
            clock,
            owner,
            started_at: wall,
        };
        if let Some(id) = runs::claim(db, &new).await? {
            return Ok(Claim::Won(id));
        }
        if let Some(t) = tick
            && let Some(row) = runs::by_tick(db, job.as_str(), t).await?
        {
            match row.status {
                RunStatus::Running if owner_is_dead(&row.owner, owner) => {
                    runs::interrupt(db, row.id, wall, "its process is gone (crashed or killed)")
                        .await?;
                    continue;
                }
                RunStatus::Running => return Ok(Claim::Busy(row)),
                RunStatus::Interrupted => {
                    // An interrupted tick is run again (the jobs resume where it stopped).
                    if runs::reclaim(db, row.id, owner, trigger.as_str(), clock, wall).await? {
                        return Ok(Claim::Won(row.id));
                    }
                    if let Some(busy) = runs::running(db, job.as_str()).await? {
                        return Ok(Claim::Busy(busy));
                    }
                    continue;
                }
                RunStatus::Succeeded | RunStatus::Failed => return Ok(Claim::TickTaken(row)),
            }
        }
        if let Some(row) = runs::running(db, job.as_str()).await? {
            if owner_is_dead(&row.owner, owner) {
                // Its process, on this machine, is gone (crashed or killed): no need to wait
                // for its heartbeat to go stale.
                runs::interrupt(db, row.id, wall, "its process is gone (crashed or killed)")
                    .await?;
                warn!(job = job.as_str(), run.id = row.id, owner = %row.owner, "an earlier run's process is gone: marked interrupted");
                continue;
            }
            return Ok(Claim::Busy(row));
        }
        // The other run finished between our insert and our look: try again.
    }
    anyhow::bail!(
        "could not claim a run of {}: the claim kept changing",
        job.as_str()
    )
}

/// Runs the job under a claim won, beating while it runs, and records how it ended.
pub async fn execute(
    env: &Env,
    job: JobName,
    opts: &RunOptions,
    run_id: i64,
) -> anyhow::Result<JobReport> {
    let beat = heartbeat(env.db.clone(), run_id);
    let started = std::time::Instant::now();
    let result = run_caught(env, job, opts).await;
    beat.abort();
    record(env, job, run_id, &result, started.elapsed()).await?;
    result
}

fn heartbeat(db: Db, run_id: i64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT_EVERY).await;
            let now = crate::core::period::whole_seconds(Utc::now());
            if let Err(e) = runs::heartbeat(&db, run_id, now).await {
                warn!(run.id = run_id, error = %crate::error_text::chain(&e), "cannot record the heartbeat");
            }
        }
    })
}

fn status_of(result: &anyhow::Result<JobReport>) -> RunStatus {
    match result {
        Err(_) => RunStatus::Failed,
        Ok(r) if r.stopped => RunStatus::Interrupted,
        Ok(r) if !r.failures.is_empty() => RunStatus::Failed,
        Ok(_) => RunStatus::Succeeded,
    }
}

async fn record(
    env: &Env,
    job: JobName,
    run_id: i64,
    result: &anyhow::Result<JobReport>,
    took: Duration,
) -> anyhow::Result<()> {
    let finish = finish_of(result)?;
    runs::finish(&env.db, run_id, None, &finish).await?;
    recorded(job, run_id, finish.status, result, took);
    Ok(())
}

/// [`record`] for a shared run, by the process that owns it now (`me`): a claimer taken for
/// dead while it was only slow leaves the recording to the one that took the run over.
async fn record_shared(
    env: &Env,
    job: JobName,
    run_id: i64,
    me: &str,
    result: &anyhow::Result<JobReport>,
    took: Duration,
) -> anyhow::Result<()> {
    let finish = finish_of(result)?;
    if runs::finish(&env.db, run_id, Some(me), &finish).await? {
        recorded(job, run_id, finish.status, result, took);
    } else {
        warn!(
            job = job.as_str(),
            run.id = run_id,
            "the shared run was taken over (this process was silent too long): the process that took it records it"
        );
    }
    Ok(())
}

fn recorded(
    job: JobName,
    run_id: i64,
    status: RunStatus,
    result: &anyhow::Result<JobReport>,
    took: Duration,
) {
    crate::metrics::record_run(job, status, took, result.as_ref().ok());
    info!(
        job = job.as_str(),
        run.id = run_id,
        status = status.as_str(),
        seconds = took.as_secs_f64(),
        "run finished"
    );
}

fn finish_of(result: &anyhow::Result<JobReport>) -> anyhow::Result<Finish> {
    let status = status_of(result);
    Ok(match result {
        Ok(r) => Finish {
            status,
            at: crate::core::period::whole_seconds(Utc::now()),
            counts: serde_json::to_string(&r.counts)?,
            failures: r.failures.len() as i32,
            summary: Some(r.summary()),
            error: r
                .failures
                .first()
                .map(|f| format!("{}: {}", f.item, f.error)),
        },
        Err(e) => Finish {
            status,
            at: crate::core::period::whole_seconds(Utc::now()),
            counts: "{}".into(),
            failures: 1,
            summary: None,
            error: Some(crate::error_text::chain(e)),
        },
    })
}

/// Waits until the job has no running run (`--wait`), polling.
pub async fn wait_idle(db: &Db, job: JobName) -> anyhow::Result<()> {
    loop {
        let wall = crate::core::period::whole_seconds(Utc::now());
        let stale = chrono::Duration::from_std(STALE_AFTER).expect("small");
        runs::expire_stale(db, job.as_str(), wall - stale, wall).await?;
        if runs::running(db, job.as_str()).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The jobs whose work can be shared between processes.
pub fn scales_out(job: JobName) -> bool {
    match job {
        JobName::Invoice | JobName::Collect => true,
        JobName::Suspend
        | JobName::Hds
        | JobName::Delete
        | JobName::Deliver
        | JobName::VatCheck => false,
    }
}

/// Scale-out: how long a process of a shared run may be silent before the others take it for
/// dead (the job's `scale_out_stale_seconds`).
pub fn scale_out_stale(env: &Env, job: JobName) -> Duration {
    let seconds = match job {
        JobName::Collect => env.jobs.collect.settings.scale_out_stale_seconds,
        JobName::Invoice
        | JobName::Suspend
        | JobName::Hds
        | JobName::Delete
        | JobName::Deliver
        | JobName::VatCheck => env.jobs.invoice.settings.scale_out_stale_seconds,
    };
    Duration::from_secs(u64::from(seconds.max(1)))
}

/// How often a process of a shared run beats: every second, and at least five times within
/// the staleness, so that a live process is never taken for dead for one late beat.
pub fn beat_every(stale: Duration) -> Duration {
    (stale / 5).min(Duration::from_secs(1))
}

/// The heartbeat of a process of a shared run, in its own task (so that it goes on however
/// long a range takes): its ranges and, when it owns the run, the run. Stops when dropped.
struct SharedBeat(tokio::task::JoinHandle<()>);

impl SharedBeat {
    fn start(db: Db, run_id: i64, worker: String, every: Duration) -> SharedBeat {
        SharedBeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = runs::beat_shared(&db, run_id, &worker).await {
                    warn!(run.id = run_id, error = %crate::error_text::chain(&e), "cannot record the heartbeat");
                }
            }
        }))
    }
}

impl Drop for SharedBeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Scale-out, for the process that won the claim: cuts the accounts into ranges, works on them
/// with whoever joins, waits for the others' ranges, records the whole run.
pub async fn execute_shared(
    env: &Env,
    job: JobName,
    opts: &RunOptions,
    run_id: i64,
    batch_size: usize,
) -> anyhow::Result<JobReport> {
    let me = owner_id();
    let beat = SharedBeat::start(
        env.db.clone(),
        run_id,
        me.clone(),
        beat_every(scale_out_stale(env, job)),
    );
    let started = std::time::Instant::now();
    let result = async {
        let ids = accounts::ordered_account_ids(&env.db).await?;
        let ranges: Vec<(String, String)> = ids
            .chunks(batch_size.max(1))
            .map(|c| (c[0].clone(), c[c.len() - 1].clone()))
            .collect();
        runs::add_batches(&env.db, run_id, &ranges).await?;
        let mut mine = work_batches(env, job, opts, run_id).await?;
        if let Some(counts) = finish_open_ranges(env, job, opts, run_id, &mut mine, None).await? {
            mine.counts = sum_counts(&counts)?;
        }
        Ok(mine)
    }
    .await;
    drop(beat);
    record_shared(env, job, run_id, &me, &result, started.elapsed()).await?;
    result
}

/// After its own ranges, a process of a shared run waits for the others' and finishes what a
/// dead process left: the ranges held by a process of this machine that is gone are put back
/// at once (as a dead run's claim is), those of a process silent for longer than
/// [`scale_out_stale`] (on any machine) then. A joiner (`took_over: Some(flag)`) also takes
/// the run over when its owner is gone, on this machine at once or once the owner has been
/// silent for as long, and from then on beats for it (its [`SharedBeat`] does) and records it
/// (`flag` set). Returns the counts of every range once all are done, `None` when the run ended
/// otherwise (stopped, or no longer running): `mine` then holds this process's work only.
async fn finish_open_ranges(
    env: &Env,
    job: JobName,
    opts: &RunOptions,
    run_id: i64,
    mine: &mut JobReport,
    mut took_over: Option<&mut bool>,
) -> anyhow::Result<Option<Vec<String>>> {
    let me = owner_id();
    let stale = scale_out_stale(env, job);
    loop {
        if mine.stopped {
            return Ok(None);
        }
        let (open, counts, _) = runs::batches(&env.db, run_id).await?;
        // The process that records the run (its claimer, or a joiner that took it over) is
        // done once every range is.
        if open == 0 && took_over.as_deref().is_none_or(|took| *took) {
            return Ok(Some(counts));
        }
        if let Some(took) = took_over.as_deref_mut() {
            let Some(row) = runs::get(&env.db, run_id).await? else {
                return Ok(None);
            };
            if row.status.is_over() {
                return Ok(None);
            }
            if !*took && row.owner != me {
                let wall = crate::core::period::whole_seconds(Utc::now());
                let why = if owner_is_dead(&row.owner, &me) {
                    runs::take_over(&env.db, run_id, &row.owner, &me, wall)
                        .await?
                        .then(|| "its process, on this machine, is gone".to_string())
                } else {
                    runs::take_over_silent(&env.db, run_id, &row.owner, &me, stale)
                        .await?
                        .then(|| {
                            format!(
                                "it has been silent for more than {} s (scale_out_stale_seconds)",
                                stale.as_secs()
                            )
                        })
                };
                if let Some(why) = why {
                    warn!(job = job.as_str(), run.id = run_id, owner = %row.owner, reason = %why,
                        "the process that owned the shared run is taken for dead: this one finishes and records it");
                    *took = true;
                }
            }
            if open == 0 {
                if *took {
                    return Ok(Some(counts));
                }
                // A joiner whose ranges are all done waits for the run to be recorded: by its
                // owner, or by this process once the owner is taken for dead (above). Returning
                // here would leave a dead owner's run unrecorded whenever its ranges were put
                // back and finished in the same pass that still found the owner alive.
                tokio::time::sleep(beat_every(stale).min(Duration::from_millis(100))).await;
                continue;
            }
        }
        for worker in runs::batch_holders(&env.db, run_id).await? {
            if owner_is_dead(&worker, &me) {
                warn!(job = job.as_str(), run.id = run_id, worker = %worker,
                    reason = "its process, on this machine, is gone",
                    "a process holding ranges of the shared run is taken for dead: its ranges are put back");
                runs::requeue_worker_batches(&env.db, run_id, &worker).await?;
            }
        }
        for worker in runs::requeue_silent_batches(&env.db, run_id, stale).await? {
            warn!(job = job.as_str(), run.id = run_id, worker = %worker,
                reason = %format!("it has been silent for more than {} s (scale_out_stale_seconds)", stale.as_secs()),
                "a process holding ranges of the shared run is taken for dead: its ranges are put back");
        }
        // Any range pending now (put back by this process or by one that left since) is taken.
        let more = work_batches(env, job, opts, run_id).await?;
        for (k, v) in &more.counts {
            *mine.counts.entry(*k).or_default() += *v;
        }
        mine.invoices.extend(more.invoices);
        mine.collections.extend(more.collections);
        mine.failures.extend(more.failures);
        mine.notes.extend(more.notes);
        if more.stopped {
            mine.stop_early();
        }
        tokio::time::sleep(beat_every(stale).min(Duration::from_millis(100))).await;
    }
}

/// Scale-out, for a process joining a run another one claimed: it works on ranges, then waits
/// for the others' (finishing a dead process's, taking the run over if its owner died).
pub async fn join(
    env: &Env,
    job: JobName,
    opts: &RunOptions,
    run: &RunRow,
) -> anyhow::Result<JobReport> {
    // The claiming process adds the ranges right after its claim: give it a moment.
    for _ in 0..100 {
        let (open, counts, _) = runs::batches(&env.db, run.id).await?;
        if open > 0 || !counts.is_empty() {
            let me = owner_id();
            let beat = SharedBeat::start(
                env.db.clone(),
                run.id,
                me.clone(),
                beat_every(scale_out_stale(env, job)),
            );
            let started = std::time::Instant::now();
            let mut mine = work_batches(env, job, opts, run.id).await?;
            let mut took_over = false;
            let all =
                finish_open_ranges(env, job, opts, run.id, &mut mine, Some(&mut took_over)).await;
            drop(beat);
            if !took_over {
                all?;
                return Ok(mine);
            }
            // This process took the run over: it records it, as its claimer would have.
            let result = match all {
                Ok(Some(counts)) => sum_counts(&counts).map(|c| {
                    mine.counts = c;
                    mine
                }),
                Ok(None) => Ok(mine),
                Err(e) => Err(e),
            };
            record_shared(env, job, run.id, &me, &result, started.elapsed()).await?;
            return result;
        }
        if runs::get(&env.db, run.id)
            .await?
            .is_none_or(|r| r.status.is_over())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(crate::closing::Refused(format!(
        "run #{} of {} (started by {} at {}) does not share its work: it was not started with --join",
        run.id,
        run.job,
        run.owner,
        run.started_at.to_rfc3339()
    ))
    .into())
}

async fn work_batches(
    env: &Env,
    job: JobName,
    opts: &RunOptions,
    run_id: i64,
) -> anyhow::Result<JobReport> {
    let worker = owner_id();
    let mut total = JobReport::new(job, opts);
    loop {
        if opts.stop.requested() {
            total.stop_early();
            break;
        }
        let now = crate::core::period::whole_seconds(Utc::now());
        let Some((first, last)) = runs::take_batch(&env.db, run_id, &worker, now).await? else {
            break;
        };
        let mut o = opts.clone();
        o.range = Some((first.clone(), last.clone()));
        let r = run_caught(env, job, &o).await?;
        let counts = serde_json::to_string(&r.counts)?;
        if !runs::finish_batch(&env.db, run_id, &first, &worker, &counts).await? {
            // Taken for dead meanwhile (silent too long) and retaken: whatever this process
            // billed, the database kept once; the holder's counts stand for the range.
            warn!(job = job.as_str(), run.id = run_id, range.first = %first,
                "a range this process billed was put back meanwhile (it was taken for dead); its new holder's counts stand");
        }
        for (k, v) in &r.counts {
            *total.counts.entry(*k).or_default() += *v;
        }
        total.period = r.period.clone();
        total.gateway = r.gateway;
        total.invoices.extend(r.invoices);
        total.collections.extend(r.collections);
        total.failures.extend(r.failures);
        total.notes.extend(r.notes);
    }
    Ok(total)
}

fn sum_counts(all: &[String]) -> anyhow::Result<crate::jobs::Counts> {
    let mut out = crate::jobs::Counts::new();
    for c in all {
        let m: crate::jobs::Counts = serde_json::from_str(c)?;
        for (k, v) in m {
            *out.entry(k).or_default() += v;
        }
    }
    Ok(out)
}

/// Refuses scale-out where it cannot work.
pub fn check_join(db: &Db, job: JobName) -> Result<(), BadInput> {
    if !scales_out(job) {
        return Err(BadInput(format!(
            "--join: the {} job runs in one process; only invoice and collect scale out",
            job.as_str()
        )));
    }
    match db {
        Db::Postgres(_) => Ok(()),
        Db::Sqlite(_) => Err(BadInput(
            "--join: scale-out needs PostgreSQL; on SQLite one runner at a time (the database takes one writer)".into(),
        )),
    }
}
