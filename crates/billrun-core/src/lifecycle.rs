//! Lifecycle rules, pure: when an account is suspended for non-payment, reactivated, warned
//! and queued for data deletion.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::terms::is_overdue;

/// Where an account stands, stored under its snake_case name (`accounts.status`, which the
/// stores hold to these names since migration 0016). Matched exhaustively everywhere.
///
/// `active` ⇄ `suspended` (non-payment; everything due paid); `active` → `deactivated` (its
/// owner confirmed its deletion); a queued account (deactivated, or suspended past its grace
/// period) → `deleting` (the delete job started) → `deleted` (its data removed; the row is
/// kept: its invoices name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    /// Suspended for non-payment: its apps are stopped until everything due is paid.
    Suspended,
    /// Its owner confirmed its deletion: queued for the delete job, never reactivated.
    Deactivated,
    /// The delete job has started removing its data.
    Deleting,
    /// Its data is removed (profile stripped); nothing can be invoiced to it any more.
    Deleted,
}

impl AccountStatus {
    /// Every status, in the order an account goes through them.
    pub const ALL: [AccountStatus; 5] = [
        AccountStatus::Active,
        AccountStatus::Suspended,
        AccountStatus::Deactivated,
        AccountStatus::Deleting,
        AccountStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Deactivated => "deactivated",
            AccountStatus::Deleting => "deleting",
            AccountStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<AccountStatus> {
        match s {
            "active" => Some(AccountStatus::Active),
            "suspended" => Some(AccountStatus::Suspended),
            "deactivated" => Some(AccountStatus::Deactivated),
            "deleting" => Some(AccountStatus::Deleting),
            "deleted" => Some(AccountStatus::Deleted),
            _ => None,
        }
    }
}

impl std::fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the suspend job knows of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebtState {
    /// `active` or `suspended` (other statuses are not the suspend job's).
    pub suspended_at: Option<DateTime<Utc>>,
    pub deletion_warning_at: Option<DateTime<Utc>>,
    /// Σ amount due over the account's open, unpaid and pending invoices.
    pub owes: i64,
    /// The earliest due date of the unpaid invoices whose last scheduled retry has failed
    /// (`None`: no such invoice).
    pub exhausted_due_at: Option<NaiveDate>,
    pub queued_for_deletion: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub grace_days: u32,
    pub warning_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum LifecycleAction {
    /// The last retry failed: suspend, stop the apps, tell the owner.
    Suspend {
        deletion_at: DateTime<Utc>,
    },
    /// Everything due is paid: reactivate, start the apps (and leave the deletion queue).
    Reactivate,
    /// Still owing, deletion is near: the final warning.
    WarnDeletion {
        deletion_at: DateTime<Utc>,
    },
    /// Still owing after the grace period (and the warning): queue the data deletion.
    QueueDeletion,
    Nothing,
}

/// When an account suspended at `suspended_at` will have its data deleted: after the grace
/// period, and never less than `warning_days` after the final warning.
pub fn deletion_at(
    suspended_at: DateTime<Utc>,
    warned_at: Option<DateTime<Utc>>,
    p: Policy,
) -> DateTime<Utc> {
    let by_grace = suspended_at + Duration::days(i64::from(p.grace_days));
    match warned_at {
        Some(w) => by_grace.max(w + Duration::days(i64::from(p.warning_days))),
        None => by_grace,
    }
}

pub fn decide(s: &DebtState, now: DateTime<Utc>, p: Policy) -> LifecycleAction {
    match s.suspended_at {
        // Suspended once the retries have failed and the due date has passed: from the day
        // after it, as the invoice's payment terms say (`core::terms`), never on the due date.
        None if s.owes > 0
            && s.exhausted_due_at
                .is_some_and(|due| is_overdue(due, now.date_naive())) =>
        {
            LifecycleAction::Suspend {
                deletion_at: now + Duration::days(i64::from(p.grace_days)),
            }
        }
        None => LifecycleAction::Nothing,
        Some(_) if s.owes == 0 => LifecycleAction::Reactivate,
        Some(_) if s.queued_for_deletion => LifecycleAction::Nothing,
        Some(at) => {
            let deletion = deletion_at(at, s.deletion_warning_at, p);
            match s.deletion_warning_at {
                None if now >= deletion - Duration::days(i64::from(p.warning_days)) => {
                    LifecycleAction::WarnDeletion {
                        deletion_at: deletion_at(at, Some(now), p),
                    }
                }
                Some(_) if now >= deletion => LifecycleAction::QueueDeletion,
                _ => LifecycleAction::Nothing,
            }
        }
    }
}

/// Whether an HDS contact reviewed at `reviewed_at` needs a reminder at `now`: the review is
/// older than `review_months`, and no reminder went out in the last `every_days` since it.
pub fn hds_reminder_due(
    reviewed_at: DateTime<Utc>,
    last_reminder_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    review_months: u32,
    every_days: u32,
) -> bool {
    let Some(stale_from) = reviewed_at.checked_add_months(chrono::Months::new(review_months))
    else {
        return false;
    };
    if now < stale_from {
        return false;
    }
    match last_reminder_at.filter(|r| *r >= reviewed_at) {
        None => true,
        Some(last) => now >= last + Duration::days(i64::from(every_days)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const P: Policy = Policy {
        grace_days: 30,
        warning_days: 7,
    };

    fn owing() -> DebtState {
        DebtState {
            suspended_at: None,
            deletion_warning_at: None,
            owes: 1000,
            exhausted_due_at: Some(NaiveDate::from_ymd_opt(2026, 11, 15).unwrap()),
            queued_for_deletion: false,
        }
    }

    #[test]
    fn account_statuses_read_back_from_their_stored_names() {
        for status in AccountStatus::ALL {
            assert_eq!(AccountStatus::parse(status.as_str()), Some(status));
            assert_eq!(AccountStatus::try_from(status.to_string()), Ok(status));
        }
        assert_eq!(AccountStatus::parse("closed"), None);
        assert_eq!(AccountStatus::parse("Active"), None);
    }

    #[test]
    fn suspends_warns_then_queues() {
        let now = t("2026-11-16T08:00:00Z");
        assert_eq!(
            decide(&owing(), now, P),
            LifecycleAction::Suspend {
                deletion_at: t("2026-12-16T08:00:00Z")
            }
        );
        let s = DebtState {
            suspended_at: Some(now),
            ..owing()
        };
        assert_eq!(
            decide(&s, t("2026-12-08T08:00:00Z"), P),
            LifecycleAction::Nothing
        );
        assert_eq!(
            decide(&s, t("2026-12-09T08:00:00Z"), P),
            LifecycleAction::WarnDeletion {
                deletion_at: t("2026-12-16T08:00:00Z")
            }
        );
        let warned = DebtState {
            deletion_warning_at: Some(t("2026-12-09T08:00:00Z")),
            ..s.clone()
        };
        assert_eq!(
            decide(&warned, t("2026-12-15T08:00:00Z"), P),
            LifecycleAction::Nothing
        );
        assert_eq!(
            decide(&warned, t("2026-12-16T08:00:00Z"), P),
            LifecycleAction::QueueDeletion
        );
        // A late warning pushes the deletion back: always 7 days of notice.
        let late = DebtState {
            deletion_warning_at: Some(t("2026-12-20T08:00:00Z")),
            ..s.clone()
        };
        assert_eq!(
            decide(&late, t("2026-12-21T08:00:00Z"), P),
            LifecycleAction::Nothing
        );
        assert_eq!(
            decide(&late, t("2026-12-27T08:00:00Z"), P),
            LifecycleAction::QueueDeletion
        );
    }

    #[test]
    fn suspends_from_the_day_after_the_due_date_never_on_it() {
        // Issued 1 November, due 16 November; the last retry (day 15) fails on the 16th at 07:00.
        let s = DebtState {
            exhausted_due_at: Some(NaiveDate::from_ymd_opt(2026, 11, 16).unwrap()),
            ..owing()
        };
        assert_eq!(
            decide(&s, t("2026-11-16T08:00:00Z"), P),
            LifecycleAction::Nothing
        );
        assert_eq!(
            decide(&s, t("2026-11-16T23:59:59Z"), P),
            LifecycleAction::Nothing
        );
        assert_eq!(
            decide(&s, t("2026-11-17T08:00:00Z"), P),
            LifecycleAction::Suspend {
                deletion_at: t("2026-12-17T08:00:00Z")
            }
        );
    }

    #[test]
    fn hds_reminders_after_twelve_months_then_every_thirty_days() {
        let reviewed = t("2025-10-01T00:00:00Z");
        assert!(!hds_reminder_due(
            reviewed,
            None,
            t("2026-09-30T23:59:59Z"),
            12,
            30
        ));
        assert!(hds_reminder_due(
            reviewed,
            None,
            t("2026-10-01T00:00:00Z"),
            12,
            30
        ));
        let sent = Some(t("2026-11-01T09:00:00Z"));
        assert!(!hds_reminder_due(
            reviewed,
            sent,
            t("2026-11-02T09:00:00Z"),
            12,
            30
        ));
        assert!(hds_reminder_due(
            reviewed,
            sent,
            t("2026-12-01T09:00:00Z"),
            12,
            30
        ));
        // Reviewed again: nothing for another 12 months, whatever was sent before.
        assert!(!hds_reminder_due(
            t("2026-11-05T00:00:00Z"),
            sent,
            t("2026-12-01T09:00:00Z"),
            12,
            30
        ));
    }

    #[test]
    fn paying_reactivates_and_nothing_happens_without_a_failed_schedule() {
        let paid = DebtState {
            suspended_at: Some(t("2026-11-16T08:00:00Z")),
            owes: 0,
            ..owing()
        };
        assert_eq!(
            decide(&paid, t("2026-11-21T08:00:00Z"), P),
            LifecycleAction::Reactivate
        );
        let trying = DebtState {
            exhausted_due_at: None,
            ..owing()
        };
        assert_eq!(
            decide(&trying, t("2026-11-21T08:00:00Z"), P),
            LifecycleAction::Nothing
        );
    }
}
