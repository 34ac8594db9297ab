//! The jobs, registered in one list. Each job takes its "now" from the caller, loads what it
//! needs, calls the pure core and stores the result; `dry_run` computes the same and writes
//! nothing.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::JobsConfig;
use crate::core::document::Invoice;
use crate::core::ids::AccountId;
use crate::core::period::Period;
use crate::store::Db;

pub mod collect;
mod count;
pub mod delete;
pub mod deliver;
pub mod documents;
pub mod hds;
pub mod invoice;
pub mod suspend;
pub mod vat_check;

pub use count::{Count, Counts};

/// Every job billrun runs. Adding a job: a file here, a variant, and a `jobs/<name>.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum JobName {
    Invoice,
    Collect,
    Suspend,
    Hds,
    Delete,
    Deliver,
    /// Asks VIES about the EU business accounts' VAT numbers (`jobs/vat-check.toml`).
    #[serde(rename = "vat-check")]
    VatCheck,
}

/// The registry, in the order a monthly cycle runs them (VIES checks first: the invoice job's
/// reverse charge rests on them).
pub const ALL_JOBS: &[JobName] = &[
    JobName::VatCheck,
    JobName::Invoice,
    JobName::Collect,
    JobName::Suspend,
    JobName::Hds,
    JobName::Delete,
    JobName::Deliver,
];

impl JobName {
    pub fn as_str(self) -> &'static str {
        match self {
            JobName::Invoice => "invoice",
            JobName::Collect => "collect",
            JobName::Suspend => "suspend",
            JobName::Hds => "hds",
            JobName::Delete => "delete",
            JobName::Deliver => "deliver",
            JobName::VatCheck => "vat-check",
        }
    }
}

/// How a run was asked for.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub now: DateTime<Utc>,
    pub period: Option<Period>,
    pub accounts: Vec<AccountId>,
    pub dry_run: bool,
    /// Only accounts with ids in this inclusive range (a scale-out batch; invoice and collect).
    pub range: Option<(String, String)>,
    /// Set on shutdown: jobs finish the batch (or item) in hand and return.
    pub stop: Stop,
    /// Where long runs report their progress (a progress bar on a terminal; nothing under cron).
    pub progress: Progress,
    /// The report keeps counts, failures and notes, not a view of each invoice, collection or
    /// delivery: set by the daemon, which logs a summary. Otherwise a scheduled run over every
    /// account would hold every issued invoice's view until it ends.
    pub counts_only: bool,
    /// Takes the invoices' views from the report as the invoice job goes, batch by batch, in
    /// order (`billrun run invoice --format json` spools them), so that the report never holds
    /// them all.
    pub invoice_sink: InvoiceSink,
}

/// See [`RunOptions::invoice_sink`]; none by default (the report keeps the views).
#[derive(Clone, Default)]
pub struct InvoiceSink(
    pub Option<std::sync::Arc<dyn Fn(Vec<crate::core::document::Invoice>) + Send + Sync>>,
);

impl std::fmt::Debug for InvoiceSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "InvoiceSink(on)"
        } else {
            "InvoiceSink(off)"
        })
    }
}

impl RunOptions {
    pub fn at(now: DateTime<Utc>) -> RunOptions {
        RunOptions {
            now: crate::core::period::whole_seconds(now),
            period: None,
            accounts: Vec::new(),
            dry_run: false,
            range: None,
            stop: Stop::default(),
            progress: Progress::default(),
            counts_only: false,
            invoice_sink: InvoiceSink::default(),
        }
    }

    /// Whether the account is in the run's range (always, without one).
    pub fn in_range(&self, account: &str) -> bool {
        self.range
            .as_ref()
            .is_none_or(|(first, last)| account >= first.as_str() && account <= last.as_str())
    }
}

/// A shutdown request shared by the daemon and the jobs it runs.
#[derive(Debug, Clone, Default)]
pub struct Stop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Stop {
    pub fn request(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Receives a run's progress: how many items in all, how many done.
pub trait ProgressSink: Send + Sync {
    fn total(&self, items: u64);
    fn advance(&self, items: u64);
}

#[derive(Clone, Default)]
pub struct Progress(pub Option<std::sync::Arc<dyn ProgressSink>>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(on)"
        } else {
            "Progress(off)"
        })
    }
}

impl Progress {
    pub fn total(&self, items: u64) {
        if let Some(p) = &self.0 {
            p.total(items);
        }
    }

    pub fn advance(&self, items: u64) {
        if let Some(p) = &self.0 {
            p.advance(items);
        }
    }
}

/// The note a job adds when it stops early for a shutdown.
pub const STOPPED_NOTE: &str =
    "stopped early by a shutdown request: the rest is left for the next run";

