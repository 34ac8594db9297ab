//! `billrun bench`: bills a large synthetic platform and times each step of the monthly cycle.
//!
//! The platform is the demo's generator (`demo::generate`) with 3 apps per account on average
//! (`BENCH_APP_COUNTS`; the demo's has 2.5), drawn a chunk of accounts at a time.
//! Steps, each timed on its own:
//!
//! 1. **import** — the chunks go through the import code (`import::import_text`, CSV: catalog,
//!    accounts, apps, usage; validated as `billrun import` does), with the accounts' prepaid
//!    credit and payment methods. Drawing the platform and writing its CSV is not timed.
//! 2. **invoice** — the invoice job over every account, page by page (the job's `batch_size`):
//!    the invoices committed, without their PDFs (`jobs::invoice::run`).
//! 3. **collect** — the collect job with the simulated gateway, by account ranges of its
//!    `batch_size` (the scale-out batches of `--join`).
//! 4. **pdf** — the documents step that `jobs::run` chains after the invoice job
//!    (`jobs::documents::run`): every invoice's PDF rendered from the store on every core and
//!    stored, a page at a time. Timed after collect, as it always was, to compare with earlier
//!    figures; it reads nothing collect wrote.
//! 5. **deliver** — the deliver job sends every email of the outbox (PDFs attached) to an SMTP
//!    sink on loopback that the bench runs itself (`smtp.rs`).
//!
//! Then the **floor** (`floor.rs`): the same invoice totals from one `INSERT … SELECT … GROUP
//! BY`, and the invoice step's ratio to it. Each job's report is dropped after its batch, so
//! memory stays flat whatever the size; the peak resident memory is the kernel's `VmHWM`.

use std::str::FromStr;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::Connection;

use billrun::config::{BadInput, GatewayChoice, JobsConfig};
use billrun::core::period::Period;
use billrun::import::read::Format;
use billrun::import::{self, ImportKind};
use billrun::jobs::{self, Count, Counts, Env, JobName, JobReport, RunOptions, Secret};
use billrun::store::{Backend, Db, collection, redact_url};
use billrun::views::OutputFormat;
use billrun_demo::generate::{BENCH_APP_COUNTS, DemoPlatform, Generator};

pub mod commands;
pub mod floor;
pub mod smtp;

/// The default store: a fresh SQLite file in the working directory, replaced on each run.
pub const DEFAULT_BENCH_DB: &str = "billrun-bench.db";

/// Accounts per import chunk (with their apps and usage: about 50,000 records).
const IMPORT_CHUNK: usize = 5_000;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Accounts of the synthetic platform (3 apps each on average, 0 to 6; per app and month 2
    /// to 4 container runs and one addon).
    #[arg(long, default_value_t = 10_000)]
    pub accounts: usize,
    /// The store. Default: a fresh SQLite file `billrun-bench.db` (replaced on each run). A
    /// `postgres://…/NAME` URL names a database that is created when missing; any store given
    /// here must hold no accounts yet. BILLRUN_DATABASE_URL is ignored on purpose.
    #[arg(long)]
    pub database_url: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Seed of the generated platform.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The run's clock; the month before it is billed.
    #[arg(long, value_parser = billrun::core::period::parse_time_arg, default_value = "2026-11-01T06:00:00Z")]
    pub now: DateTime<Utc>,
    /// Let the SMTP sink delay its TCP acknowledgements as the kernel does by default (as most
    /// mail servers do), instead of acknowledging at once: see the README's "Benchmarks".
    #[arg(long)]
    pub smtp_delayed_ack: bool,
    /// The simulated gateway's answer time for the collect step: milliseconds (`300`) or
    /// `lognormal:MEDIAN_MS:SIGMA`. Then the step is held by the rate limit, as against Stripe;
    /// `0` (the default) answers at once, to time billrun alone.
    #[arg(long, default_value = "0")]
    pub gateway_latency_ms: String,
    /// Stripe requests per second the collect step may make (jobs/collect.toml's
    /// `rate_limit_per_second`); used with `--gateway-latency-ms`.
    #[arg(long, default_value_t = 80)]
    pub rate_limit_per_second: u32,
    /// Stop after this step (the floor runs with `invoice`): to time the first steps alone.
    #[arg(long, value_enum, default_value_t = Until::Deliver)]
    pub until: Until,
}

