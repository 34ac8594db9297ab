//! The `suspend` job: suspends accounts whose last scheduled retry failed, from the day after
//! the invoice's due date (apps stopped for the platform, owner told; `core::lifecycle`),
//! reactivates them when everything due is paid, sends the final warning before data deletion
//! and queues the deletion after the grace period.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::info;

use super::{Count, Env, Failure, JobName, JobReport, RunOptions};
use crate::core::email::EmailKind;
use crate::core::lifecycle::{DebtState, LifecycleAction, Policy, decide};
use crate::core::money::format_minor;
use crate::core::timeline::TimelineKind;
use crate::store::lifecycle::{self, DebtRow};
use crate::store::outbox::{self, NewEmail};
use crate::store::{Tx, accounts, events};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LifecycleItem {
    pub account_id: String,
    pub owes: String,
    #[serde(flatten)]
    pub action: LifecycleAction,
    pub outcome: LifecycleOutcome,
}

/// What the suspend job did (or would do) with one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleOutcome {
    /// A dry-run: the transition it would make.
    Planned,
    /// The transition was made.
    Done,
    /// Another run changed the account first.
    Skipped,
    /// The transition could not be made.
    Failed,
}

impl LifecycleOutcome {
    /// The outcome's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleOutcome::Planned => "planned",
            LifecycleOutcome::Done => "done",
            LifecycleOutcome::Skipped => "skipped",
            LifecycleOutcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for LifecycleOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub async fn run(env: &Env, opts: &RunOptions) -> anyhow::Result<JobReport> {
    let mut report = JobReport::new(JobName::Suspend, opts);
    let s = &env.jobs.suspend.settings;
    let policy = Policy {
        grace_days: s.grace_days,
        warning_days: s.warning_days,
    };
    for row in lifecycle::candidates(&env.db).await? {
        if opts.stop.requested() {
            report.stop_early();
            break;
        }
        if !opts.accounts.is_empty() && !opts.accounts.iter().any(|a| a.as_str() == row.id) {
            continue;
        }
        let state = DebtState {
            suspended_at: row.suspended_at,
            deletion_warning_at: row.deletion_warning_at,
            owes: row.owes,
            exhausted_due_at: row.exhausted_due_at,
            queued_for_deletion: row.queued,
        };
        let action = decide(&state, opts.now, policy);
        if action == LifecycleAction::Nothing {
            continue;
        }
        let mut item = LifecycleItem {
            account_id: row.id.clone(),
            owes: format_minor(row.owes),
            action,
            outcome: LifecycleOutcome::Planned,
        };
        if opts.dry_run {
            report.bump(planned(action));
            report.lifecycle.push(item);
            continue;
        }
        match apply(env, &row, action, opts.now).await {
            Ok(true) => {
                info!(account.id = %row.id, action = name(action), "lifecycle transition");
                report.bump(done(action));
                item.outcome = LifecycleOutcome::Done;
            }
            Ok(false) => item.outcome = LifecycleOutcome::Skipped,
            Err(e) => {
                report.failures.push(Failure {
                    item: format!("account {}", row.id),
                    error: format!("{e:#}"),
                });
                item.outcome = LifecycleOutcome::Failed;
            }
        }
        report.lifecycle.push(item);
    }
    Ok(report)
}

fn name(a: LifecycleAction) -> &'static str {
    match a {
        LifecycleAction::Suspend { .. } => "suspend",
        LifecycleAction::Reactivate => "reactivate",
        LifecycleAction::WarnDeletion { .. } => "warn",
        LifecycleAction::QueueDeletion => "queue_deletion",
        LifecycleAction::Nothing => "nothing",
    }
}

/// The count of a transition planned in a dry-run.
fn planned(a: LifecycleAction) -> Count {
    match a {
        LifecycleAction::Suspend { .. } => Count::WouldSuspend,
        LifecycleAction::Reactivate => Count::WouldReactivate,
        LifecycleAction::WarnDeletion { .. } => Count::WouldWarn,
        LifecycleAction::QueueDeletion => Count::WouldQueueDeletion,
        LifecycleAction::Nothing => Count::Unchanged,
    }
}

