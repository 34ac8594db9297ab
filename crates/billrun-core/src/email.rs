//! The kinds of email billrun sends (`outbox.kind`), stored and serialized under their names.
//!
//! [`with_email_kinds!`](crate::with_email_kinds) holds the one list of kinds. The enum below
//! is generated from it, and so are the renderer's built-in templates (billrun-documents
//! includes `templates/email/<name>/…` for each name of the list), so a kind without its
//! template directory does not compile, and neither does a template directory under another
//! name than its variant's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Calls `$then! { Variant => "name", … }` with every email kind, in this order: the one list
/// the enum ([`EmailKind`]) and the renderer's templates (one directory per name under
/// `templates/email/`) are both generated from. A callback rather than a list each crate
/// copies: the core cannot see the templates and the renderer must not own the enum the store
/// decodes.
#[macro_export]
macro_rules! with_email_kinds {
    ($then:ident) => {
        $then! {
            InvoiceIssued => "invoice_issued",
            PaymentSucceeded => "payment_succeeded",
            PaymentFailed => "payment_failed",
            ActionRequired => "action_required",
            AccountSuspended => "account_suspended",
            DataDeletionWarning => "data_deletion_warning",
            AccountDeletionConfirmation => "account_deletion_confirmation",
            AccountDeleted => "account_deleted",
            HdsReviewReminder => "hds_review_reminder",
            CreditNoteIssued => "credit_note_issued",
            PaymentDisputed => "payment_disputed",
        }
    };
}

macro_rules! email_kind_enum {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// The kind of an email: which template renders it and what its data holds.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EmailKind {
            $($variant),+
        }

        impl EmailKind {
            /// Every kind, in the order of the list.
            pub const ALL: &[EmailKind] = &[$(EmailKind::$variant),+];

            /// The name it is stored and serialized under, and its template directory
            /// (`invoice_issued`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EmailKind::$variant => $name),+
                }
            }

            pub fn parse(s: &str) -> Option<EmailKind> {
                match s {
                    $($name => Some(EmailKind::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

with_email_kinds!(email_kind_enum);

/// A name that is no email kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown email kind `{0}`")]
pub struct UnknownEmailKind(pub String);

impl FromStr for EmailKind {
    type Err = UnknownEmailKind;

    fn from_str(s: &str) -> Result<EmailKind, UnknownEmailKind> {
        EmailKind::parse(s).ok_or_else(|| UnknownEmailKind(s.to_string()))
    }
}

impl fmt::Display for EmailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// By hand rather than derived: the names come from the one list, never from the variants'
// spelling.
impl Serialize for EmailKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EmailKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where an email of the outbox stands (`outbox.status`), stored under its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Queued, or waiting for its next attempt after a temporary failure.
    Pending,
    /// Claimed by a deliverer, until its claim expires.
    Sending,
    Sent,
    /// Dead: rejected for good by the receiving server, could not be built, or given up after
    /// `max_attempts`.
    Failed,
    /// Withdrawn before it was sent (an account's dunning when its data is stripped).
    Cancelled,
}

impl OutboxStatus {
    pub const ALL: &[OutboxStatus] = &[
        OutboxStatus::Pending,
        OutboxStatus::Sending,
        OutboxStatus::Sent,
        OutboxStatus::Failed,
        OutboxStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
            OutboxStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxStatus> {
        OutboxStatus::ALL.iter().copied().find(|x| x.as_str() == s)
    }

    /// Whether the email may still be sent: `pending` and `sending`; `sent`, `failed` and
    /// `cancelled` are final.
    pub fn is_final(self) -> bool {
        match self {
            OutboxStatus::Pending | OutboxStatus::Sending => false,
            OutboxStatus::Sent | OutboxStatus::Failed | OutboxStatus::Cancelled => true,
        }
    }
}

impl fmt::Display for OutboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OutboxStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for k in EmailKind::ALL {
            assert_eq!(k.as_str().parse::<EmailKind>(), Ok(*k));
            assert_eq!(EmailKind::parse(k.as_str()), Some(*k));
            assert_eq!(k.to_string(), k.as_str());
            assert!(names.insert(k.as_str()), "{} twice", k.as_str());
        }
        assert_eq!(EmailKind::ALL.len(), 11);
        let err = "invoice_lost".parse::<EmailKind>().unwrap_err();
        assert_eq!(err.to_string(), "unknown email kind `invoice_lost`");
        // Names are exact: no case folding, no trimming.
        assert_eq!(EmailKind::parse("Invoice_Issued"), None);
        assert_eq!(EmailKind::parse(" invoice_issued"), None);
    }

    #[test]
    fn deserializes_from_its_name_only() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        let de = |s: &'static str| -> StrDeserializer<'static, Error> { s.into_deserializer() };
        for k in EmailKind::ALL {
            assert_eq!(EmailKind::deserialize(de(k.as_str())), Ok(*k));
        }
        let err = EmailKind::deserialize(de("InvoiceIssued")).unwrap_err();
        assert_eq!(err.to_string(), "unknown email kind `InvoiceIssued`");
    }

    #[test]
    fn every_outbox_status_reads_back_from_its_name() {
        for st in OutboxStatus::ALL {
            assert_eq!(OutboxStatus::parse(st.as_str()), Some(*st));
            assert_eq!(st.to_string(), st.as_str());
        }
        assert_eq!(OutboxStatus::parse("queued"), None);
        let open: Vec<&str> = OutboxStatus::ALL
            .iter()
            .filter(|s| !s.is_final())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(open, ["pending", "sending"]);
    }
}