/// The last step `billrun bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Until {
    Import,
    Invoice,
    Collect,
    Pdf,
    Deliver,
}

/// One timed step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: &'static str,
    pub items: u64,
    pub seconds: f64,
    pub items_per_second: f64,
    /// The process's peak resident memory when the step ended (shown in the table).
    #[serde(skip)]
    pub peak_rss_after: u64,
    /// What the items were.
    #[serde(skip)]
    pub detail: String,
}

impl Step {
    fn new(name: &'static str, items: u64, seconds: f64, detail: String) -> Step {
        Step {
            name,
            items,
            seconds,
            items_per_second: if seconds > 0.0 {
                items as f64 / seconds
            } else {
                0.0
            },
            peak_rss_after: peak_rss_bytes(),
            detail,
        }
    }
}

/// What `billrun bench --format json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub accounts: usize,
    /// `sqlite` or `postgres`.
    pub store: &'static str,
    pub database_url: String,
    /// Cores the process may use (the PDF step renders on all of them).
    pub cores: usize,
    /// `release` or `debug` (figures are only meaningful for a release build).
    pub build: &'static str,
    pub steps: Vec<Step>,
    /// The process's peak resident memory over the whole run (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// The commands whose output grows with the platform, each a child process with its own
    /// peak memory (`commands.rs`).
    pub commands: Vec<commands::CommandPeak>,
    /// The floor statement's wall time.
    pub floor_seconds: f64,
    /// Invoices the floor found, and how many of them have the same totals as the invoice job's.
    pub floor_invoices: i64,
    pub floor_matching: i64,
    /// The invoice step's wall time over the floor's.
    pub invoice_to_floor_ratio: f64,
    /// Time spent flushing the store before each timed step (see [`flush_store`]), counted in
    /// no step; `None` when the store refused (PostgreSQL's `CHECKPOINT` needs a superuser or
    /// the `pg_checkpoint` role).
    pub flush_seconds: Option<f64>,
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.accounts == 0 || args.accounts > 999_999 {
        return Err(BadInput("--accounts must be between 1 and 999999".into()).into());
    }
    let url = match &args.database_url {
        Some(u) => u.clone(),
        None => billrun_demo::fresh_sqlite_file(DEFAULT_BENCH_DB)?,
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        create_pg_database(&url).await?;
    }
    let db = Db::connect_and_migrate(&url).await?;
    let (existing,): (i64,) = billrun::with_db!(&db, p => sqlx::query_as("SELECT COUNT(*) FROM accounts").fetch_one(p).await?);
    if existing > 0 {
        return Err(BadInput(format!(
            "{} already holds {existing} accounts: the bench needs an empty store (a new database name, or drop this one)",
            redact_url(&url)
        ))
        .into());
    }
    let report = bench(db.clone(), &url, args).await;
    db.close().await;
    let report = report?;
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Table => print!("{}", table(&report)),
    }
    Ok(())
}

