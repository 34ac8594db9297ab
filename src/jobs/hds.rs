//! The `hds` job: reminds accounts hosting health data (French HDS rules) to review their
//! designated healthcare data point of contact at least every 12 months, and again every 30
//! days until they do.

use anyhow::Context;
use serde::Serialize;

use super::{Count, Env, Failure, JobName, JobReport, RunOptions};
use crate::core::email::EmailKind;
use crate::core::lifecycle::hds_reminder_due;
use crate::core::timeline::TimelineKind;
use crate::store::outbox::{self, NewEmail};
use crate::store::{accounts, events, hds};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HdsItem {
    pub account_id: String,
    pub contact: String,
    pub last_reviewed_at: String,
    pub outcome: HdsOutcome,
}

/// What the hds job did (or would do) for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HdsOutcome {
    /// A dry-run: it would remind.
    Planned,
    /// The reminder was queued.
    Reminded,
    /// Another run reminded first.
    Skipped,
    /// The reminder could not be queued.
    Failed,
}

impl HdsOutcome {
    /// The outcome's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            HdsOutcome::Planned => "planned",
            HdsOutcome::Reminded => "reminded",
            HdsOutcome::Skipped => "skipped",
            HdsOutcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for HdsOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub async fn run(env: &Env, opts: &RunOptions) -> anyhow::Result<JobReport> {
    let mut report = JobReport::new(JobName::Hds, opts);
    let s = &env.jobs.hds.settings;
    for c in hds::all(&env.db).await? {
        if opts.stop.requested() {
            report.stop_early();
            break;
        }
        if !opts.accounts.is_empty() && !opts.accounts.iter().any(|a| a.as_str() == c.account_id) {
            continue;
        }
        if !hds_reminder_due(
            c.reviewed_at,
            c.last_reminder_at,
            opts.now,
            s.review_months,
            s.reminder_every_days,
        ) {
            continue;
        }
        let mut item = HdsItem {
            account_id: c.account_id.clone(),
            contact: c.name.clone(),
            last_reviewed_at: c.reviewed_at.format("%Y-%m-%d").to_string(),
            outcome: HdsOutcome::Planned,
        };
        if opts.dry_run {
            report.bump(Count::WouldRemind);
            report.hds.push(item);
            continue;
        }
        match remind(env, &c, opts.now).await {
            Ok(true) => {
                report.bump(Count::Reminded);
                item.outcome = HdsOutcome::Reminded;
            }
            Ok(false) => item.outcome = HdsOutcome::Skipped,
            Err(e) => {
                report.failures.push(Failure {
                    item: format!("account {}", c.account_id),
                    error: format!("{e:#}"),
                });
                item.outcome = HdsOutcome::Failed;
            }
        }
        report.hds.push(item);
    }
    Ok(report)
}

async fn remind(
    env: &Env,
    c: &hds::HdsContactRow,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<bool> {
    let mut tx = env.db.begin().await?;
    if !hds::mark_reminded(&mut tx, &c.account_id, c.last_reminder_at, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let a = accounts::get_account(&mut tx, &c.account_id)
        .await?
        .context("account")?;
    events::record(
        &mut tx,
        &c.account_id,
        now,
        TimelineKind::HdsReviewReminder,
        None,
        &format!(
            "HDS point of contact ({}) last reviewed on {}: review reminder sent",
            c.name,
            c.reviewed_at.format("%Y-%m-%d")
        ),
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        &NewEmail {
            account_id: &c.account_id,
            kind: EmailKind::HdsReviewReminder,
            dedupe_key: format!(
                "hds_review_reminder:{}:{}",
                c.account_id,
                now.format("%Y-%m-%d")
            ),
            language: a.language,
            to_address: &a.email,
            invoice_id: None,
            data: serde_json::json!({
                "contact_name": c.name,
                "contact_email": c.email,
                "contact_phone": c.phone,
                "last_reviewed_at": c.reviewed_at.format("%Y-%m-%d").to_string(),
            }),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
