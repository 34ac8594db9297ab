//! The `delete` job: works through the account-deletion queue (confirmed requests, and accounts
//! suspended past their grace period).
//!
//! Each category (`core::deletion::CATEGORIES`, in order) is removed in batches of
//! `batch_size`; every batch commits its rows and its count in `deletion_progress` together,
//! so a crash anywhere loses nothing and the next run resumes with exact counts. The Stripe
//! customer is deleted through the API (idempotent: "already gone" counts as done) before the
//! rows naming it. Invoices, their lines, payment records and the credit ledger are kept
//! (French law: accounting documents, 10 years), stripped of what an invoice does not require.
//! The last step, in one transaction: the farewell email is queued, personal data stripped, the
//! deletion marked complete. The queue row and the progress rows stay: the deletion record.
//!
//! That step waits while an email the account must receive is still unsent
//! (`core::deletion::pending_email`: the invoices, receipts and deletion notices; not dunning):
//! the address stays, the run counts the account as `waiting_for_emails` and lists what it
//! waits for, and a later run — once the deliver job has sent them, or they failed for good —
//! resumes the deletion there. Other pending emails are cancelled by the stripping.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use super::{Count, Env, Failure, JobName, JobReport, RunOptions};
use crate::core::deletion::{CATEGORIES, Category, WaitingEmail, emails_to_wait_for};
use crate::core::email::EmailKind;
use crate::gateway::{DeleteCustomerError, OperatorError};
use crate::store::accounts;
use crate::store::deletion::{self, QueueRow};
use crate::store::outbox::{self, NewEmail};

/// Environment variable for fault-injection tests: abort the process (a real crash, no
/// cleanup) after this many committed batches.
pub const CRASH_AFTER_BATCHES_ENV: &str = "BILLRUN_TEST_CRASH_AFTER_BATCHES";

#[derive(Debug, Clone, Serialize)]
pub struct CategoryCount {
    pub category: Category,
    /// Removed (or, in a dry-run, to remove).
    pub count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeletionItem {
    pub account_id: String,
    /// `request` or `non_payment`.
    pub reason: String,
    pub queued_at: DateTime<Utc>,
    /// True when an earlier run had started it (resumed after a crash or a failure).
    pub resumed: bool,
    pub categories: Vec<CategoryCount>,
    /// Emails the account must receive before its address is stripped, not sent yet: the
    /// deletion waits for them (in a dry-run: would wait).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_for_emails: Vec<WaitingEmail>,
    pub outcome: DeletionOutcome,
}

/// What the delete job did (or would do) with one account's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionOutcome {
    /// A dry-run: what it would delete.
    Planned,
    /// Every category deleted.
    Deleted,
    /// All but the personal data: the address waits for emails to be sent.
    WaitingForEmails,
    /// Stopped for a shutdown: the next run resumes it.
    Stopped,
    /// Stopped by an error: the next run resumes it.
    Failed,
}

