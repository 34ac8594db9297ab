//! The command line: `billrun <command>`. Stable: operators' scripts depend on it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{BadInput, JobsConfig};
use crate::core::ids::AccountId;
use crate::core::period::Period;
use crate::import::{ImportKind, Rejected};
use crate::jobs::{self, Env, JobName, RunOptions};
use crate::store::invoice_document;
use crate::store::invoices::{self, InvoiceStatus, ListFilter};
use crate::store::{DEFAULT_DATABASE_URL, Db, accounts, collection, events};
use crate::views::{self, InvoiceView};

/// Exit codes: 0 done; 1 the job ran but some items failed; 2 bad usage, config or input;
/// 3 could not run (store unreachable, I/O error).
pub const EXIT_ITEMS_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_CANNOT_RUN: u8 = 3;
/// A deletion request or confirmation the account's state does not allow (apps owned, invoices
/// owed, a wrong, used or expired token).
pub const EXIT_REFUSED: u8 = 4;
/// Not run: another run of the job holds the claim (without `--wait`).
pub const EXIT_BUSY: u8 = 5;

#[derive(Debug, Parser)]
#[command(
    name = "billrun",
    version,
    about = "Batch billing and account-lifecycle jobs for a PaaS"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "BILLRUN_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub global_store: GlobalStoreArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// `--database-url` and `--jobs-dir` before the subcommand (`billrun --database-url URL