async fn bench(db: Db, url: &str, args: &BenchArgs) -> anyhow::Result<BenchReport> {
    // The bench's own settings, whatever ./jobs and the environment say: the simulated gateway,
    // the SMTP sink, the built-in templates.
    let mut jobs_config = JobsConfig::defaults();
    jobs_config.collect.settings.gateway = GatewayChoice::Simulated;
    args.gateway_latency_ms
        .parse::<billrun::gateway::Latency>()
        .map_err(|e| billrun::config::BadInput(format!("--gateway-latency-ms: {e}")))?;
    jobs_config.collect.settings.simulated_latency = args.gateway_latency_ms.clone();
    jobs_config.collect.settings.rate_limit_per_second = args.rate_limit_per_second;
    let mut env = Env::new(db, jobs_config);
    let period = Period::previous_to(args.now);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let progress = |line: String| {
        if args.format == OutputFormat::Table {
            eprintln!("{line}");
        }
    };
    progress(format!(
        "billrun bench: {} accounts, billing {period} in {}",
        args.accounts,
        redact_url(url)
    ));

    let mut steps = Vec::new();
    let mut commands = Vec::new();
    let now_arg = args.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let child = |cmd: &[&str]| {
        let cmd: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        commands::measure(cmd, url.to_string())
    };
    let step = import_step(&env, args, period).await?;
    progress(format!(
        "  import: {} records in {:.2} s",
        step.items, step.seconds
    ));
    steps.push(step);
    // Untimed, as if a vat-check had run: the EU businesses' VAT numbers confirmed by VIES, so
    // that the invoice step reverse-charges them as the floor does.
    let confirmed = billrun_demo::record_demo_confirmations(&env, args.now).await?;
    progress(format!(
        "  {confirmed} EU business VAT numbers recorded as confirmed by VIES (no network)"
    ));

    let mut floor = floor::Floor::default();
    // The store settled before each timed step (see `flush_store`); the time it took, in all.
    let mut flushed: Option<f64> = Some(0.0);
    macro_rules! settle {
        () => {
            let f = flush_store(&env.db).await?;
            flushed = flushed.zip(f).map(|(a, b)| a + b);
        };
    }
    'steps: {
        if args.until == Until::Import {
            break 'steps;
        }
        let mut opts = RunOptions::at(args.now);
        opts.period = Some(period);
        // As the daemon runs the jobs: reports keep counts, not a view of each item.
        opts.counts_only = true;
        // The largest output of all: every invoice the month would issue, as JSON; then as
        // the table (its first rows, as they are produced, and a count of the rest).
        let period_arg = period.to_string();
        for format in ["json", "table"] {
            let c = child(&[
                "run",
                "invoice",
                "--dry-run",
                "--format",
                format,
                "--now",
                &now_arg,
                "--period",
                &period_arg,
            ])
            .await?;
            progress(format!(
                "  command `{}`: peak {}",
                c.command,
                mb(c.peak_rss_bytes)
            ));
            commands.push(c);
        }
        settle!();
        let started = Instant::now();
        // The job as cron runs it, over every account page by page, keeping counts; the few
        // invoice views it still reports (those finalized one by one) are dropped after each
        // page.
        let report = jobs::invoice::run(&env, &opts).await?;
        let seconds = started.elapsed().as_secs_f64();
        check_failures(&report)?;
        let counts: Counts = report.counts.clone();
        let invoiced = counts.get(&Count::Invoiced).copied().unwrap_or(0);
        steps.push(Step::new(
            "invoice",
            invoiced,
            seconds,
            format!("invoices ({})", describe(&counts)),
        ));
        progress(format!("  invoice: {invoiced} invoices in {seconds:.2} s"));

        settle!();
        floor = floor::run(&env.db, url, period).await?;
        progress(format!(
            "  floor: {} invoice totals in {:.2} s ({} equal to the invoice job's)",
            floor.rows, floor.seconds, floor.matching
        ));
        if args.until == Until::Invoice {
            break 'steps;
        }

        settle!();
        let started = Instant::now();
        let counts = by_ranges(
            &env,
            JobName::Collect,
            &opts,
            args.accounts,
            env.jobs.collect.settings.batch_size as usize,
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        steps.push(Step::new(
            "collect",
            counts.values().sum(),
            seconds,
            format!("invoices ({})", describe(&counts)),
        ));
        progress(format!(
            "  collect: {} invoices in {seconds:.2} s",
            counts.values().sum::<u64>()
        ));
        for cmd in [
            &["invoices", "list", "--format", "json"][..],
            &[
                "run",
                "collect",
                "--dry-run",
                "--format",
                "json",
                "--now",
                &now_arg,
            ][..],
        ] {
            let c = child(cmd).await?;
            progress(format!(
                "  command `{}`: peak {}",
                c.command,
                mb(c.peak_rss_bytes)
            ));
            commands.push(c);
        }
        if args.until == Until::Collect {
            break 'steps;
        }

        settle!();
        let started = Instant::now();
        let rendered = jobs::documents::run(&env, &opts).await?;
        anyhow::ensure!(
            rendered.failures.is_empty(),
            "the documents step failed: {:?}",
            rendered.failures
        );
        let pdfs = rendered.pdfs;
        let seconds = started.elapsed().as_secs_f64();
        steps.push(Step::new(
            "pdf",
            pdfs,
            seconds,
            format!("PDFs on {cores} core(s)"),
        ));
        progress(format!("  pdf: {pdfs} PDFs in {seconds:.2} s"));
        if args.until == Until::Pdf {
            break 'steps;
        }

        settle!();
        let sink = smtp::SmtpSink::start(!args.smtp_delayed_ack)
            .await
            .context("starting the SMTP sink")?;
        env.smtp_url = Some(Secret(sink.url()));
        let started = Instant::now();
        let mut deliver_opts = RunOptions::at(args.now);
        // Each batch's deliveries dropped once counted: flat memory whatever the outbox.
        deliver_opts.counts_only = true;
        let report = jobs::deliver::run(&env, &deliver_opts).await?;
        let seconds = started.elapsed().as_secs_f64();
        check_failures(&report)?;
        let sent = report.counts.get(&Count::Sent).copied().unwrap_or(0);
        anyhow::ensure!(
            sink.accepted() == sent,
            "the deliver job counted {sent} emails sent, the SMTP sink accepted {}",
            sink.accepted()
        );
        steps.push(Step::new(
            "deliver",
            sent,
            seconds,
            "emails to an SMTP server on loopback".into(),
        ));
        progress(format!("  deliver: {sent} emails in {seconds:.2} s"));
        drop(sink);
    }

    let invoice_seconds = steps
        .iter()
        .find(|s| s.name == "invoice")
        .map_or(0.0, |s| s.seconds);
    Ok(BenchReport {
        accounts: args.accounts,
        store: match env.db.backend() {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        },
        database_url: redact_url(url),
        cores,
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        steps,
        peak_rss_bytes: peak_rss_bytes(),
        commands,
        floor_seconds: floor.seconds,
        floor_invoices: floor.rows,
        floor_matching: floor.matching,
        invoice_to_floor_ratio: if floor.seconds > 0.0 {
            invoice_seconds / floor.seconds
        } else {
            0.0
        },
        flush_seconds: flushed,
    })
}

