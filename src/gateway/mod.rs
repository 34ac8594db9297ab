//! Payment gateways: Stripe (through async-stripe) and a simulator for the embedded default.
//!
//! Both answer with a [`ChargeOutcome`], which has a state for "outcome unknown": a request that
//! kept failing with 429/5xx, timed out or could not connect. The caller records it and sends the
//! same idempotency key again on the next run, so that an unknown outcome never becomes a second
//! charge.

//!
//! One concept a file: the gateway and what it answers (here), the Stripe gateway
//! ([`stripe`]) and its HTTP transport ([`stripe_http`]), the rate limit every Stripe request
//! goes through ([`rate_limit`]) and the simulator ([`simulated`]).

mod rate_limit;
mod simulated;
mod stripe;
mod stripe_http;

pub use self::stripe::{PAYMENT_METHOD_MISSING, StripeGateway, statement_suffix};
pub use rate_limit::{MAX_RETRY_AFTER, RateLimiter};
pub use simulated::{Latency, SimulatedGateway};

use std::time::Duration;

use serde::Serialize;

/// A charge to make: an off-session PaymentIntent, confirmed at once.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    pub idempotency_key: String,
    pub amount_minor: i64,
    pub customer: String,
    pub payment_method: String,
    pub sepa: bool,
    pub invoice_id: i64,
    pub invoice_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChargeOutcome {
    Succeeded {
        payment_intent: String,
    },
    /// Accepted, settling later (SEPA debits take days).
    Processing {
        payment_intent: String,
    },
    /// Declined or refused: the attempt failed.
    Failed {
        payment_intent: Option<String>,
        code: Option<String>,
        decline_code: Option<String>,
        message: String,
    },
    /// No conclusive answer (429, 5xx, timeout, connection refused): ask again with the same key.
    Unknown {
        reason: String,
    },
}

/// A refund of (part of) a payment, for a credit note (issue 22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// Derived from the credit note and the payment it refunds: a retry, in this run or the
    /// next, sends the same key, so Stripe refunds once (Stripe API "Idempotent requests").
    pub idempotency_key: String,
    pub payment_intent: String,
    pub amount_minor: i64,
    pub credit_note_number: String,
    pub invoice_number: String,
}

/// What became of a refund. Matched exhaustively: `Unknown` is a state of its own, settled only
/// by sending the same request again (Stripe API "Refunds": `pending`, `requires_action`,
/// `succeeded`, `failed`, `canceled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RefundOutcome {
    Succeeded {
        refund: String,
    },
    /// Accepted; the money reaches the customer later (`pending`, `requires_action`).
    Pending {
        refund: String,
    },
    /// Refused (`failed`, `canceled`, or a request the payment cannot take, e.g. more than it
    /// has left to refund).
    Failed {
        refund: Option<String>,
        reason: String,
    },
    /// No conclusive answer (429, 5xx, timeout): ask again with the same key.
    Unknown {
        reason: String,
    },
}

/// A Stripe answer that only the operator can act on: a wrong, revoked or under-privileged API
/// key, a request Stripe finds invalid, an API version it does not know. It is never an attempt
/// against the customer (no decline, no schedule move, no email): the run stops at the first one
/// (a wrong key is wrong for every invoice) and the next run carries on where it stopped.
///
/// Stripe API, "Errors" (https://docs.stripe.com/api/errors): 401 = no valid API key, 403 = the
/// key lacks permissions, 400 `invalid_request_error` = invalid parameters (an unknown
/// `Stripe-Version` included). None of these executes the request, so nothing is stored under
/// the idempotency key: the same attempt sent again with a good key charges once.
///
/// The texts are billrun's own; Stripe's message is quoted only for a 400, with anything that
/// looks like a key removed, since Stripe echoes what it was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("Stripe rejected the API key ({status}): check STRIPE_SECRET_KEY")]
    ApiKey { status: u16 },
    #[error(
        "Stripe refused this API key access ({status}): check the permissions of STRIPE_SECRET_KEY"
    )]
    Forbidden { status: u16 },
    #[error("Stripe refused the request as invalid ({status}{}{}): {message}; check billrun's Stripe settings and the account's Stripe ids",
        .code.as_deref().map(|c| format!(", code {c}")).unwrap_or_default(),
        .param.as_deref().map(|p| format!(", parameter {p}")).unwrap_or_default())]
    InvalidRequest {
        status: u16,
        code: Option<String>,
        param: Option<String>,
        message: String,
    },
    #[error("the Stripe client is misconfigured: {0}")]
    Config(String),
}

/// Removes what looks like a secret from a text Stripe sent back (`sk_…`, `rk_…`, `whsec_…`,
/// `Bearer …`): Stripe's messages echo the key they were given.
pub fn redact_secrets(text: &str) -> String {
    let mut out = Vec::new();
    let mut after_bearer = false;
    for word in text.split(' ') {
        let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
        let secret = after_bearer || ["sk_", "rk_", "whsec_"].iter().any(|p| bare.starts_with(p));
        after_bearer = bare.eq_ignore_ascii_case("bearer");
        out.push(if secret && !bare.is_empty() {
            word.replace(bare, "[redacted]")
        } else {
            word.to_string()
        });
    }
    out.join(" ")
}

/// Why a Stripe customer could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteCustomerError {
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error("{0}")]
    Failed(String),
}

/// How hard to insist within one run on 429, 5xx, timeouts and refused connections.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub tries: u32,
    pub first_backoff: Duration,
}

pub enum Gateway {
    /// Boxed: the client is some 700 bytes, the simulated gateway none.
    Stripe(Box<StripeGateway>),
    Simulated(SimulatedGateway),
}

impl Gateway {
    pub fn label(&self) -> &'static str {
        match self {
            Gateway::Stripe(_) => "stripe",
            Gateway::Simulated(_) => "simulated",
        }
    }

    /// The outcome of a charge, or an [`OperatorError`]: then no charge was made and the
    /// customer has nothing to do with it.
    pub async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, OperatorError> {
        match self {
            Gateway::Stripe(g) => g.charge(req).await,
            Gateway::Simulated(g) => Ok(g.charge(req).await),
        }
    }

    /// Where a processing payment stands now.
    pub async fn retrieve(&self, payment_intent: &str) -> Result<ChargeOutcome, OperatorError> {
        match self {
            Gateway::Stripe(g) => g.retrieve(payment_intent).await,
            Gateway::Simulated(g) => Ok(g.retrieve(payment_intent).await),
        }
    }

    /// Refunds (part of) a payment: an [`OperatorError`] means nothing was refunded.
    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundOutcome, OperatorError> {
        match self {
            Gateway::Stripe(g) => g.refund(req).await,
            Gateway::Simulated(g) => Ok(g.refund(req).await),
        }
    }

    /// Deletes a Stripe customer (their saved payment methods go with it).
    pub async fn delete_customer(&self, customer: &str) -> Result<(), DeleteCustomerError> {
        match self {
            Gateway::Stripe(g) => g.delete_customer(customer).await,
            Gateway::Simulated(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_echoed_by_stripe_are_redacted() {
        assert_eq!(
            redact_secrets("Invalid API Key provided: sk_test_abc123."),
            "Invalid API Key provided: [redacted]."
        );
        assert_eq!(
            redact_secrets("Authorization was 'Bearer garbage'."),
            "Authorization was 'Bearer [redacted]'."
        );
        assert_eq!(
            redact_secrets("The provided key 'rk_live_x' lacks permissions"),
            "The provided key '[redacted]' lacks permissions"
        );
        assert_eq!(
            redact_secrets("Your card was declined."),
            "Your card was declined."
        );
    }
}
