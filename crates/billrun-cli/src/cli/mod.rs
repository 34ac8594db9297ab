//! The command line: `billrun <command>`. Stable: operators' scripts depend on it.
//!
//! This file holds the root of the clap tree, the exit codes, what the commands share (opening
//! the store, printing JSON, finding an account or an invoice) and the dispatch; each command
//! (or group of subcommands) has its own module with its arguments and what it does.

mod account;
mod app;
mod charge;
mod credit;
mod credit_notes;
mod daemon;
mod export;
mod import;
mod invoices;
mod parse;
mod payment;
mod payment_method;
mod report;
mod run;
mod status;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use billrun::config::{BadInput, JobsConfig};
use billrun::import::{ImportKind, Rejected};
use billrun::jobs::{self, Env, JobName};

use billrun::store::{DEFAULT_DATABASE_URL, Db, accounts};

pub use account::{AccountCommand, HdsContactCommand};
pub use app::AppCommand;
pub use billrun_demo::DemoArgs;
pub use credit::CreditCommand;
pub use credit_notes::CreditNotesCommand;
pub use daemon::DaemonArgs;
pub use export::{ExportCommand, FecFormatArg};
pub use invoices::InvoicesCommand;
pub use payment::PaymentCommand;
pub use payment_method::{MethodKind, PaymentMethodCommand};
pub use report::{OssFormat, ReportCommand};
pub use run::RunArgs;
pub use webhooks::WebhooksCommand;

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

pub use billrun::views::OutputFormat;

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
    /// Credit notes (avoirs), issued by `invoices credit-note`.
    #[command(subcommand, name = "credit-notes")]
    CreditNotes(CreditNotesCommand),
    /// Accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Apps (the dashboard calls this when an owner deletes or transfers one).
    #[command(subcommand)]
    App(AppCommand),
    /// Prepaid credit (bought through PayPal, outside billrun).
    #[command(subcommand)]
    Credit(CreditCommand),
    /// Payments: disputes (chargebacks).
    #[command(subcommand)]
    Payment(PaymentCommand),
    /// The account's default payment method (the dashboard calls this).
    #[command(subcommand, name = "payment-method")]
    PaymentMethod(PaymentMethodCommand),
    /// Seed a realistic platform in a fresh embedded database and run a month of jobs on it.
    Demo(DemoArgs),
    /// Bill a large synthetic platform and time each step of the monthly cycle.
    Bench(billrun_bench::BenchArgs),
    /// Tax returns from the invoices: the OSS return, the French VAT return (read-only).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Exports for the accountant and a tax audit: the FEC ledger (read-only).
    #[command(subcommand)]
    Export(ExportCommand),
    /// Stripe's webhook events: replay an export from Stripe's dashboard.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
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
    use billrun::core::bounds::{MAX_QUOTED_CHARS, excerpt, excerpt_to};
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

/// The store (migrated) and the jobs' files a command works with, and the secrets and settings
/// the environment gives (Stripe key, SMTP URL, templates, production).
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
async fn require_account(
    db: &Db,
    id: &str,
) -> anyhow::Result<billrun::store::accounts::AccountRow> {
    Ok(accounts::get_account(db, id).await?.ok_or_else(|| {
        BadInput(format!(
            "unknown account `{}`",
            billrun::core::bounds::excerpt(id)
        ))
    })?)
}

/// The invoice by number or id, or a bad-input error naming it.
async fn require_invoice(
    db: &Db,
    key: &str,
) -> anyhow::Result<billrun::store::invoices::InvoiceRow> {
    billrun::store::invoices::require(db, key).await
}

/// `v` as pretty-printed JSON on stdout (`--format json`).
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
            println!(
                "migrated {}",
                billrun::store::redact_url(&store.database_url)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            kind,
            file,
            skip_invalid,
            format,
            store,
        } => import::run(kind, file, skip_invalid, format, store).await,
        Command::Run(args) => run::run(args).await,
        Command::Daemon(args) => daemon::run(args).await,
        Command::Jobs { format, store } => status::jobs(format, store).await,
        Command::Runs {
            job,
            limit,
            format,
            store,
        } => status::runs(job, limit, format, store).await,
        Command::Invoices(cmd) => invoices::run(cmd).await,
        Command::CreditNotes(cmd) => credit_notes::run(cmd).await,
        Command::Payment(cmd) => payment::run(cmd).await,
        Command::Account(cmd) => account::run(cmd).await,
        Command::App(cmd) => app::run(cmd).await,
        Command::Credit(cmd) => credit::run(cmd).await,
        Command::PaymentMethod(cmd) => payment_method::run(cmd).await,
        Command::Demo(args) => {
            billrun_demo::run(&args).await.context("demo")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            billrun_bench::run(&args).await.context("bench")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(cmd) => report::run(cmd).await,
        Command::Export(cmd) => export::run(cmd).await,
        Command::Webhooks(cmd) => webhooks::run(cmd).await,
    }
}

/// Maps an error to its exit code: bad input and configuration give 2, the rest 3.
pub fn exit_code_for(e: &anyhow::Error) -> u8 {
    if e.chain()
        .any(|c| c.downcast_ref::<billrun::runner::Busy>().is_some())
    {
        return EXIT_BUSY;
    }
    if e.chain()
        .any(|c| c.downcast_ref::<billrun::closing::Refused>().is_some())
    {
        return EXIT_REFUSED;
    }
    if e.downcast_ref::<BadInput>().is_some() || e.downcast_ref::<Rejected>().is_some() {
        return EXIT_BAD_INPUT;
    }
    if e.chain().any(|c| {
        c.downcast_ref::<BadInput>().is_some()
            || c.downcast_ref::<billrun::core::pricing::PricingError>()
                .is_some()
    }) {
        return EXIT_BAD_INPUT;
    }
    EXIT_CANNOT_RUN
}