/// Creates the PostgreSQL database the URL names when it does not exist yet.
async fn create_pg_database(url: &str) -> anyhow::Result<()> {
    let opts = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|e| BadInput(format!("bad PostgreSQL URL `{}`: {e}", redact_url(url))))?;
    let Some(name) = opts.get_database().map(str::to_string) else {
        return Ok(());
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(BadInput(format!(
            "database name `{name}`: use letters, digits, `_` and `-`"
        ))
        .into());
    }
    let admin = opts.clone().database("postgres");
    let mut c = sqlx::PgConnection::connect_with(&admin)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact_url(url)))?;
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut c)
        .await?;
    if exists.is_none() {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut c)
            .await
            .with_context(|| format!("creating the database {name}"))?;
    }
    c.close().await.ok();
    Ok(())
}

/// Writes what the last step left in memory and in the log to the store's files before the
/// next step starts (PostgreSQL: `CHECKPOINT`; SQLite: a WAL checkpoint), so that each step
/// is timed from a settled store instead of paying for the writeback of the one before it.
/// In production the invoice job runs on usage written over a month, long since flushed;
/// here it runs a second after a bulk import of that month, and the kernel's and
/// PostgreSQL's writeback of the import measured ~12% of the invoice step at 10k accounts
/// (1.50 s against 1.71 s, four runs each). `None` when the store refuses (`CHECKPOINT`
/// needs a superuser or the `pg_checkpoint` role): the steps are then timed unsettled.
async fn flush_store(db: &Db) -> anyhow::Result<Option<f64>> {
    let started = Instant::now();
    match db {
        Db::Postgres(p) => match sqlx::query("CHECKPOINT").execute(p).await {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {
                return Ok(None);
            }
            Err(e) => return Err(anyhow::Error::new(e).context("CHECKPOINT between steps")),
        },
        Db::Sqlite(p) => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(p)
                .await
                .context("checkpointing the SQLite WAL between steps")?;
        }
    }
    Ok(Some(started.elapsed().as_secs_f64()))
}