/// invoices list`). They are global: clap hands a value given here to the subcommand's own
/// `StoreArgs` (same ids), where a value given after the subcommand wins. No default and no
/// environment variable here, so that the subcommand's own (and the demo's refusal of
/// `BILLRUN_DATABASE_URL`) stay as they are; read the subcommand's `StoreArgs`, not these.
#[derive(Debug, Args, Clone)]
pub struct GlobalStoreArgs {
    /// postgres://… or sqlite://FILE: the store (BILLRUN_DATABASE_URL, default
    /// sqlite://billrun.db), before or after the subcommand.
    #[arg(
        long = "database-url",
        id = "database_url",
        value_name = "DATABASE_URL",
        global = true
    )]
    pub database_url: Option<String>,
    /// Directory of the jobs' files (BILLRUN_JOBS_DIR, default ./jobs, else built-in), before
    /// or after the subcommand.
    #[arg(
        long = "jobs-dir",
        id = "jobs_dir",
        value_name = "JOBS_DIR",
        global = true
    )]
    pub jobs_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// postgres://… (production) or sqlite://FILE (embedded; created when missing).
    #[arg(long, env = "BILLRUN_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Directory of the jobs' schedule and settings files (default: ./jobs, else built-in).
    #[arg(long, env = "BILLRUN_JOBS_DIR")]
    pub jobs_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the store's schema.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Import accounts, apps, catalog prices, usage, deployments, aliases, domains or
    /// certificates from a CSV (with header) or NDJSON file.
    Import {
        #[arg(value_enum)]
        kind: ImportKind,
        file: PathBuf,
        /// Import the valid records and report each rejected line, instead of importing nothing.
        #[arg(long)]
        skip_invalid: bool,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Run a job now (or at --now), as cron or an operator would.
    Run(RunArgs),
    /// Run the enabled jobs on their schedules until SIGTERM/SIGINT, with /healthz and /metrics.
    Daemon(DaemonArgs),
    /// Each job: schedule, next fire time, last run and its result.
    Jobs {
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The history of runs, newest first, with counts and errors.
    Runs {
        #[arg(long, value_enum)]
        job: Option<JobName>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Invoices.
    #[command(subcommand)]
    Invoices(InvoicesCommand),
    /// Accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Apps (the dashboard calls this when an owner deletes or transfers one).
    #[command(subcommand)]
    App(AppCommand),
    /// Prepaid credit (bought through PayPal, outside billrun).
    #[command(subcommand)]
    Credit(CreditCommand),
    /// The account's default payment method (the dashboard calls this).
    #[command(subcommand, name = "payment-method")]
    PaymentMethod(PaymentMethodCommand),
    /// Seed a realistic platform in a fresh embedded database and run a month of jobs on it.
    Demo(DemoArgs),
    /// Bill a large synthetic platform and time each step of the monthly cycle.
    Bench(crate::bench::BenchArgs),
    /// Tax returns from the invoices: the OSS return, the French VAT return (read-only).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Exports for the accountant and a tax audit: the FEC ledger (read-only).
    #[command(subcommand)]
    Export(ExportCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OssFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The quarter's OSS return: per member state and rate, the taxable amount and VAT of the
    /// invoices issued to EU consumers (article 369 sexies of Directive 2006/112/EC).
    Oss {
        /// The quarter: 2026-Q4.
        #[arg(long)]
        quarter: crate::core::tax_returns::Quarter,
        #[arg(long, value_enum, default_value_t = OssFormat::Table)]
        format: OssFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The month's figures for the French VAT return (form 3310-CA3), from the invoices issued
    /// in it.
    Vat {
        /// The month: 2026-10.
        #[arg(long)]
        period: Period,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FecFormatArg {
    /// The FEC: tab-separated `<SIREN>FEC<YYYYMMDD>.txt` (article A47 A-1 of the LPF).
    Fec,
    /// The same entries as CSV, for accounting software.
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The year's ledger as a FEC (article A47 A-1 of the Livre des procédures fiscales).
    Fec {
        /// The financial year (the calendar year, closing on 31 December).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1970..=9998))]
        year: i32,
        /// The directory to write `<SIREN>FEC<YYYY>1231.txt` into.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[arg(long, value_enum, default_value_t = FecFormatArg::Fec)]
        format: FecFormatArg,
        /// The chart of accounts (default: accounting.toml in the jobs directory, else built-in).
        #[arg(long)]
        accounting: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CreditCommand {
    /// Record a credit purchase; idempotent by reference (the PayPal transaction id).
    Add {
        #[arg(long)]
        account: String,
        /// In euros: 50.00
        #[arg(long, value_parser = amount_arg)]
        amount: String,
        #[arg(long, value_parser = reference_arg)]
        reference: String,
        /// The clock (RFC 3339): when it was bought, and when owed invoices are charged;
        /// default: now. `--at` is the older name.
        #[arg(long = "now", visible_alias = "at", value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        /// Only record the credit; leave owed invoices to the next collect run.
        #[arg(long)]
        no_charge: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The balance and its history.
    Show {
        #[arg(long)]
        account: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodKind {
    Card,
    #[value(name = "sepa_debit")]
    SepaDebit,
}

#[derive(Debug, Subcommand)]
pub enum PaymentMethodCommand {
    /// Set the default payment method; the account's owed invoices are charged to it at once
    /// (seeds: "the new payment method will be charged right away"), through the collect job.
    Set {
        #[arg(long)]
        account: String,
        #[arg(long, value_enum)]
        kind: MethodKind,
        #[arg(long, value_parser = reference_arg)]
        stripe_customer: String,
        #[arg(long, value_parser = reference_arg)]
        stripe_payment_method: String,
        /// The clock (RFC 3339): when it was set, and when owed invoices are charged; default:
        /// now. `--at` is the older name.
        #[arg(long = "now", visible_alias = "at", value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        /// Only record the method; leave owed invoices to the next collect run.
        #[arg(long)]
        no_charge: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

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

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Address of /healthz and /metrics.
    #[arg(long, env = "BILLRUN_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,
    /// Seconds to wait for the runs in hand after SIGTERM/SIGINT before exiting anyway.
    #[arg(long, default_value_t = 60)]
    pub shutdown_timeout: u64,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum InvoicesCommand {
    /// List invoices.
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        period: Option<Period>,
        #[arg(long, value_parser = parse_status)]
        status: Option<InvoiceStatus>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write an invoice's PDF (the document stored when it was finalized).
    Pdf {
        key: String,
        /// Where to write it.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one invoice by number (2026-000001) or id.
    Show {
        key: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Show an account and its timeline.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The designated healthcare data (HDS) point of contact; designating counts as a review.
    #[command(name = "hds-contact", subcommand)]
    HdsContact(HdsContactCommand),
    /// Ask for the account's deletion: refused while it owns apps or owes anything; otherwise
    /// bills the usage not billed yet, collects it at once and, once nothing is due, emails a
    /// confirmation token (exit code 4 when refused).
    #[command(name = "request-deletion")]
    RequestDeletion {
        id: String,
        /// The clock (RFC 3339); default: now.
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Confirm a deletion with the emailed token: deactivates the account and queues the
    /// deletion of its data (exit code 4 for a wrong, used or expired token).
    #[command(name = "confirm-deletion")]
    ConfirmDeletion {
        id: String,
        token: String,
        /// The clock (RFC 3339); default: now.
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Record that the HDS point of contact was reviewed (stops the reminders for 12 months).
    #[command(name = "hds-review")]
    HdsReview {
        id: String,
        /// When (RFC 3339); default: now.
        #[arg(long, value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Record that the owner deleted the app (or transferred it away): its running usage ends,
    /// the platform is told, and it no longer blocks the account's deletion.
    Delete {
        id: String,
        /// The clock (RFC 3339); default: now. `--at` is the older name.
        #[arg(long = "now", visible_alias = "at", value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum HdsContactCommand {
    /// Designate or replace the contact.
    Set {
        id: String,
        #[arg(long, value_parser = name_arg)]
        name: String,
        #[arg(long, value_parser = email_arg)]
        email: String,
        #[arg(long, value_parser = phone_arg)]
        phone: String,
        /// When (RFC 3339); default: now.
        #[arg(long, value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the generated platform: the same seed gives the same platform and invoices.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of accounts to generate.
    #[arg(long, default_value_t = 240)]
    pub accounts: usize,
    /// The demo's clock; the month before it is billed.
    #[arg(long, value_parser = parse_time, default_value = "2026-11-01T06:00:00Z")]
    pub now: DateTime<Utc>,
    /// Where to seed (default: a fresh sqlite://billrun-demo.db; this flag ignores
    /// BILLRUN_DATABASE_URL on purpose, so a demo never seeds a production store).
    #[arg(long)]
    pub database_url: Option<String>,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| crate::core::period::whole_seconds(t.with_timezone(&Utc)))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time such as 2026-11-01T06:00:00Z ({e})"))
}

/// Parses the command line as `Cli::parse` does, except that a value clap quotes back in an
/// error is cut to `bounds::MAX_QUOTED_CHARS` (a 10 MB argument never gives 10 MB of stderr).
pub fn parse_args() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version: printed as they are.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            for line in e.render().to_string().lines() {
                eprintln!("{}", shorten_quoted(line));
            }
            std::process::exit(e.exit_code());
        }
    }
}

/// `line` with each `'…'`-quoted part (how clap quotes a value) longer than
/// `MAX_QUOTED_CHARS` cut, and the whole line at most ten times that.
fn shorten_quoted(line: &str) -> String {
    use crate::core::bounds::{MAX_QUOTED_CHARS, excerpt, excerpt_to};
    let parts: Vec<String> = line
        .split('\'')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 && part.chars().count() > MAX_QUOTED_CHARS {
                excerpt(part)
            } else {
                part.to_string()
            }
        })
        .collect();
    excerpt_to(&parts.join("'"), 10 * MAX_QUOTED_CHARS)
}

/// A text argument within its bounds (README "Input bounds"): one line, no control character,
/// at most `max_chars` characters; a bad value is quoted in part.
fn bounded_text(s: &str, max_chars: usize) -> Result<String, String> {
    use crate::core::bounds::excerpt;
    if s.chars().count() > max_chars {
        return Err(format!(
            "`{}` is longer than {max_chars} characters",
            excerpt(s)
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "`{}` contains a line break or control character",
            excerpt(s)
        ));
    }
    Ok(s.to_string())
}

fn reference_arg(s: &str) -> Result<String, String> {
    bounded_text(s, crate::core::bounds::MAX_REFERENCE_CHARS)
}

fn name_arg(s: &str) -> Result<String, String> {
    bounded_text(s, crate::core::bounds::MAX_NAME_CHARS)
}

fn phone_arg(s: &str) -> Result<String, String> {
    bounded_text(s, crate::core::bounds::MAX_PHONE_CHARS)
}

fn email_arg(s: &str) -> Result<String, String> {
    bounded_text(s, crate::core::bounds::MAX_EMAIL_CHARS)
}

/// An amount in euros of at most `MAX_AMOUNT_MINOR` cents (checked before it is converted to
/// cents, which could not hold a larger one).
fn amount_arg(s: &str) -> Result<String, String> {
    use crate::core::bounds::{MAX_AMOUNT_MINOR, excerpt};
    let max = rust_decimal::Decimal::new(MAX_AMOUNT_MINOR, 2);
    match s.trim().parse::<rust_decimal::Decimal>() {
        Ok(d) if d > max => Err(format!(
            "`{}` is above the maximum of {max} EUR",
            excerpt(s)
        )),
        Ok(_) => Ok(s.to_string()),
        Err(_) => Err(format!("`{}` is not a decimal amount", excerpt(s))),
    }
}

fn parse_status(s: &str) -> Result<InvoiceStatus, String> {
    InvoiceStatus::parse(s)
        .ok_or_else(|| format!("`{s}` is not a status: open, pending, paid or unpaid"))
}

async fn env(store: &StoreArgs) -> anyhow::Result<Env> {
    let jobs = JobsConfig::load(store.jobs_dir.as_deref())?;
    let db = Db::connect_and_migrate(&store.database_url).await?;
    let mut env = Env::new(db, jobs);
    env.stripe_key = std::env::var("STRIPE_SECRET_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .map(jobs::Secret);
    env.production = std::env::var("BILLRUN_ENVIRONMENT").is_ok_and(|v| v == "production");
    env.smtp_url = std::env::var("BILLRUN_SMTP_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(jobs::Secret);
    env.templates_dir = std::env::var_os("BILLRUN_TEMPLATES_DIR").map(PathBuf::from);
    Ok(env)
}

/// The account, or a bad-input error naming it.
/// Charges what the account owes at once, through the collect job for that one account (seeds:
/// a new payment method or new credit "will be charged right away"), and prints each outcome.
/// An operator's Stripe error is returned (exit 3); a customer's decline is printed, and the
/// command still succeeds: the method or the credit was recorded.
async fn charge_owed_now(env: &Env, account: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut opts = RunOptions::at(now);
    opts.accounts = vec![crate::core::ids::AccountId(account.to_string())];
    let report = jobs::run(env, JobName::Collect, &opts)
        .await
        .context("recorded, but charging the owed invoices failed; the next collect run retries")?;
    if report.collections.is_empty() {
        println!("nothing owed: no charge");
    }
    for c in &report.collections {
        let how = match c.method.as_deref() {
            Some("credit") | None => "prepaid credit".to_string(),
            Some(m) => m.replace('_', " "),
        };
        let what = match c.outcome.as_str() {
            "succeeded" => format!(
                "paid: {} EUR by {how}, {} EUR of credit",
                c.charge, c.credit_applied
            ),
            "processing" => format!("{} EUR by {how}: processing", c.charge),
            "failed" => format!(
                "not paid: {} EUR by {how} declined ({})",
                c.charge,
                c.decline_code.as_deref().unwrap_or("declined")
            ),
            "unknown" => format!(
                "{} EUR by {how}: no conclusive answer, settled by the next collect run",
                c.charge
            ),
            "carried_forward" => format!(
                "{} EUR left is below the €0.50 minimum: carried to the next invoice",
                c.carried_forward
            ),
            "waived" => format!(
                "{} EUR left is below the €0.50 minimum: waived",
                c.waived.as_deref().unwrap_or("0.00")
            ),
            other => other.to_string(),
        };
        println!("invoice {}: {what}", c.invoice_number);
    }
    for f in &report.failures {
        println!("{}: {}", f.item, f.error);
    }
    Ok(())
}

async fn require_account(db: &Db, id: &str) -> anyhow::Result<crate::store::accounts::AccountRow> {
    Ok(accounts::get_account(db, id).await?.ok_or_else(|| {
        BadInput(format!(
            "unknown account `{}`",
            crate::core::bounds::excerpt(id)
        ))
    })?)
}

/// The invoice by number or id, or a bad-input error naming it.
async fn require_invoice(db: &Db, key: &str) -> anyhow::Result<crate::store::invoices::InvoiceRow> {
    Ok(invoices::find(db, key).await?.ok_or_else(|| {
        BadInput(format!(
            "no invoice `{}`",
            crate::core::bounds::excerpt(key)
        ))
    })?)
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Migrate { store } => {
            let db = Db::connect(&store.database_url).await?;
            db.migrate().await?;
            println!("migrated {}", crate::store::redact_url(&store.database_url));
        }
        Command::Import {
            kind,
            file,
            skip_invalid,
            format,
            store,
        } => {
            let env = env(&store).await?;
            let report = match crate::import::import_file(&env.db, kind, &file, skip_invalid).await
            {
                Ok(r) => r,
                Err(e) => {
                    if let Some(rej) = e.downcast_ref::<Rejected>() {
                        for l in &rej.errors {
                            eprintln!("{l}");
                        }
                    }
                    return Err(e);
                }
            };
            match format {
                OutputFormat::Json => print_json(&report)?,
                OutputFormat::Table => {
                    for l in &report.rejected {
                        eprintln!("rejected {l}");
                    }
                    println!(
                        "{}: {} record(s): {} imported, {} updated, {} unchanged, {} rejected",
                        report.file,
                        report.records,
                        report.inserted,
                        report.updated,
                        report.unchanged,
                        report.rejected_records
                    );
                }
            }
            if !report.rejected.is_empty() {
                return Ok(ExitCode::from(EXIT_ITEMS_FAILED));
            }
        }
        Command::Run(args) => {
            let env = env(&args.store).await?;
            let mut opts = RunOptions::at(args.now.unwrap_or_else(Utc::now));
            opts.period = args.period;
            opts.accounts = args.accounts.iter().map(|a| AccountId(a.clone())).collect();
            opts.dry_run = args.dry_run;
            // An unknown --account is bad input, refused before a run is claimed: a typo
            // never shows as a failed run in `job_runs`.
            let known =
                accounts::existing_account_ids(&env.db, args.accounts.iter().map(String::as_str))
                    .await?;
            if let Some(a) = args.accounts.iter().find(|a| !known.contains(a.as_str())) {
                return Err(BadInput(format!(
                    "--account: unknown account `{}`",
                    crate::core::bounds::excerpt(a)
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
                    if !report.invoices.is_empty() {
                        if report.invoices.len() <= 50 {
                            print!("{}", views::invoice_table(&report.invoices));
                        } else {
                            println!(
                                "({} invoices: see them with --format json or `billrun invoices list`)",
                                report.invoices.len()
                            );
                        }
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
        }
        Command::Invoices(InvoicesCommand::List {
            account,
            period,
            status,
            format,
            store,
        }) => {
            let env = env(&store).await?;
            let filter = ListFilter {
                account,
                period,
                status,
            };
            if let OutputFormat::Json = format {
                // Streamed, a page at a time (issue 25: memory grew with the platform).
                let out = std::io::BufWriter::new(std::io::stdout());
                views::write_invoice_list_json(&env.db, &filter, 500, out).await?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows = invoices::list(&env.db, &filter).await?;
            let mut all = Vec::with_capacity(rows.len());
            for r in &rows {
                all.push(invoice_document::load(&env.db, r).await?);
            }
            print!("{}", views::invoice_table(&all));
        }
        Command::Invoices(InvoicesCommand::Pdf { key, output, store }) => {
            let env = env(&store).await?;
            let row = require_invoice(&env.db, &key).await?;
            let (pdf, sha) = crate::store::documents::get(&env.db, row.id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("invoice {} has no stored document", row.number))?;
            std::fs::write(&output, &pdf)
                .with_context(|| format!("writing {}", output.display()))?;
            println!(
                "{}: invoice {} ({} bytes, sha256 {sha})",
                output.display(),
                row.number,
                pdf.len()
            );
        }
        Command::Invoices(InvoicesCommand::Show { key, format, store }) => {
            let env = env(&store).await?;
            let row = require_invoice(&env.db, &key).await?;
            let inv = invoice_document::load(&env.db, &row).await?;
            match format {
                OutputFormat::Json => print_json(&InvoiceView::of(&inv))?,
                OutputFormat::Table => print!("{}", views::invoice_text(&inv)),
            }
        }
        Command::Account(AccountCommand::Show { id, format, store }) => {
            let env = env(&store).await?;
            let acc = require_account(&env.db, &id).await?;
            let apps = accounts::apps_of(&env.db, &id).await?;
            let timeline = events::timeline(&env.db, &id).await?;
            match format {
                OutputFormat::Json => print_json(&serde_json::json!({
                    "id": acc.id, "email": acc.email, "name": acc.name, "company": acc.company,
                    "address": acc.address, "country": acc.country, "vat_number": acc.vat_number,
                    "language": acc.language, "created_at": acc.created_at, "referred_by": acc.referred_by,
                    "status": acc.status,
                    "apps": apps.iter().map(|a| serde_json::json!({"id": a.id, "name": a.name})).collect::<Vec<_>>(),
                    "timeline": timeline,
                }))?,
                OutputFormat::Table => {
                    println!("Account {}  ({})", acc.id, acc.status);
                    println!(
                        "{} <{}>{}",
                        acc.name,
                        acc.email,
                        acc.company
                            .as_ref()
                            .map(|c| format!(", {c}"))
                            .unwrap_or_default()
                    );
                    println!(
                        "{}, {}{}",
                        acc.address,
                        acc.country,
                        acc.vat_number
                            .as_ref()
                            .map(|v| format!(", VAT {v}"))
                            .unwrap_or_default()
                    );
                    println!(
                        "language {}, created {}{}",
                        acc.language,
                        acc.created_at.to_rfc3339(),
                        acc.referred_by
                            .as_ref()
                            .map(|r| format!(", referred by {r}"))
                            .unwrap_or_default()
                    );
                    println!(
                        "apps: {}",
                        if apps.is_empty() {
                            "none".to_string()
                        } else {
                            apps.iter()
                                .map(|a| format!("{} ({})", a.name, a.id))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    );
                    println!();
                    let rows: Vec<Vec<String>> = timeline
                        .iter()
                        .map(|e| vec![e.at.to_rfc3339(), e.kind.clone(), e.message.clone()])
                        .collect();
                    print!("{}", views::table(&["AT", "EVENT", "MESSAGE"], &rows));
                }
            }
        }
        Command::Credit(CreditCommand::Add {
            account,
            amount,
            reference,
            at,
            no_charge,
            store,
        }) => {
            let env = env(&store).await?;
            let minor = crate::core::money::parse_major(&amount)
                .map_err(|e| BadInput(format!("--amount: {e}")))?;
            if minor <= 0 {
                return Err(BadInput(format!("--amount: `{amount}` must be positive")).into());
            }
            if reference.trim().is_empty() {
                return Err(BadInput("--reference must not be empty".into()).into());
            }
            require_account(&env.db, &account).await?;
            let at = at.unwrap_or_else(|| crate::core::period::whole_seconds(Utc::now()));
            let mut tx = env.db.begin().await?;
            let added = collection::add_credit(&mut tx, &account, minor, &reference, at).await?;
            if added {
                events::record(
                    &mut tx,
                    &account,
                    at,
                    "credit.purchased",
                    None,
                    &format!(
                        "Prepaid credit of {} EUR bought ({reference})",
                        crate::core::money::format_minor(minor)
                    ),
                )
                .await?;
            }
            tx.commit().await?;
            let balance = collection::credit_balance(&env.db, &account).await?;
            println!(
                "{}: balance {} EUR",
                if added {
                    "credit recorded"
                } else {
                    "already recorded (same reference): nothing changed"
                },
                crate::core::money::format_minor(balance)
            );
            if added && !no_charge {
                charge_owed_now(&env, &account, at).await?;
            }
        }
        Command::Credit(CreditCommand::Show {
            account,
            format,
            store,
        }) => {
            let env = env(&store).await?;
            require_account(&env.db, &account).await?;
            let balance = collection::credit_balance(&env.db, &account).await?;
            let ledger = collection::ledger(&env.db, &account).await?;
            match format {
                OutputFormat::Json => print_json(&serde_json::json!({
                    "account_id": account,
                    "balance": crate::core::money::format_minor(balance),
                    "currency": "EUR",
                    "history": ledger.iter().map(|l| serde_json::json!({
                        "at": l.at, "kind": l.kind, "amount": crate::core::money::format_minor(l.amount_minor),
                        "reference": l.reference, "invoice_id": l.invoice_id,
                        "balance_after": crate::core::money::format_minor(l.balance_after_minor),
                    })).collect::<Vec<_>>(),
                }))?,
                OutputFormat::Table => {
                    println!(
                        "Prepaid credit of {account}: {} EUR",
                        crate::core::money::format_minor(balance)
                    );
                    let rows: Vec<Vec<String>> = ledger
                        .iter()
                        .map(|l| {
                            vec![
                                l.at.to_rfc3339(),
                                l.kind.clone(),
                                crate::core::money::format_minor(l.amount_minor),
                                crate::core::money::format_minor(l.balance_after_minor),
                                l.reference.clone(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        views::table(&["AT", "KIND", "AMOUNT", "BALANCE", "REFERENCE"], &rows)
                    );
                }
            }
        }
        Command::PaymentMethod(PaymentMethodCommand::Set {
            account,
            kind,
            stripe_customer,
            stripe_payment_method,
            at,
            no_charge,
            store,
        }) => {
            let env = env(&store).await?;
            let row = require_account(&env.db, &account).await?;
            if kind == MethodKind::SepaDebit {
                crate::core::collection::sepa_debit_allowed(&row.country).map_err(|why| {
                    BadInput(format!("--kind sepa_debit for account `{account}`: {why}"))
                })?;
            }
            if !stripe_customer.starts_with("cus_") {
                return Err(BadInput(format!(
                    "--stripe-customer: `{stripe_customer}` is not a Stripe customer id (cus_…)"
                ))
                .into());
            }
            if !stripe_payment_method.starts_with("pm_") {
                return Err(BadInput(format!("--stripe-payment-method: `{stripe_payment_method}` is not a Stripe payment method id (pm_…)")).into());
            }
            let kind = match kind {
                MethodKind::Card => "card",
                MethodKind::SepaDebit => "sepa_debit",
            };
            let at = at.unwrap_or_else(|| crate::core::period::whole_seconds(Utc::now()));
            let mut tx = env.db.begin().await?;
            let changed = collection::set_payment_method(
                &mut tx,
                &account,
                kind,
                &stripe_customer,
                &stripe_payment_method,
                at,
            )
            .await?;
            if changed {
                events::record(
                    &mut tx,
                    &account,
                    at,
                    "payment_method.set",
                    None,
                    &format!("Default payment method set: {kind}"),
                )
                .await?;
            }
            tx.commit().await?;
            println!(
                "{}",
                if changed {
                    "payment method set"
                } else {
                    "same payment method: nothing changed"
                }
            );
            if changed && !no_charge {
                charge_owed_now(&env, &account, at).await?;
            }
        }
        Command::Account(AccountCommand::HdsContact(HdsContactCommand::Set {
            id,
            name,
            email,
            phone,
            at,
            store,
        })) => {
            let env = env(&store).await?;
            require_account(&env.db, &id).await?;
            if name.trim().is_empty() || phone.trim().is_empty() {
                return Err(BadInput("--name and --phone must not be empty".into()).into());
            }
            if email.parse::<lettre::Address>().is_err() {
                return Err(BadInput(format!("--email: `{email}` is not an email address")).into());
            }
            let at = at.unwrap_or_else(|| crate::core::period::whole_seconds(Utc::now()));
            let mut tx = env.db.begin().await?;
            crate::store::hds::set(&mut tx, &id, &name, &email, &phone, at).await?;
            events::record(
                &mut tx,
                &id,
                at,
                "hds.contact_set",
                None,
                &format!("HDS point of contact designated: {name}"),
            )
            .await?;
            tx.commit().await?;
            println!(
                "HDS point of contact of {id}: {name} <{email}>, {phone} (reviewed {})",
                at.format("%Y-%m-%d")
            );
        }
        Command::Account(AccountCommand::HdsReview { id, at, store }) => {
            let env = env(&store).await?;
            let at = at.unwrap_or_else(|| crate::core::period::whole_seconds(Utc::now()));
            let mut tx = env.db.begin().await?;
            if !crate::store::hds::review(&mut tx, &id, at).await? {
                return Err(BadInput(format!("account `{id}` has no HDS point of contact: set one with `billrun account hds-contact set`")).into());
            }
            events::record(
                &mut tx,
                &id,
                at,
                "hds.contact_reviewed",
                None,
                "HDS point of contact reviewed",
            )
            .await?;
            tx.commit().await?;
            println!(
                "HDS point of contact of {id} reviewed on {}",
                at.format("%Y-%m-%d")
            );
        }
        Command::Account(AccountCommand::RequestDeletion {
            id,
            now,
            format,
            store,
        }) => {
            let env = env(&store).await?;
            let now = now.unwrap_or_else(|| crate::core::period::whole_seconds(Utc::now()));
            let report = crate::closing::request(&env, &id, now).await?;
            match format {
                OutputFormat::Json => print_json(&report)?,
                OutputFormat::Table => {
                    if !report.final_invoices.is_empty() {
                        println!("Final invoice(s):");
                        print!("{}", views::invoice_table(&report.final_invoices));
                    }
                    for w in &report.waived_balances {
                        println!("waived (below the €0.50 minimum, account closing): {w}");
                    }
                    match &report.outcome {
                        crate::closing::RequestOutcome::ConfirmationSent { expires_at } => {
                            println!(
                                "nothing is due: a confirmation email was queued for account {id}; its token is valid until {}",
                                expires_at.to_rfc3339()
                            )
                        }
                        crate::closing::RequestOutcome::AwaitingPayment { invoices } => {
                            let list: Vec<String> = invoices
                                .iter()
                                .map(|i| {
                                    format!(
                                        "{} ({}, {} EUR due)",
                                        i.number,
                                        i.status,
                                        crate::core::money::format_minor(i.amount_due_minor)
                                    )
                                })
                                .collect();
                            println!(
                                "the final invoice could not be collected yet: {}; request the deletion again once it is paid",
                                list.join(", ")
                            );
                        }
                    }
                }
            }
            if let crate::closing::RequestOutcome::AwaitingPayment { .. } = report.outcome {
                return Ok(ExitCode::from(EXIT_REFUSED));
            }
        }
        Command::Account(AccountCommand::ConfirmDeletion {
            id,
            token,
            now,
            store,
        }) => {
            let env = env(&store).await?;
            let now = now.unwrap_or_else(|| crate::core::period::whole_seconds(Utc::now()));
            crate::closing::confirm(&env, &id, &token, now).await?;
            println!("account {id} deactivated; its data is queued for deletion (the delete job)");
        }
        Command::App(AppCommand::Delete { id, at, store }) => {
            let env = env(&store).await?;
            let at = at.unwrap_or_else(|| crate::core::period::whole_seconds(Utc::now()));
            if crate::closing::delete_app(&env, &id, at).await? {
                println!("app {id} deleted");
            } else {
                println!("app {id} was already deleted: nothing changed");
            }
        }
        Command::Daemon(args) => {
            let env = env(&args.store).await?;
            crate::daemon::run(
                env,
                crate::daemon::DaemonOptions {
                    listen: args.listen,
                    shutdown_timeout: std::time::Duration::from_secs(args.shutdown_timeout),
                },
            )
            .await?;
        }
        Command::Jobs { format, store } => {
            let env = env(&store).await?;
            let now = crate::core::period::whole_seconds(Utc::now());
            let mut rows = Vec::new();
            for job in jobs::ALL_JOBS {
                let meta = env.jobs.meta(job.as_str()).expect("every job has a file");
                let next = crate::core::schedule::Schedule::parse(meta.schedule)
                    .ok()
                    .and_then(|s| s.next_after(now));
                let last = crate::store::runs::list(&env.db, Some(job.as_str()), 1)
                    .await?
                    .into_iter()
                    .next();
                rows.push(serde_json::json!({
                    "job": job.as_str(),
                    "enabled": meta.enabled,
                    "schedule": meta.schedule,
                    "next_fire_at": if meta.enabled { next } else { None },
                    "last_run": last,
                }));
            }
            match format {
                OutputFormat::Json => print_json(&rows)?,
                OutputFormat::Table => {
                    let table: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| {
                            let last = &r["last_run"];
                            vec![
                                r["job"].as_str().unwrap_or("").to_string(),
                                if r["enabled"] == true {
                                    "yes".into()
                                } else {
                                    "no".into()
                                },
                                r["schedule"].as_str().unwrap_or("").to_string(),
                                r["next_fire_at"].as_str().unwrap_or("-").to_string(),
                                if last.is_null() {
                                    "never".to_string()
                                } else {
                                    format!(
                                        "#{} {} {}: {}",
                                        last["id"],
                                        last["status"].as_str().unwrap_or(""),
                                        last["started_at"].as_str().unwrap_or(""),
                                        last["summary"]
                                            .as_str()
                                            .or(last["error"].as_str())
                                            .unwrap_or("")
                                    )
                                },
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        views::table(
                            &["JOB", "ENABLED", "SCHEDULE (UTC)", "NEXT FIRE", "LAST RUN"],
                            &table
                        )
                    );
                }
            }
        }
        Command::Runs {
            job,
            limit,
            format,
            store,
        } => {
            let env = env(&store).await?;
            let rows =
                crate::store::runs::list(&env.db, job.map(JobName::as_str), limit.max(1)).await?;
            match format {
                OutputFormat::Json => print_json(&rows)?,
                OutputFormat::Table => {
                    let table: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| {
                            vec![
                                r.id.to_string(),
                                r.job.clone(),
                                r.trigger.clone(),
                                r.scheduled_at.map_or("-".into(), |t| t.to_rfc3339()),
                                r.status.clone(),
                                r.started_at.to_rfc3339(),
                                r.finished_at.map_or("-".into(), |t| t.to_rfc3339()),
                                r.owner.clone(),
                                r.error.clone().or(r.summary.clone()).unwrap_or_default(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        views::table(
                            &[
                                "ID",
                                "JOB",
                                "TRIGGER",
                                "TICK",
                                "STATUS",
                                "STARTED",
                                "FINISHED",
                                "OWNER",
                                "SUMMARY / ERROR"
                            ],
                            &table
                        )
                    );
                }
            }
        }
        Command::Demo(args) => {
            crate::demo::run(&args).await.context("demo")?;
        }
        Command::Bench(args) => {
            crate::bench::run(&args).await.context("bench")?;
        }
        Command::Report(ReportCommand::Oss {
            quarter,
            format,
            store,
        }) => {
            let env = env(&store).await?;
            let view =
                crate::reports::OssView::of(&crate::reports::oss_return(&env.db, quarter).await?);
            match format {
                OssFormat::Table => print!("{}", view.table()),
                OssFormat::Json => print_json(&view)?,
                OssFormat::Csv => print!("{}", view.csv()?),
            }
        }
        Command::Report(ReportCommand::Vat {
            period,
            format,
            store,
        }) => {
            let env = env(&store).await?;
            let view =
                crate::reports::VatView::of(&crate::reports::vat_return(&env.db, period).await?);
            match format {
                OutputFormat::Table => print!("{}", view.table()),
                OutputFormat::Json => print_json(&view)?,
            }
        }
        Command::Export(ExportCommand::Fec {
            year,
            output,
            format,
            accounting,
            store,
        }) => {
            let env = env(&store).await?;
            let (chart, chart_name) =
                crate::reports::load_chart(accounting.as_deref(), env.jobs.dir.as_deref())?;
            let format = match format {
                FecFormatArg::Fec => crate::reports::FecFormat::Fec,
                FecFormatArg::Csv => crate::reports::FecFormat::Csv,
            };
            let done = crate::reports::export_fec(
                &env.db,
                &chart,
                chart_name,
                &env.jobs.invoice.settings.seller.siren,
                year,
                &output,
                format,
            )
            .await?;
            println!(
                "{}: {} entries, {} lines, debit {} = credit {} EUR (chart of accounts: {})",
                done.path.display(),
                done.entries,
                done.lines,
                done.debit,
                done.credit,
                done.chart
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Maps an error to its exit code: bad input and configuration give 2, the rest 3.
pub fn exit_code_for(e: &anyhow::Error) -> u8 {
    if e.chain()
        .any(|c| c.downcast_ref::<crate::runner::Busy>().is_some())
    {
        return EXIT_BUSY;
    }
    if e.chain()
        .any(|c| c.downcast_ref::<crate::closing::Refused>().is_some())
    {
        return EXIT_REFUSED;
    }
    if e.downcast_ref::<BadInput>().is_some() || e.downcast_ref::<Rejected>().is_some() {
        return EXIT_BAD_INPUT;
    }
    if e.chain().any(|c| {
        c.downcast_ref::<BadInput>().is_some()
            || c.downcast_ref::<crate::core::pricing::PricingError>()
                .is_some()
    }) {
        return EXIT_BAD_INPUT;
    }
    EXIT_CANNOT_RUN
}

/// `billrun run` outside a dry-run: claims the run (a scheduled tick with `--scheduled`), waits
/// or joins when another run holds it, records it. `None`: the tick already ran elsewhere.
async fn claimed_run(
    env: &Env,
    args: &RunArgs,
    opts: &mut RunOptions,
) -> anyhow::Result<Option<jobs::JobReport>> {
    use crate::runner::{self, Claim, Trigger};
    let job = args.job;
    if args.join {
        runner::check_join(&env.db, job)?;
    }
    let tick = if args.scheduled {
        let meta = env.jobs.meta(job.as_str()).expect("every job has a file");
        let schedule = crate::core::schedule::Schedule::parse(meta.schedule).map_err(BadInput)?;
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
