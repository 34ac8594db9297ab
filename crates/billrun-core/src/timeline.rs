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

/// A name that is no timeline event kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timeline event kind `{0}`")]
pub struct UnknownTimelineKind(pub String);

impl std::str::FromStr for TimelineKind {
    type Err = UnknownTimelineKind;

    fn from_str(s: &str) -> Result<TimelineKind, UnknownTimelineKind> {
        TimelineKind::parse(s).ok_or_else(|| UnknownTimelineKind(s.to_string()))
    }
}

impl std::fmt::Display for TimelineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// By hand rather than derived: `account show --format json` prints the stored name
// (`invoice.issued`), which no serde renaming of the variants gives.
impl serde::Serialize for TimelineKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for TimelineKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
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
    fn from_str_and_serde_give_every_kind_back_from_its_name() {
        use serde::Deserialize;
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        for k in TimelineKind::ALL {
            assert_eq!(k.as_str().parse::<TimelineKind>(), Ok(*k));
            assert_eq!(k.to_string(), k.as_str());
            let de: StrDeserializer<'_, Error> = k.as_str().into_deserializer();
            assert_eq!(TimelineKind::deserialize(de), Ok(*k));
        }
        let err = "invoice.lost".parse::<TimelineKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown timeline event kind `invoice.lost`"
        );
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