impl DeletionOutcome {
    /// The outcome's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            DeletionOutcome::Planned => "planned",
            DeletionOutcome::Deleted => "deleted",
            DeletionOutcome::WaitingForEmails => "waiting_for_emails",
            DeletionOutcome::Stopped => "stopped",
            DeletionOutcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for DeletionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DeletionItem {
    /// One line for the table output.
    pub fn line(&self) -> String {
        let counts: Vec<String> = self
            .categories
            .iter()
            .map(|c| format!("{} {}", c.category.as_str(), c.count))
            .collect();
        let waiting: Vec<String> = self
            .waiting_for_emails
            .iter()
            .map(|e| format!("{} {} ({})", e.count, e.kind, e.status))
            .collect();
        format!(
            "account {} ({}{}): {}: {}{}",
            self.account_id,
            self.reason,
            if self.resumed { ", resumed" } else { "" },
            self.outcome,
            counts.join(", "),
            if waiting.is_empty() {
                String::new()
            } else {
                format!("; waiting for emails to be sent: {}", waiting.join(", "))
            }
        )
    }
}

pub async fn run(env: &Env, opts: &RunOptions) -> anyhow::Result<JobReport> {
    let mut report = JobReport::new(JobName::Delete, opts);
    let queue: Vec<QueueRow> = deletion::pending(&env.db)
        .await?
        .into_iter()
        .filter(|q| {
            opts.accounts.is_empty() || opts.accounts.iter().any(|a| a.as_str() == q.account_id)
        })
        .filter(|q| q.queued_at <= opts.now)
        .collect();
    if queue.is_empty() {
        return Ok(report);
    }
    let gateway = if opts.dry_run {
        None
    } else {
        let g = super::collect::build_gateway(env)?;
        report.gateway = Some(g.label());
        Some(g)
    };
    let mut crash = Crash::from_env();
    for q in queue {
        if opts.stop.requested() {
            // A deletion in hand finishes its current batch only; the next run resumes it.
            report.stop_early();
            break;
        }
        let mut item = DeletionItem {
            account_id: q.account_id.clone(),
            reason: q.reason.clone(),
            queued_at: q.queued_at,
            resumed: q.started_at.is_some(),
            categories: Vec::new(),
            waiting_for_emails: Vec::new(),
            outcome: DeletionOutcome::Planned,
        };
        match &gateway {
            None => {
                for c in CATEGORIES {
                    let count = deletion::remaining(&env.db, &q.account_id, *c).await?;
                    item.categories.push(CategoryCount {
                        category: *c,
                        count: match c {
                            Category::StripeCustomer => count.min(1),
                            _ => count,
                        },
                    });
                }
                item.waiting_for_emails =
                    emails_to_wait_for(deletion::emails_by_status(&env.db, &q.account_id).await?);
                report.bump(if item.waiting_for_emails.is_empty() {
                    Count::WouldDelete
                } else {
                    Count::WouldWaitForEmails
                });
            }
            Some(g) => match delete_account(env, g, &q, opts.now, &mut crash, &opts.stop).await {
                Ok(Ended::Stopped) => {
                    item.outcome = DeletionOutcome::Stopped;
                    report.stop_early();
                }
                Ok(Ended::Deleted(counts)) => {
                    info!(account.id = %q.account_id, reason = %q.reason, "account data deleted");
                    item.categories = counts;
                    item.outcome = DeletionOutcome::Deleted;
                    report.bump(Count::Deleted);
                }
                Ok(Ended::WaitingForEmails(counts, waiting)) => {
                    let kinds: Vec<&str> = waiting.iter().map(|e| e.kind.as_str()).collect();
                    info!(account.id = %q.account_id, reason = %q.reason, emails = ?kinds,
                        "account data deleted but the personal data: waiting for emails to be sent");
                    item.categories = counts;
                    item.waiting_for_emails = waiting;
                    item.outcome = DeletionOutcome::WaitingForEmails;
                    report.bump(Count::WaitingForEmails);
                }
                // A wrong key is wrong for every account (issue 19): the run stops, exits 3,
                // and the next run resumes this deletion where it stopped.
                Err(e) if e.downcast_ref::<OperatorError>().is_some() => return Err(e),
                Err(e) => {
                    warn!(account.id = %q.account_id, error = %format!("{e:#}"), "account deletion stopped; the next run resumes it");
                    report.failures.push(Failure {
                        item: format!("account {}", q.account_id),
                        error: format!("{e:#}"),
                    });
                    item.outcome = DeletionOutcome::Failed;
                }
            },
        }
        report.deletions.push(item);
    }
    Ok(report)
}

/// Counts batches and aborts the process when the fault-injection variable says so.
struct Crash {
    after: Option<u64>,
    batches: u64,
}

impl Crash {
    fn from_env() -> Crash {
        Crash {
            after: std::env::var(CRASH_AFTER_BATCHES_ENV)
                .ok()
                .and_then(|v| v.parse().ok()),
            batches: 0,
        }
    }

