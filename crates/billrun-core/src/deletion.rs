//! Account deletion rules, pure: when a deletion request is accepted, how its confirmation
//! token is checked, what the delete job removes, in which order, and which of the account's
//! emails it waits for before it strips the address they go to.

use crate::document::InvoiceStatus;
use crate::email::{EmailKind, OutboxStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// An app the account still owns (not deleted, not transferred away).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnedApp {
    pub id: String,
    pub name: String,
}

/// An invoice the account still owes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwedInvoice {
    pub number: String,
    pub status: InvoiceStatus,
    pub amount_due_minor: i64,
}

/// Why a deletion request is refused: every app and every unpaid invoice, so the owner can
/// act on all of them at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub apps: Vec<OwnedApp>,
    pub invoices: Vec<OwedInvoice>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.apps.is_empty() {
            let apps: Vec<String> = self
                .apps
                .iter()
                .map(|a| format!("{} ({})", a.name, a.id))
                .collect();
            parts.push(format!(
                "it still owns {} app(s), to delete or transfer first: {}",
                self.apps.len(),
                apps.join(", ")
            ));
        }
        if !self.invoices.is_empty() {
            let inv: Vec<String> = self
                .invoices
                .iter()
                .map(|i| {
                    format!(
                        "{} ({}, {} EUR due)",
                        i.number,
                        i.status,
                        crate::money::format_minor(i.amount_due_minor)
                    )
                })
                .collect();
            parts.push(format!(
                "it owes {} invoice(s), to settle first: {}",
                self.invoices.len(),
                inv.join(", ")
            ));
        }
        f.write_str(&parts.join("; "))
    }
}

/// The account documentation: "you must first delete or transfer ownership of all your
/// applications, and ensure all outstanding bills are settled".
pub fn check_request(apps: Vec<OwnedApp>, invoices: Vec<OwedInvoice>) -> Result<(), Refusal> {
    if apps.is_empty() && invoices.is_empty() {
        Ok(())
    } else {
        Err(Refusal { apps, invoices })
    }
}

/// What is stored of a confirmation token: its SHA-256, never the token.
pub fn token_digest(token: &str) -> String {
    let d = Sha256::digest(token.trim().as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A pending request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    pub token_sha256: String,
    pub expires_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no account deletion was requested for this account")]
    NoRequest,
    #[error("the token does not match the one sent in the latest confirmation email")]
    Wrong,
    #[error("the token was already used, on {0}")]
    Used(DateTime<Utc>),
    #[error("the token expired on {0}; request the deletion again for a new one")]
    Expired(DateTime<Utc>),
}

/// Checks a presented token. A used token is reported as used even when it also expired or
/// does not match, so a second click on the email's link says what happened.
pub fn check_token(
    request: Option<&PendingRequest>,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<(), TokenError> {
    let r = request.ok_or(TokenError::NoRequest)?;
    if let Some(at) = r.confirmed_at {
        return Err(TokenError::Used(at));
    }
    if !constant_time_eq(
        token_digest(presented).as_bytes(),
        r.token_sha256.as_bytes(),
    ) {
        return Err(TokenError::Wrong);
    }
    if now >= r.expires_at {
        return Err(TokenError::Expired(r.expires_at));
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the delete job removes, in this order (children before parents, the Stripe customer
/// before the rows that name it, personal data last so the farewell email can be addressed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Deployments,
    /// The account's timeline.
    Activity,
    Aliases,
    Certificates,
    Domains,
    /// The billing subscription: the Stripe customer, deleted through the API.
    StripeCustomer,
    /// The billing subscription: the payment method on file.
    PaymentMethods,
    /// The apps, marked deleted for the platform (their usage stays, it backs the invoices).
    Apps,
    /// What is stripped rather than removed: the profile, the HDS contact, the Stripe ids on
    /// payment records, the addresses and contents of sent emails, the name on referral rewards.
    PersonalData,
}

pub const CATEGORIES: &[Category] = &[
    Category::Deployments,
    Category::Activity,
    Category::Aliases,
    Category::Certificates,
    Category::Domains,
    Category::StripeCustomer,
    Category::PaymentMethods,
    Category::Apps,
    Category::PersonalData,
];

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Deployments => "deployments",
            Category::Activity => "activity",
            Category::Aliases => "aliases",
            Category::Certificates => "certificates",
            Category::Domains => "domains",
            Category::StripeCustomer => "stripe_customer",
            Category::PaymentMethods => "payment_methods",
            Category::Apps => "apps",
            Category::PersonalData => "personal_data",
        }
    }
}

/// The next category to work on, given those already completed: the delete job resumes here
/// after a crash.
pub fn next_category(completed: &[Category]) -> Option<Category> {
    CATEGORIES.iter().copied().find(|c| !completed.contains(c))
}

/// What the delete job does with an email of the account that is still waiting in the outbox
/// (`pending`, retrying, or in a deliverer's hands) when it comes to strip the account's
/// personal data — the address the email goes to among them.
///
/// An email in a final state never holds a deletion: `sent`, `cancelled`, or `failed` (rejected
/// for good by the receiving server, or given up after `max_attempts`: a dead email).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingEmail {
    /// Sent (or failed for good) before the address is stripped: the deletion waits for it and
    /// the next run resumes it.
    Deliver,
    /// Cancelled when the address is stripped: what it says no longer holds once the account is
    /// being deleted.
    Cancel,
}