/// What the jobs run against.
#[derive(Debug, Clone)]
pub struct Env {
    pub db: Db,
    pub jobs: JobsConfig,
    /// `STRIPE_SECRET_KEY`; never logged.
    pub stripe_key: Option<Secret>,
    /// `BILLRUN_ENVIRONMENT=production` (or the collect job's `production` setting).
    pub production: bool,
    /// `BILLRUN_SMTP_URL`, over the deliver job's `smtp_url`; its password is never logged.
    pub smtp_url: Option<Secret>,
    /// An operator's edited copy of `templates/email` (`BILLRUN_TEMPLATES_DIR`).
    pub templates_dir: Option<std::path::PathBuf>,
    /// The Stripe request bucket every job of the process shares (collect and delete).
    pub stripe_limiter: std::sync::Arc<crate::gateway::RateLimiter>,
}

impl Env {
    pub fn new(db: Db, jobs: JobsConfig) -> Env {
        let rate = jobs.collect.settings.rate_limit_per_second;
        Env {
            db,
            jobs,
            stripe_key: None,
            production: false,
            smtp_url: None,
            templates_dir: None,
            stripe_limiter: std::sync::Arc::new(crate::gateway::RateLimiter::new(rate)),
        }
    }
}

/// A secret that does not show in logs or debug output.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One item a job could not process, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    pub item: String,
    pub error: String,
}

/// What a run did (or, in a dry-run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub job: JobName,
    pub dry_run: bool,
    pub now: DateTime<Utc>,
    pub period: Option<String>,
    pub counts: Counts,
    /// Written as their JSON views.
    #[serde(serialize_with = "crate::views::serialize_invoices")]
    pub invoices: Vec<Invoice>,
    /// The collect job: what it did (or would do) per invoice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<collect::CollectionItem>,
    /// The deliver job: what it did (or would do) per email.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<deliver::DeliveryItem>,
    /// The suspend job: transitions made (or planned).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lifecycle: Vec<suspend::LifecycleItem>,
    /// The hds job: reminders sent (or planned).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hds: Vec<hds::HdsItem>,
    /// The delete job: deletions done (or planned), with counts per category.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deletions: Vec<delete::DeletionItem>,
    /// The vat-check job: each account's VIES answer (or, in a dry-run, the accounts it would
    /// ask about).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vat_checks: Vec<vat_check::VatCheckItem>,
    /// The payment gateway used: `stripe` or `simulated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<&'static str>,
    pub failures: Vec<Failure>,
    pub notes: Vec<String>,
    /// True when the run stopped early for a shutdown (the rest is left for the next run).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

impl JobReport {
    pub fn new(job: JobName, opts: &RunOptions) -> JobReport {
        JobReport {
            job,
            dry_run: opts.dry_run,
            now: opts.now,
            period: None,
            counts: Counts::new(),
            invoices: Vec::new(),
            collections: Vec::new(),
            deliveries: Vec::new(),
            lifecycle: Vec::new(),
            hds: Vec::new(),
            deletions: Vec::new(),
            vat_checks: Vec::new(),
            gateway: None,
            failures: Vec::new(),
            notes: Vec::new(),
            stopped: false,
        }
    }

    /// Records an early stop for a shutdown.
    pub fn stop_early(&mut self) {
        if !self.stopped {
            self.stopped = true;
            self.notes.push(STOPPED_NOTE.to_string());
        }
    }

    pub fn bump(&mut self, key: Count) {
        *self.counts.entry(key).or_default() += 1;
    }

    /// One line: what ran and what it did.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, v)| format!("{v} {}", k.as_str().replace('_', " ")))
            .collect();
        format!(
            "{}{}{}{}: {}{}",
            self.job.as_str(),
            match self.gateway {
                Some("simulated") => " [simulated gateway]",
                _ => "",
            },
            self.period
                .as_ref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default(),
            if self.dry_run {
                " (dry-run: nothing written)"
            } else {
                ""
            },
            if counts.is_empty() {
                "nothing to do".to_string()
            } else {
                counts.join(", ")
            },
            if self.failures.is_empty() {
                String::new()
            } else {
                format!(", {} failed", self.failures.len())
            },
        )
    }
}

pub async fn run(env: &Env, job: JobName, opts: &RunOptions) -> anyhow::Result<JobReport> {
    match job {
        // The invoices committed, then their PDFs (the documents step), over the same accounts.
        JobName::Invoice => {
            let mut report = invoice::run(env, opts).await?;
            if !report.stopped {
                documents::run(env, opts).await?.add_to(&mut report);
            }
            Ok(report)
        }
        JobName::Collect => collect::run(env, opts).await,
        JobName::Suspend => suspend::run(env, opts).await,
        JobName::Hds => hds::run(env, opts).await,
        JobName::Delete => delete::run(env, opts).await,
        JobName::Deliver => deliver::run(env, opts).await,
        JobName::VatCheck => vat_check::run(env, opts).await,
    }
}