/// Step 1: the platform, chunk by chunk, through the import code.
async fn import_step(env: &Env, args: &BenchArgs, period: Period) -> anyhow::Result<Step> {
    let mut generator =
        Generator::new(args.seed, period, args.accounts).with_app_counts(BENCH_APP_COUNTS);
    let mut seconds = 0.0;
    let mut records = 0u64;
    let import = async |kind: ImportKind, file: &str, text: String| -> anyhow::Result<f64> {
        let started = Instant::now();
        let r = import::import_text(&env.db, kind, file, &text, Format::Csv, false)
            .await
            .with_context(|| format!("importing the generated {file}"))?;
        anyhow::ensure!(
            r.rejected.is_empty() && r.inserted == r.records,
            "{file}: {} of {} records inserted",
            r.inserted,
            r.records
        );
        Ok(started.elapsed().as_secs_f64())
    };
    let catalog = generator.catalog();
    records += catalog.len() as u64;
    seconds += import(ImportKind::Catalog, "catalog.csv", catalog_csv(&catalog)?).await?;
    let (mut accounts, mut apps, mut usage, mut credits, mut methods) = (0, 0, 0, 0, 0);
    while let Some(chunk) = generator.next_chunk(IMPORT_CHUNK) {
        let (a, p, u) = (accounts_csv(&chunk)?, apps_csv(&chunk)?, usage_csv(&chunk)?);
        seconds += import(ImportKind::Accounts, "accounts.csv", a).await?;
        seconds += import(ImportKind::Apps, "apps.csv", p).await?;
        seconds += import(ImportKind::Usage, "usage.csv", u).await?;
        let started = Instant::now();
        let mut tx = env.db.begin().await?;
        for c in &chunk.credits {
            collection::add_credit(
                &mut tx,
                c.account_id.as_str(),
                c.amount_minor,
                &c.reference,
                c.at,
            )
            .await?;
        }
        for a in &chunk.accounts {
            if let Some((kind, pm)) = billrun_demo::demo_payment_method(a.id.as_str()) {
                let customer = format!("cus_bench_{}", a.id.as_str().replace('-', ""));
                collection::set_payment_method(
                    &mut tx,
                    a.id.as_str(),
                    kind,
                    &customer,
                    pm,
                    a.created_at,
                )
                .await?;
                methods += 1;
            }
        }
        tx.commit().await?;
        seconds += started.elapsed().as_secs_f64();
        accounts += chunk.accounts.len();
        apps += chunk.apps.len();
        usage += chunk.usage.len();
        credits += chunk.credits.len();
    }
    records += (accounts + apps + usage + credits + methods) as u64;
    // PostgreSQL's planner statistics of the tables the import filled, as autovacuum would
    // have made them in production (it is off on this machine): without them the month's
    // queries are planned blind. Only those tables: autovacuum leaves a table that did not
    // change alone, and statistics taken of an empty table (payment attempts, say) plan it as
    // empty while it fills: the collect step slowed down tenfold at 100k accounts that way.
    // (SQLite plans these queries well without statistics, and its floor statement badly with
    // them: ANALYZE made it seven times slower.)
    let started = Instant::now();
    if let Db::Postgres(p) = &env.db {
        sqlx::query(
            "ANALYZE catalog_prices, accounts, apps, usage_records, credit_ledger, payment_methods",
        )
        .execute(p)
        .await
        .context("analyzing the imported tables")?;
    }
    seconds += started.elapsed().as_secs_f64();
    Ok(Step::new(
        "import",
        records,
        seconds,
        format!(
            "records: {} prices, {accounts} accounts, {apps} apps, {usage} usage records, {credits} credits, {methods} payment methods",
            catalog.len()
        ),
    ))
}

