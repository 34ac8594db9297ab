//! What a run counts (`JobReport::counts`): one key per thing a job did or would do.
//!
//! The keys serialize as their snake_case names (the JSON report, `job_runs.counts`) and sort
//! by those names, so the report's counts and its summary line keep the alphabetical order
//! they had as strings, whatever the order of the variants here.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts shown at the end of a job run, in a stable (alphabetical) order.
pub type Counts = BTreeMap<Count, u64>;

/// One key of a run's counts, grouped by job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    // invoice
    WouldInvoice,
    Invoiced,
    AlreadyInvoiced,
    AccountDeleted,
    NothingToBill,
    /// A group of invoices that could not be finalized together, finalized one by one.
    RegroupedOneByOne,
    // collect
    WouldCollect,
    Paid,
    Pending,
    FailedAttempts,
    CarriedForward,
    Waived,
    OutcomeUnknown,
    HandledByAnotherRun,
    WaitingForRetry,
    RetriesExhausted,
    // suspend
    WouldSuspend,
    WouldReactivate,
    WouldWarn,
    WouldQueueDeletion,
    Suspended,
    Reactivated,
    Warned,
    QueuedForDeletion,
    Unchanged,
    // hds
    WouldRemind,
    Reminded,
    // delete
    WouldDelete,
    WouldWaitForEmails,
    Deleted,
    WaitingForEmails,
    // deliver
    WouldSend,
    Sent,
    Rejected,
    ToRetry,
    HeldByAnotherDeliverer,
    // vat-check
    WouldCheck,
    Valid,
    Invalid,
    Unavailable,
}

impl Count {
    /// The key's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Count::WouldInvoice => "would_invoice",
            Count::Invoiced => "invoiced",
            Count::AlreadyInvoiced => "already_invoiced",
            Count::AccountDeleted => "account_deleted",
            Count::NothingToBill => "nothing_to_bill",
            Count::RegroupedOneByOne => "regrouped_one_by_one",
            Count::WouldCollect => "would_collect",
            Count::Paid => "paid",
            Count::Pending => "pending",
            Count::FailedAttempts => "failed_attempts",
            Count::CarriedForward => "carried_forward",
            Count::Waived => "waived",
            Count::OutcomeUnknown => "outcome_unknown",
            Count::HandledByAnotherRun => "handled_by_another_run",
            Count::WaitingForRetry => "waiting_for_retry",
            Count::RetriesExhausted => "retries_exhausted",
            Count::WouldSuspend => "would_suspend",
            Count::WouldReactivate => "would_reactivate",
            Count::WouldWarn => "would_warn",
            Count::WouldQueueDeletion => "would_queue_deletion",
            Count::Suspended => "suspended",
            Count::Reactivated => "reactivated",
            Count::Warned => "warned",
            Count::QueuedForDeletion => "queued_for_deletion",
            Count::Unchanged => "unchanged",
            Count::WouldRemind => "would_remind",
            Count::Reminded => "reminded",
            Count::WouldDelete => "would_delete",
            Count::WouldWaitForEmails => "would_wait_for_emails",
            Count::Deleted => "deleted",
            Count::WaitingForEmails => "waiting_for_emails",
            Count::WouldSend => "would_send",
            Count::Sent => "sent",
            Count::Rejected => "rejected",
            Count::ToRetry => "to_retry",
            Count::HeldByAnotherDeliverer => "held_by_another_deliverer",
            Count::WouldCheck => "would_check",
            Count::Valid => "valid",
            Count::Invalid => "invalid",
            Count::Unavailable => "unavailable",
        }
    }
}

/// By name, as the string keys sorted: the report's order does not depend on the variants'.
impl Ord for Count {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Count {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_serializes_as_its_name_and_counts_sort_by_name() {
        let mut counts = Counts::new();
        for k in [Count::WouldInvoice, Count::AccountDeleted, Count::Invoiced] {
            counts.insert(k, 1);
        }
        assert_eq!(
            serde_json::to_string(&counts).unwrap(),
            r#"{"account_deleted":1,"invoiced":1,"would_invoice":1}"#
        );
        let back: Counts = serde_json::from_str(r#"{"to_retry":2,"sent":3}"#).unwrap();
        assert_eq!(back.get(&Count::Sent), Some(&3));
        assert_eq!(back.get(&Count::ToRetry), Some(&2));
    }

    #[test]
    fn every_key_serializes_as_its_as_str() {
        use Count::*;
        for k in [
            WouldInvoice,
            Invoiced,
            AlreadyInvoiced,
            AccountDeleted,
            NothingToBill,
            RegroupedOneByOne,
            WouldCollect,
            Paid,
            Pending,
            FailedAttempts,
            CarriedForward,
            Waived,
            OutcomeUnknown,
            HandledByAnotherRun,
            WaitingForRetry,
            RetriesExhausted,
            WouldSuspend,
            WouldReactivate,
            WouldWarn,
            WouldQueueDeletion,
            Suspended,
            Reactivated,
            Warned,
            QueuedForDeletion,
            Unchanged,
            WouldRemind,
            Reminded,
            WouldDelete,
            WouldWaitForEmails,
            Deleted,
            WaitingForEmails,
            WouldSend,
            Sent,
            Rejected,
            ToRetry,
            HeldByAnotherDeliverer,
            WouldCheck,
            Valid,
            Invalid,
            Unavailable,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(
                serde_json::from_value::<Count>(k.as_str().into()).unwrap(),
                k
            );
        }
    }
}