/// The rule for each email kind still waiting when an account's personal data is stripped.
///
/// Delivered first:
/// - `invoice_issued`: an invoice is issued to its buyer — CGI art. 289 (the seller issues the
///   invoice for each supply to a business) and Code de commerce art. L441-9 (the seller must
///   deliver it upon the supply). The final invoice of a closing account is one of them.
/// - `payment_succeeded`: the receipt, the buyer's proof that an invoice was paid and how. No
///   article requires it to be emailed, but it is the paid invoice's counterpart, and the
///   account's last receipt is often the final invoice's.
/// - `account_deletion_confirmation`: the answer to the owner's own request (the account
///   documentation: "a final confirmation will be requested by email"); it also tells an owner
///   who did not ask to say so. Sent, its token is dropped from the outbox.
/// - `account_deleted`: the notice that the erasure was done (GDPR art. 12(3): the data subject
///   is told of the action taken on a request). The stripping itself queues it and it keeps its
///   address until it is sent; listed here so that a stray copy is delivered too.
///
/// Cancelled:
/// - `payment_failed`, `action_required`: dunning that asks the owner to pay or act from the
///   dashboard; the account is being deleted, its dashboard, payment method and retries are
///   gone. What is owed stays on the kept invoices, which were (or will be) delivered.
/// - `account_suspended`, `data_deletion_warning`: notices of what happens *unless* the owner
///   pays; the deletion they announce has started, so they would mislead.
/// - `hds_review_reminder`: a reminder to review a contact that is about to be erased.
///
/// Matched exhaustively: a kind added to [`EmailKind`] does not compile until its rule is
/// written here.
pub fn pending_email(kind: EmailKind) -> PendingEmail {
    match kind {
        EmailKind::InvoiceIssued
        | EmailKind::PaymentSucceeded
        // A credit note is a document the law keeps, like an invoice: its email still goes.
        | EmailKind::CreditNoteIssued
        | EmailKind::AccountDeletionConfirmation
        | EmailKind::AccountDeleted => PendingEmail::Deliver,
        EmailKind::PaymentFailed
        // A dispute lost: the amount is owed again, as after a failed payment.
        | EmailKind::PaymentDisputed
        | EmailKind::ActionRequired
        | EmailKind::AccountSuspended
        | EmailKind::DataDeletionWarning
        | EmailKind::HdsReviewReminder => PendingEmail::Cancel,
    }
}

/// An account's emails of one kind and delivery status, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingEmail {
    pub kind: EmailKind,
    pub status: OutboxStatus,
    pub count: i64,
}

