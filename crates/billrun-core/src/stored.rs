//! Reading the core's enums back from the names they are stored under. The store decodes a
//! column straight into the enum (sqlx's `try_from = "String"`); a name billrun never wrote is
//! an error naming the column's kind and the value, never a default.

use super::collection::{AttemptOutcome, Trigger};
use super::document::{InvoiceStatus, RefundStatus};
use super::einvoice::PaymentMeans;
use super::lifecycle::AccountStatus;
use super::locale::Language;
use super::money::Currency;
use super::period::Period;
use super::pricing::UsageKind;
use super::vat::VatCase;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` in store")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

macro_rules! stored_name {
    ($($ty:ty => $what:literal),+ $(,)?) => {$(
        impl TryFrom<String> for $ty {
            type Error = UnknownName;

            fn try_from(value: String) -> Result<Self, UnknownName> {
                <$ty>::parse(&value).ok_or(UnknownName { what: $what, value })
            }
        }
    )+};
}

stored_name! {
    InvoiceStatus => "invoice status",
    Language => "language",
    VatCase => "VAT case",
    Trigger => "attempt trigger",
    AttemptOutcome => "attempt outcome",
    Currency => "currency",
    UsageKind => "usage kind",
    RefundStatus => "refund status",
    super::credit_note::CreditLineKind => "credit note line kind",
    super::credit_note::RefundMethod => "refund method",
    super::credit_note::GatewayRefundStatus => "gateway refund status",
    PaymentMeans => "payment means",
    AccountStatus => "account status",
    super::timeline::TimelineKind => "timeline event kind",
    super::email::EmailKind => "email kind",
    super::email::OutboxStatus => "outbox status",
}

impl TryFrom<String> for Period {
    type Error = UnknownName;

    fn try_from(value: String) -> Result<Self, UnknownName> {
        value.parse().map_err(|_| UnknownName {
            what: "billing period",
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_billrun_never_wrote_is_an_error_naming_it() {
        assert_eq!(
            InvoiceStatus::try_from("paid".to_string()),
            Ok(InvoiceStatus::Paid)
        );
        let err = AttemptOutcome::try_from("maybe".to_string()).unwrap_err();
        assert_eq!(err.to_string(), "unknown attempt outcome `maybe` in store");
        assert!(Period::try_from("2026-13".to_string()).is_err());
    }
}