    fn committed(&mut self) {
        self.batches += 1;
        if self.after.is_some_and(|n| self.batches >= n) {
            eprintln!(
                "fault injection: aborting after {} committed batches",
                self.batches
            );
            std::process::abort();
        }
    }
}

/// How a run left one account's deletion.
enum Ended {
    /// Complete, with the counts per category.
    Deleted(Vec<CategoryCount>),
    /// Every category but the personal data is done (the counts so far); the address stays
    /// until these emails are sent or failed for good.
    WaitingForEmails(Vec<CategoryCount>, Vec<WaitingEmail>),
    /// Stopped for a shutdown between batches.
    Stopped,
}

async fn delete_account(
    env: &Env,
    gateway: &crate::gateway::Gateway,
    q: &QueueRow,
    now: DateTime<Utc>,
    crash: &mut Crash,
    stop: &super::Stop,
) -> anyhow::Result<Ended> {
    let account = q.account_id.as_str();
    let batch = i64::from(env.jobs.delete.settings.batch_size);
    let mut tx = env.db.begin().await?;
    deletion::start(&mut tx, account, now).await?;
    tx.commit().await?;

    let done: Vec<String> = deletion::progress(&env.db, account)
        .await?
        .into_iter()
        .filter(|p| p.completed_at.is_some())
        .map(|p| p.category)
        .collect();
    for &category in CATEGORIES {
        if done.iter().any(|d| d == category.as_str()) {
            continue;
        }
        if stop.requested() {
            return Ok(Ended::Stopped);
        }
        match category {
            Category::Deployments
            | Category::Activity
            | Category::Aliases
            | Category::Certificates
            | Category::Domains
            | Category::PaymentMethods => loop {
                let mut tx = env.db.begin().await?;
                let n = deletion::delete_batch(&mut tx, account, category, batch).await?;
                let finished = n < batch;
                deletion::add_progress(&mut tx, account, category, n, finished.then_some(now))
                    .await?;
                tx.commit().await?;
                crash.committed();
                if finished {
                    break;
                }
            },
            Category::StripeCustomer => {
                let customer = deletion::stripe_customer(&env.db, account).await?;
                let n = match &customer {
                    Some(c) => {
                        gateway.delete_customer(c).await.map_err(|e| {
                            let e = match e {
                                DeleteCustomerError::Operator(op) => anyhow::Error::new(op),
                                DeleteCustomerError::Failed(m) => anyhow::anyhow!(m),
                            };
                            e.context(format!("deleting the Stripe customer of account {account}"))
                        })?;
                        1
                    }
                    None => 0,
                };
                let mut tx = env.db.begin().await?;
                deletion::add_progress(&mut tx, account, category, n, Some(now)).await?;
                tx.commit().await?;
                crash.committed();
            }
            Category::Apps => loop {
                let mut tx = env.db.begin().await?;
                let n = deletion::delete_apps_batch(
                    &mut tx,
                    account,
                    batch,
                    now,
                    "owner's data deleted",
                )
                .await?;
                let finished = n < batch;
                deletion::add_progress(&mut tx, account, category, n, finished.then_some(now))
                    .await?;
                tx.commit().await?;
                crash.committed();
                if finished {
                    break;
                }
            },
            Category::PersonalData => {
                let mut tx = env.db.begin().await?;
                let waiting =
                    emails_to_wait_for(deletion::emails_by_status(&mut tx, account).await?);
                if !waiting.is_empty() {
                    tx.rollback().await?;
                    return Ok(Ended::WaitingForEmails(
                        counts(env, account).await?,
                        waiting,
                    ));
                }
                farewell(&mut tx, q, now).await?;
                let n = deletion::strip_personal_data(&mut tx, account).await?;
                deletion::add_progress(&mut tx, account, category, n, Some(now)).await?;
                deletion::complete(&mut tx, account, now).await?;
                tx.commit().await?;
                crash.committed();
            }
        }
    }
    Ok(Ended::Deleted(counts(env, account).await?))
}

/// The counts recorded so far, per category in order.
async fn counts(env: &Env, account: &str) -> anyhow::Result<Vec<CategoryCount>> {
    let counts = deletion::progress(&env.db, account).await?;
    Ok(CATEGORIES
        .iter()
        .map(|c| CategoryCount {
            category: *c,
            count: counts
                .iter()
                .find(|p| p.category == c.as_str())
                .map_or(0, |p| p.deleted),
        })
        .collect())
}

/// The "account deleted" email, queued before the profile is stripped (it carries the name
/// and address it needs).
async fn farewell(
    tx: &mut crate::store::Tx,
    q: &QueueRow,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let Some(a) = accounts::get_account(&mut *tx, &q.account_id).await? else {
        anyhow::bail!("account {} is gone from the store", q.account_id);
    };
    if a.email.is_empty() {
        return Ok(());
    }
    outbox::enqueue(
        tx,
        &NewEmail {
            account_id: &q.account_id,
            kind: EmailKind::AccountDeleted,
            dedupe_key: format!("account_deleted:{}", q.account_id),
            language: a.language,
            to_address: &a.email,
            invoice_id: None,
            data: serde_json::json!({
                "account_name": a.name,
                "deleted_at": now.date_naive().to_string(),
                "reason": q.reason,
            }),
            at: now,
        },
    )
    .await?;
    Ok(())
}