/// Of an account's emails (counted by kind and status), those its deletion waits for before
/// it strips the address: not in a final state, and of a kind that [`pending_email`] delivers.
pub fn emails_to_wait_for(emails: Vec<WaitingEmail>) -> Vec<WaitingEmail> {
    emails
        .into_iter()
        .filter(|e| {
            !e.status.is_final()
                && match pending_email(e.kind) {
                    PendingEmail::Deliver => true,
                    PendingEmail::Cancel => false,
                }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_request_lists_every_app_and_invoice() {
        assert!(check_request(vec![], vec![]).is_ok());
        let r = check_request(
            vec![
                OwnedApp {
                    id: "app-1".into(),
                    name: "shop".into(),
                },
                OwnedApp {
                    id: "app-2".into(),
                    name: "blog".into(),
                },
            ],
            vec![OwedInvoice {
                number: "2026-000042".into(),
                status: InvoiceStatus::Unpaid,
                amount_due_minor: 1234,
            }],
        )
        .unwrap_err();
        let msg = r.to_string();
        assert!(
            msg.contains("shop (app-1)") && msg.contains("blog (app-2)"),
            "{msg}"
        );
        assert!(msg.contains("2026-000042 (unpaid, 12.34 EUR due)"), "{msg}");
    }

    #[test]
    fn tokens_are_single_use_and_expire() {
        let now = t("2026-11-20T10:00:00Z");
        let req = PendingRequest {
            token_sha256: token_digest("dlt_secret"),
            expires_at: t("2026-11-23T10:00:00Z"),
            confirmed_at: None,
        };
        assert_eq!(check_token(Some(&req), "dlt_secret", now), Ok(()));
        assert_eq!(check_token(Some(&req), " dlt_secret\n", now), Ok(()));
        assert_eq!(
            check_token(Some(&req), "dlt_other", now),
            Err(TokenError::Wrong)
        );
        assert_eq!(
            check_token(Some(&req), "dlt_secret", t("2026-11-23T10:00:00Z")),
            Err(TokenError::Expired(req.expires_at))
        );
        let used = PendingRequest {
            confirmed_at: Some(now),
            ..req.clone()
        };
        assert_eq!(
            check_token(Some(&used), "dlt_secret", now),
            Err(TokenError::Used(now))
        );
        assert_eq!(check_token(None, "x", now), Err(TokenError::NoRequest));
        // Only the digest is stored.
        assert_eq!(req.token_sha256.len(), 64);
        assert_ne!(req.token_sha256, "dlt_secret");
    }

    #[test]
    fn categories_resume_where_they_stopped() {
        assert_eq!(next_category(&[]), Some(Category::Deployments));
        assert_eq!(
            next_category(&[Category::Deployments, Category::Activity]),
            Some(Category::Aliases)
        );
        assert_eq!(next_category(CATEGORIES), None);
        // Children before parents.
        let pos = |c| CATEGORIES.iter().position(|x| *x == c).unwrap();
        assert!(pos(Category::Certificates) < pos(Category::Domains));
        assert!(pos(Category::StripeCustomer) < pos(Category::PaymentMethods));
        assert_eq!(CATEGORIES.last(), Some(&Category::PersonalData));
    }

    #[test]
    fn invoices_receipts_and_deletion_notices_are_delivered_before_stripping_cgi_289_l441_9_gdpr_12_3()
     {
        use EmailKind::*;
        for kind in [
            InvoiceIssued,
            PaymentSucceeded,
            AccountDeletionConfirmation,
            AccountDeleted,
            CreditNoteIssued,
        ] {
            assert_eq!(pending_email(kind), PendingEmail::Deliver, "{kind}");
        }
        for kind in [
            PaymentFailed,
            ActionRequired,
            AccountSuspended,
            DataDeletionWarning,
            HdsReviewReminder,
            PaymentDisputed,
        ] {
            assert_eq!(pending_email(kind), PendingEmail::Cancel, "{kind}");
        }
    }

    #[test]
    fn a_deletion_waits_only_for_undelivered_emails_it_must_deliver() {
        let w = |kind: &str, status: &str, count| WaitingEmail {
            kind: kind.parse().unwrap(),
            status: OutboxStatus::parse(status).unwrap(),
            count,
        };
        assert_eq!(
            emails_to_wait_for(vec![
                w("invoice_issued", "pending", 1),
                w("payment_failed", "pending", 3),
                w("payment_succeeded", "sending", 1),
                w("data_deletion_warning", "pending", 1),
            ]),
            vec![
                w("invoice_issued", "pending", 1),
                w("payment_succeeded", "sending", 1)
            ]
        );
        assert!(emails_to_wait_for(vec![w("hds_review_reminder", "pending", 1)]).is_empty());
        assert!(emails_to_wait_for(vec![]).is_empty());
        // Sent, cancelled or dead (failed for good): nothing to wait for.
        assert!(
            emails_to_wait_for(vec![
                w("invoice_issued", "sent", 4),
                w("invoice_issued", "failed", 1),
                w("payment_succeeded", "cancelled", 1),
            ])
            .is_empty()
        );
    }
}
