//! What an account's timeline records (`account_events.kind`, shown by `account show`): one
//! kind per change, stored under the name written here, read back into the enum.

macro_rules! timeline_kinds {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// The kind of an account's timeline event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum TimelineKind {
            $($variant),+
        }

        impl TimelineKind {
            /// Every kind, in the order written here.
            pub const ALL: &[TimelineKind] = &[$(TimelineKind::$variant),+];

            /// The name it is stored under (`invoice.issued`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(TimelineKind::$variant => $name),+
                }
            }

            pub fn parse(s: &str) -> Option<TimelineKind> {
                match s {
                    $($name => Some(TimelineKind::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

timeline_kinds! {
    InvoiceIssued => "invoice.issued",
    InvoicePaid => "invoice.paid",
    InvoiceVoided => "invoice.voided",
    InvoiceWaived => "invoice.waived",
    InvoiceCarriedForward => "invoice.carried_forward",
    CreditApplied => "credit.applied",
    PaymentProcessing => "payment.processing",
    PaymentFailed => "payment.failed",
    PaymentUnknown => "payment.unknown",
    PaymentDisputeOpen => "payment.dispute_open",
    PaymentDisputeWon => "payment.dispute_won",
    PaymentDisputeLost => "payment.dispute_lost",
    ReferralEarned => "referral.earned",
    CreditNoteIssued => "credit_note.issued",
    CreditNoteRefundRerouted => "credit_note.refund_rerouted",
    AccountSuspended => "account.suspended",
    AccountReactivated => "account.reactivated",
    AccountDeletionWarning => "account.deletion_warning",
    AccountDeletionQueued => "account.deletion_queued",
    AccountDeletionRequested => "account.deletion_requested",
    AccountDeletionConfirmationSent => "account.deletion_confirmation_sent",
    AccountDeactivated => "account.deactivated",
    AppDeleted => "app.deleted",
    HdsReviewReminder => "hds.review_reminder",
    HdsContactSet => "hds.contact_set",
    HdsContactReviewed => "hds.contact_reviewed",
    CreditPurchased => "credit.purchased",
    PaymentMethodSet => "payment_method.set",
}

impl TimelineKind {
    /// The event a dispute's change records (`payment.dispute_open|won|lost`).
    pub fn dispute(status: crate::dispute::DisputeStatus) -> TimelineKind {
        use crate::dispute::DisputeStatus;
        match status {
            DisputeStatus::Open => TimelineKind::PaymentDisputeOpen,
            DisputeStatus::Won => TimelineKind::PaymentDisputeWon,
            DisputeStatus::Lost => TimelineKind::PaymentDisputeLost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for k in TimelineKind::ALL {
            assert_eq!(TimelineKind::parse(k.as_str()), Some(*k));
            assert!(names.insert(k.as_str()), "{} twice", k.as_str());
        }
        assert_eq!(TimelineKind::parse("invoice.unknown"), None);
    }

    #[test]
    fn a_dispute_s_status_names_its_event() {
        use crate::dispute::DisputeStatus;
        for s in [DisputeStatus::Open, DisputeStatus::Won, DisputeStatus::Lost] {
            assert_eq!(
                TimelineKind::dispute(s).as_str(),
                format!("payment.dispute_{}", s.as_str())
            );
        }
    }
}
