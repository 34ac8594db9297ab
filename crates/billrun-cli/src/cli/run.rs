//! `billrun run JOB`: one run of a job now, as cron or an operator would start it.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;

use billrun::config::BadInput;
use billrun::core::ids::AccountId;
use billrun::core::period::Period;
use billrun::jobs::{self, Env, JobName, RunOptions};
use billrun::store::accounts;
use billrun::views;

use super::parse::parse_time;
use super::{EXIT_ITEMS_FAILED, OutputFormat, StoreArgs, env};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[arg(value_enum)]
    pub job: JobName,
    /// The run's clock (RFC 3339); default: the real time.
    #[arg(long, value_parser = parse_time)]
    pub now: Option<DateTime<Utc>>,
    /// The billing period (YYYY-MM); default: the month before --now.
    #[arg(long)]
    pub period: Option<Period>,
    /// Only these accounts (repeatable).
    #[arg(long = "account")]
    pub accounts: Vec<String>,
    /// Show exactly what the run would do; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// From the system's cron: claim the job's latest scheduled tick (at or before --now), so
    /// that a tick runs once whoever fires it (daemons, other cron entries).
    #[arg(long)]
    pub scheduled: bool,
    /// When another run of the job holds the claim, wait for it instead of exiting (code 5).
    #[arg(long)]
    pub wait: bool,
    /// Scale-out (PostgreSQL; invoice and collect): share the run's accounts with the other
    /// processes started with --join at the same time.
    #[arg(long)]
    pub join: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs a parsed `run`; returns the process exit code.
pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let env = env(&args.store).await?;
    let mut opts = RunOptions::at(args.now.unwrap_or_else(Utc::now));
    opts.period = args.period;
    opts.accounts = args.accounts.iter().map(|a| AccountId(a.clone())).collect();
    opts.dry_run = args.dry_run;
    // An unknown --account is bad input, refused before a run is claimed: a typo
    // never shows as a failed run in `job_runs`.
    let known =
        accounts::existing_account_ids(&env.db, args.accounts.iter().map(String::as_str)).await?;
    if let Some(a) = args.accounts.iter().find(|a| !known.contains(a.as_str())) {
        return Err(BadInput(format!(
            "--account: unknown account `{}`",
            billrun::core::bounds::excerpt(a)
        ))
        .into());
    }
    let bar = progress_bar();
    opts.progress = bar.clone().map_or_else(Default::default, |b| {
        jobs::Progress(Some(std::sync::Arc::new(b)))
    });
    // `--format json` of the invoice job: the invoices go to a file as they are issued
    // and are copied out at the end (issue 25: memory grew with the platform).
    let spool = match (args.format, args.job) {
        (OutputFormat::Json, JobName::Invoice) => Some(views::InvoiceSpool::new()?),
        _ => None,
    };
    if let Some(s) = &spool {
        opts.invoice_sink = s.sink();
    }
    // Its table format writes each row as the run issues it, and holds none (issue 25 §4).
    let table = match (args.format, args.job) {
        (OutputFormat::Table, JobName::Invoice) => Some(std::sync::Arc::new(
            views::InvoiceTableStream::new(TABLE_ROWS_SHOWN),
        )),
        _ => None,
    };
    if let Some(t) = &table {
        let (t, bar) = (t.clone(), bar.clone());
        opts.invoice_sink = jobs::InvoiceSink(Some(std::sync::Arc::new(move |invoices| {
            let write = || t.write(&invoices, &mut std::io::stdout().lock());
            // The rows go above the progress bar, not through it.
            match &bar {
                Some(b) => b.0.suspend(write),
                None => write(),
            }
        })));
    }
    let report = if args.dry_run {
        // A dry-run changes nothing, so it takes no claim either.
        jobs::run(&env, args.job, &opts).await.map(Some)
    } else {
        claimed_run(&env, &args, &mut opts).await
    };
    if let Some(b) = bar {
        b.0.finish_and_clear();
    }
    let Some(mut report) = report? else {
        return Ok(ExitCode::SUCCESS);
    };
    match args.format {
        OutputFormat::Json => views::write_run_report_json(
            &mut report,
            spool.as_deref(),
            std::io::BufWriter::new(std::io::stdout()),
        )?,
        OutputFormat::Table => {
            match &table {
                Some(t) => t.finish(
                    &std::mem::take(&mut report.invoices),
                    &mut std::io::stdout().lock(),
                )?,
                // No other job reports invoices today; if one did, they would show here.
                None if !report.invoices.is_empty() => {
                    print!("{}", views::invoice_table(&report.invoices))
                }
                None => {}
            }
            for d in &report.deletions {
                println!("{}", d.line());
            }
            for n in &report.notes {
                println!("{n}");
            }
            for f in &report.failures {
                eprintln!("failed: {}: {}", f.item, f.error);
            }
            println!("{}", report.summary());
        }
    }
    if !report.failures.is_empty() {
        return Ok(ExitCode::from(EXIT_ITEMS_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows of the invoice table `billrun run invoice` writes; beyond, it counts them.
const TABLE_ROWS_SHOWN: usize = 50;

/// `billrun run` outside a dry-run: claims the run (a scheduled tick with `--scheduled`), waits
/// or joins when another run holds it, records it. `None`: the tick already ran elsewhere.
async fn claimed_run(
    env: &Env,
    args: &RunArgs,
    opts: &mut RunOptions,
) -> anyhow::Result<Option<jobs::JobReport>> {
    use billrun::runner::{self, Claim, Trigger};
    let job = args.job;
    if args.join {
        runner::check_join(&env.db, job)?;
    }
    let tick = if args.scheduled {
        let meta = env.jobs.meta(job.as_str()).expect("every job has a file");
        let schedule = billrun::core::schedule::Schedule::parse(meta.schedule).map_err(BadInput)?;
        let tick = schedule.latest_at_or_before(opts.now).ok_or_else(|| {
            BadInput(format!(
                "the {} schedule has no tick before {}",
                job.as_str(),
                opts.now
            ))
        })?;
        if job == JobName::Invoice && opts.period.is_none() {
            opts.period = Some(Period::previous_to(tick));
        }
        Some(tick)
    } else {
        None
    };
    let trigger = if args.scheduled {
        Trigger::Cron
    } else {
        Trigger::Manual
    };
    let owner = runner::owner_id();
    loop {
        match runner::claim(&env.db, job, tick, trigger, opts.now, &owner).await? {
            Claim::Won(id) => {
                let report = if args.join {
                    let batch = match job {
                        JobName::Collect => env.jobs.collect.settings.batch_size,
                        _ => env.jobs.invoice.settings.batch_size,
                    };
                    runner::execute_shared(env, job, opts, id, batch as usize).await?
                } else {
                    runner::execute(env, job, opts, id).await?
                };
                return Ok(Some(report));
            }
            Claim::TickTaken(row) => {
                eprintln!(
                    "{}: the tick {} already ran (run #{}, {}, by {}): nothing to do",
                    job.as_str(),
                    row.scheduled_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    row.id,
                    row.status,
                    row.owner
                );
                return Ok(None);
            }
            Claim::Busy(row) => {
                if args.join {
                    return runner::join(env, job, opts, &row).await.map(Some);
                }
                let what = format!(
                    "{} is already running: run #{} started by {} at {}{}",
                    job.as_str(),
                    row.id,
                    row.owner,
                    row.started_at.to_rfc3339(),
                    row.scheduled_at
                        .map(|t| format!(" for the tick {}", t.to_rfc3339()))
                        .unwrap_or_default()
                );
                if !args.wait {
                    return Err(runner::Busy(format!(
                        "{what}; not run (use --wait to wait for it)"
                    ))
                    .into());
                }
                eprintln!("{what}; waiting for it to finish");
                runner::wait_idle(&env.db, job).await?;
            }
        }
    }
}

/// A progress bar on stderr for manual runs on a terminal; none under cron or in a pipe.
#[derive(Clone)]
struct Bar(indicatif::ProgressBar);

impl jobs::ProgressSink for Bar {
    fn total(&self, items: u64) {
        self.0.set_length(items);
    }

    fn advance(&self, items: u64) {
        self.0.inc(items);
    }
}

fn progress_bar() -> Option<Bar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos}/{len} [{bar:40}] {per_sec} eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    Some(Bar(bar))
}