/// The count of a transition made.
fn done(a: LifecycleAction) -> Count {
    match a {
        LifecycleAction::Suspend { .. } => Count::Suspended,
        LifecycleAction::Reactivate => Count::Reactivated,
        LifecycleAction::WarnDeletion { .. } => Count::Warned,
        LifecycleAction::QueueDeletion => Count::QueuedForDeletion,
        LifecycleAction::Nothing => Count::Unchanged,
    }
}

/// Applies one transition in one transaction: state, apps, timeline and email together.
async fn apply(
    env: &Env,
    row: &DebtRow,
    action: LifecycleAction,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let mut tx = env.db.begin().await?;
    let invoices = lifecycle::owing_invoices(&env.db, &row.id).await?;
    let done = match action {
        LifecycleAction::Suspend { deletion_at } => {
            if !lifecycle::transition(&mut tx, &row.id, lifecycle::Transition::Suspend, now).await?
            {
                false
            } else {
                events::record(&mut tx, &row.id, now, TimelineKind::AccountSuspended, None, &format!(
                    "Account suspended: {} EUR unpaid after the last retry ({}); apps stopped; data deleted on {} unless paid",
                    format_minor(row.owes), invoices.join(", "), deletion_at.format("%Y-%m-%d"))).await?;
                email(
                    &mut tx,
                    &row.id,
                    EmailKind::AccountSuspended,
                    format!("account_suspended:{}:{}", row.id, now.timestamp()),
                    now,
                    serde_json::json!({
                        "amount_due": format_minor(row.owes),
                        "invoices": invoices,
                        "deletion_date": deletion_at.format("%Y-%m-%d").to_string(),
                    }),
                )
                .await?;
                true
            }
        }
        LifecycleAction::Reactivate => {
            if !lifecycle::transition(&mut tx, &row.id, lifecycle::Transition::Reactivate, now)
                .await?
            {
                false
            } else {
                lifecycle::unqueue(&mut tx, &row.id).await?;
                events::record(
                    &mut tx,
                    &row.id,
                    now,
                    TimelineKind::AccountReactivated,
                    None,
                    "Account reactivated: everything due is paid; apps started",
                )
                .await?;
                true
            }
        }
        LifecycleAction::WarnDeletion { deletion_at } => {
            if !lifecycle::mark_warned(&mut tx, &row.id, now).await? {
                false
            } else {
                events::record(
                    &mut tx,
                    &row.id,
                    now,
                    TimelineKind::AccountDeletionWarning,
                    None,
                    &format!(
                        "Final warning: data deleted on {} unless {} EUR is paid",
                        deletion_at.format("%Y-%m-%d"),
                        format_minor(row.owes)
                    ),
                )
                .await?;
                email(
                    &mut tx,
                    &row.id,
                    EmailKind::DataDeletionWarning,
                    format!(
                        "data_deletion_warning:{}:{}",
                        row.id,
                        row.suspended_at.map_or(0, |t| t.timestamp())
                    ),
                    now,
                    serde_json::json!({
                        "amount_due": format_minor(row.owes),
                        "deletion_date": deletion_at.format("%Y-%m-%d").to_string(),
                    }),
                )
                .await?;
                true
            }
        }
        LifecycleAction::QueueDeletion => {
            if !lifecycle::queue_deletion(&mut tx, &row.id, "non_payment", now).await? {
                false
            } else {
                events::record(
                    &mut tx,
                    &row.id,
                    now,
                    TimelineKind::AccountDeletionQueued,
                    None,
                    &format!(
                        "Data deletion queued: {} EUR still unpaid after the grace period",
                        format_minor(row.owes)
                    ),
                )
                .await?;
                true
            }
        }
        LifecycleAction::Nothing => false,
    };
    if done {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(done)
}

async fn email(
    tx: &mut Tx,
    account: &str,
    kind: EmailKind,
    dedupe: String,
    now: DateTime<Utc>,
    data: serde_json::Value,
) -> anyhow::Result<()> {
    let a = accounts::get_account(&mut *tx, account)
        .await?
        .context("account")?;
    outbox::enqueue(
        tx,
        &NewEmail {
            account_id: account,
            kind,
            dedupe_key: dedupe,
            language: a.language,
            to_address: &a.email,
            invoice_id: None,
            data,
            at: now,
        },
    )
    .await?;
    Ok(())
}