fn csv_text(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(1 << 20));
    w.write_record(header)?;
    for r in rows {
        w.write_record(&r)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn catalog_csv(prices: &[billrun::model::PriceEntry]) -> anyhow::Result<String> {
    csv_text(
        import::columns(ImportKind::Catalog),
        prices.iter().map(|p| {
            vec![
                p.kind.as_str().to_string(),
                p.item.clone(),
                p.hourly_price.normalize().to_string(),
                p.monthly_cap
                    .map(|c| c.normalize().to_string())
                    .unwrap_or_default(),
                "EUR".to_string(),
                p.effective_from.to_string(),
            ]
        }),
    )
}

fn accounts_csv(p: &DemoPlatform) -> anyhow::Result<String> {
    csv_text(
        import::columns(ImportKind::Accounts),
        p.accounts.iter().map(|a| {
            vec![
                a.id.to_string(),
                a.email.clone(),
                a.name.clone(),
                a.company.clone().unwrap_or_default(),
                a.address.clone(),
                a.country.clone(),
                a.vat_number.clone().unwrap_or_default(),
                a.language.as_str().to_string(),
                time(a.created_at),
                a.referred_by
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
                a.siren.clone().unwrap_or_default(),
                a.electronic_address
                    .as_ref()
                    .map(|e| e.id.clone())
                    .unwrap_or_default(),
                a.electronic_address
                    .as_ref()
                    .map(|e| e.scheme.clone())
                    .unwrap_or_default(),
            ]
        }),
    )
}

fn apps_csv(p: &DemoPlatform) -> anyhow::Result<String> {
    csv_text(
        import::columns(ImportKind::Apps),
        p.apps
            .iter()
            .map(|a| vec![a.id.to_string(), a.name.clone(), a.account_id.to_string()]),
    )
}

fn usage_csv(p: &DemoPlatform) -> anyhow::Result<String> {
    csv_text(
        import::columns(ImportKind::Usage),
        p.usage.iter().map(|u| {
            vec![
                u.id.clone(),
                u.app_id.to_string(),
                u.kind.as_str().to_string(),
                u.item.clone(),
                u.quantity.to_string(),
                time(u.started_at),
                u.ended_at.map(time).unwrap_or_default(),
            ]
        }),
    )
}

/// Runs a job over the accounts in ranges of `batch` (`acc-000001`…: the generator's ids),
/// dropping each range's report once counted. Any failure stops the bench.
async fn by_ranges(
    env: &Env,
    job: JobName,
    base: &RunOptions,
    accounts: usize,
    batch: usize,
) -> anyhow::Result<Counts> {
    let mut counts = Counts::new();
    let batch = batch.max(1);
    for from in (0..accounts).step_by(batch) {
        let to = (from + batch).min(accounts);
        let mut opts = base.clone();
        opts.range = Some((format!("acc-{:06}", from + 1), format!("acc-{to:06}")));
        let report = jobs::run(env, job, &opts).await?;
        check_failures(&report)?;
        for (k, v) in report.counts {
            *counts.entry(k).or_default() += v;
        }
    }
    Ok(counts)
}

fn check_failures(report: &JobReport) -> anyhow::Result<()> {
    if let Some(f) = report.failures.first() {
        anyhow::bail!(
            "{}: {} failure(s), the first: {}: {}",
            report.job.as_str(),
            report.failures.len(),
            f.item,
            f.error
        );
    }
    Ok(())
}

fn describe(counts: &Counts) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{v} {}", k.as_str().replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The process's peak resident memory (`VmHWM` in /proc/self/status), 0 where there is none.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

fn table(r: &BenchReport) -> String {
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .map(|s| {
            vec![
                s.name.to_string(),
                s.items.to_string(),
                format!("{:.2}", s.seconds),
                format!("{:.0}", s.items_per_second),
                mb(s.peak_rss_after),
                s.detail.clone(),
            ]
        })
        .collect();
    let mut out = format!(
        "billrun bench: {} accounts, {} ({}), {} core(s), {} build\n\n",
        r.accounts, r.database_url, r.store, r.cores, r.build
    );
    out.push_str(&billrun::views::table(
        &[
            "STEP",
            "ITEMS",
            "SECONDS",
            "ITEMS/S",
            "PEAK RSS",
            "ITEMS ARE",
        ],
        &rows,
    ));
    out.push('\n');
    if !r.commands.is_empty() {
        let rows: Vec<Vec<String>> = r
            .commands
            .iter()
            .map(|c| {
                vec![
                    format!("billrun {}", c.command),
                    format!("{:.2}", c.seconds),
                    mb(c.peak_rss_bytes),
                    c.exit_code.to_string(),
                ]
            })
            .collect();
        out.push_str(&billrun::views::table(
            &["COMMAND (ITS OWN PROCESS)", "SECONDS", "PEAK RSS", "EXIT"],
            &rows,
        ));
        out.push('\n');
    }
    out.push_str(&format!(
        "floor (one INSERT … SELECT … GROUP BY): {} invoice totals in {:.2} s, {} equal to the invoice job's\n",
        r.floor_invoices, r.floor_seconds, r.floor_matching
    ));
    out.push_str(&format!(
        "invoice step / floor: {:.1}×\n",
        r.invoice_to_floor_ratio
    ));
    out.push_str(&match r.flush_seconds {
        Some(s) => format!("store flushed before each timed step: {s:.2} s in all, in no step\n"),
        None => "store not flushed between steps (CHECKPOINT refused: needs a superuser or pg_checkpoint)\n".into(),
    });
    out.push_str(&format!("peak resident memory: {}\n", mb(r.peak_rss_bytes)));
    out
}
