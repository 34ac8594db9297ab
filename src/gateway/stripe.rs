//! The Stripe gateway: async-stripe's requests, sent with billrun's idempotency keys and
//! retried within a run on transient failures; Stripe's answers sorted by who must act on them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stripe::StripeRequest;
use tracing::debug;

use super::stripe_http::{HttpError, StripeHttp};
use super::{
    ChargeOutcome, ChargeRequest, DeleteCustomerError, OperatorError, RateLimiter, RefundOutcome,
    RefundRequest, RetryPolicy, redact_secrets,
};

pub struct StripeGateway {
    client: StripeHttp,
    retry: RetryPolicy,
    limiter: Arc<RateLimiter>,
}

impl StripeGateway {
    /// `base_url` is Stripe's (`https://api.stripe.com/`) or a test server's. The key is never
    /// logged.
    pub fn new(
        secret_key: &str,
        base_url: &str,
        timeout: Duration,
        retry: RetryPolicy,
        limiter: Arc<RateLimiter>,
    ) -> anyhow::Result<StripeGateway> {
        let client = StripeHttp::new(secret_key, base_url, timeout)
            .map_err(|e| anyhow::anyhow!("cannot build the Stripe client: {e}"))?;
        Ok(StripeGateway {
            client,
            retry,
            limiter,
        })
    }

    /// Sends a request with a fixed idempotency key, retrying transient failures with backoff,
    /// as Stripe's answers say (Stripe API "Low-level error handling"):
    /// - `Stripe-Should-Retry: false`: not sent again in this run, whatever the status. A
    ///   transient answer then gives up at once: the outcome stays unknown, recorded, and the
    ///   next run sends the same key again (Stripe answers from its idempotency store if the
    ///   request was executed).
    /// - `Stripe-Should-Retry: true`: sent again with the same key while tries are left, whatever
    ///   the status (the last answer is judged by its status).
    /// - no header: 429, 409 and 5xx, timeouts and refused connections are sent again; the rest
    ///   are final.
    /// - `Retry-After: N` (on any answer): no request of the process leaves for N seconds (cut
    ///   to [`super::MAX_RETRY_AFTER`]); a 429 also halves the bucket's rate.
    async fn with_retries<T, F, Fut>(&self, what: &str, mut send: F) -> Result<T, Transient>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, HttpError>>,
    {
        let tries = self.retry.tries.max(1);
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            // Every request, first or retried, takes its turn in the shared bucket.
            self.limiter.acquire().await;
            let e = match send().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if matches!(&e.error, stripe::StripeError::Stripe(_, 429)) {
                // Stripe API "Rate limits": back off; the bucket halves its rate and climbs
                // back while no 429 comes.
                self.limiter.slow_down();
            }
            if let Some(wait) = e.retry_after {
                self.limiter.pause_for(wait);
            }
            let kind = classify(&e.error);
            let again = match (e.should_retry, &kind) {
                (Some(says), _) => says,
                (None, ErrorKind::Transient(_)) => true,
                (None, ErrorKind::Conclusive(_) | ErrorKind::Operator(_)) => false,
            };
            if !again || attempt >= tries {
                return Err(match kind {
                    ErrorKind::Transient(reason) if e.should_retry == Some(false) => {
                        debug!(request = what, attempt, reason = %reason, "Stripe-Should-Retry: false; left to the next run");
                        Transient::GaveUp(format!(
                            "{reason} (Stripe-Should-Retry: false; sent again by the next run)"
                        ))
                    }
                    ErrorKind::Transient(reason) => Transient::GaveUp(reason),
                    ErrorKind::Conclusive(outcome) => Transient::Conclusive(outcome),
                    ErrorKind::Operator(err) => Transient::Operator(err),
                });
            }
            // The status only: Stripe's message may echo the key it was sent.
            let status = match &e.error {
                stripe::StripeError::Stripe(_, status) => Some(*status),
                _ => None,
            };
            debug!(request = what, attempt, status, should_retry = ?e.should_retry, retry_after = ?e.retry_after, "transient Stripe failure or Stripe-Should-Retry: true; retrying with the same key");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    pub(super) async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, OperatorError> {
        use stripe_core::payment_intent::{CreatePaymentIntent, CreatePaymentIntentOffSession};
        let metadata = metadata(&[
            ("invoice_id", req.invoice_id.to_string()),
            ("invoice_number", req.invoice_number.clone()),
        ]);
        let key = idempotency_key(&req.idempotency_key)?;
        let result = self
            .with_retries("create payment intent", || {
                // The payment method's own type (card or SEPA debit) decides how it is charged.
                // Stripe recommends a description and, for cards, a statement descriptor
                // suffix, so that the customer recognises the charge on the statement.
                let mut create =
                    CreatePaymentIntent::new(req.amount_minor, stripe_types::Currency::EUR)
                        .customer(req.customer.clone())
                        .payment_method(req.payment_method.clone())
                        .confirm(true)
                        .off_session(CreatePaymentIntentOffSession::Bool(true))
                        .description(format!("Invoice {}", req.invoice_number))
                        .metadata(metadata.clone());
                if !req.sepa {
                    create =
                        create.statement_descriptor_suffix(statement_suffix(&req.invoice_number));
                }
                let key = key.clone();
                async move {
                    create
                        .customize()
                        .request_strategy(stripe::RequestStrategy::Idempotent(key))
                        .send(&self.client)
                        .await
                }
            })
            .await;
        outcome_or_operator(result)
    }

    pub(super) async fn retrieve(&self, id: &str) -> Result<ChargeOutcome, OperatorError> {
        use stripe_core::payment_intent::RetrievePaymentIntent;
        let result = self
            .with_retries("retrieve payment intent", || {
                let req = RetrievePaymentIntent::new(id.to_string());
                async move { req.send(&self.client).await }
            })
            .await;
        outcome_or_operator(result)
    }

    pub(super) async fn refund(&self, req: &RefundRequest) -> Result<RefundOutcome, OperatorError> {
        use stripe_core::refund::CreateRefund;
        let metadata = metadata(&[
            ("credit_note", req.credit_note_number.clone()),
            ("invoice_number", req.invoice_number.clone()),
        ]);
        let key = idempotency_key(&req.idempotency_key)?;
        let result = self
            .with_retries("create refund", || {
                let create = CreateRefund::new()
                    .payment_intent(req.payment_intent.clone())
                    .amount(req.amount_minor)
                    .metadata(metadata.clone());
                let key = key.clone();
                async move {
                    create
                        .customize()
                        .request_strategy(stripe::RequestStrategy::Idempotent(key))
                        .send(&self.client)
                        .await
                }
            })
            .await;
        match result {
            Ok(r) => Ok(refund_outcome(
                r.id.to_string(),
                r.status.as_deref(),
                r.failure_reason.as_deref(),
            )),
            // A refund Stripe refuses (more than the payment has left, a payment not refundable)
            // is an `invalid_request_error` the operator reads; the customer has nothing to do.
            Err(Transient::Operator(e)) => Err(e),
            Err(Transient::Conclusive(ChargeOutcome::Failed { message, .. })) => {
                Ok(RefundOutcome::Failed {
                    refund: None,
                    reason: redact_secrets(&message),
                })
            }
            Err(Transient::Conclusive(other)) => Ok(RefundOutcome::Failed {
                refund: None,
                reason: format!("{other:?}"),
            }),
            Err(Transient::GaveUp(reason)) => Ok(RefundOutcome::Unknown { reason }),
        }
    }

    pub(super) async fn delete_customer(&self, customer: &str) -> Result<(), DeleteCustomerError> {
        use stripe_core::customer::DeleteCustomer;
        let result = self
            .with_retries("delete customer", || {
                let req = DeleteCustomer::new(customer.to_string());
                // An idempotency key on every mutating request, derived from what it deletes.
                // Stripe API "Idempotent requests" calls DELETE idempotent by definition and
                // the key harmless there; it is sent so that every mutating call is keyed.
                let key = stripe::IdempotencyKey::new(format!("billrun-delete-{customer}"));
                async move {
                    match key {
                        Ok(key) => {
                            req.customize()
                                .request_strategy(stripe::RequestStrategy::Idempotent(key))
                                .send(&self.client)
                                .await
                        }
                        Err(e) => Err(stripe::StripeError::ConfigError(e.to_string()).into()),
                    }
                }
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already gone (404 `resource_missing` on the customer): deleting is idempotent.
            Err(Transient::Operator(OperatorError::InvalidRequest {
                status: 404,
                code: Some(c),
                ..
            })) if c == "resource_missing" => Ok(()),
            Err(Transient::Conclusive(ChargeOutcome::Failed { message, .. })) => {
                Err(DeleteCustomerError::Failed(redact_secrets(&message)))
            }
            Err(Transient::Conclusive(other)) => {
                Err(DeleteCustomerError::Failed(format!("{other:?}")))
            }
            Err(Transient::Operator(e)) => Err(e.into()),
            Err(Transient::GaveUp(reason)) => Err(DeleteCustomerError::Failed(reason)),
        }
    }
}

/// The metadata a request carries (what billrun object it is about).
fn metadata(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A key billrun derived itself: one Stripe refuses is a bug or a setting, never the customer's
/// doing.
fn idempotency_key(key: &str) -> Result<stripe::IdempotencyKey, OperatorError> {
    stripe::IdempotencyKey::new(key)
        .map_err(|e| OperatorError::Config(format!("idempotency key: {e}")))
}

/// A refund's `status` (Stripe API "The Refund object"): an unknown or missing status is not a
/// conclusion.
fn refund_outcome(refund: String, status: Option<&str>, failure: Option<&str>) -> RefundOutcome {
    match status {
        Some("succeeded") => RefundOutcome::Succeeded { refund },
        Some("pending") | Some("requires_action") => RefundOutcome::Pending { refund },
        Some("failed") | Some("canceled") => RefundOutcome::Failed {
            reason: failure.unwrap_or("refund failed").to_string(),
            refund: Some(refund),
        },
        other => RefundOutcome::Unknown {
            reason: format!("refund {refund} has status {}", other.unwrap_or("(none)")),
        },
    }
}

fn outcome_or_operator(
    result: Result<stripe_shared::PaymentIntent, Transient>,
) -> Result<ChargeOutcome, OperatorError> {
    match result {
        Ok(pi) => Ok(outcome_of(&pi)),
        Err(Transient::Conclusive(f)) => Ok(f),
        Err(Transient::Operator(e)) => Err(e),
        Err(Transient::GaveUp(reason)) => Ok(ChargeOutcome::Unknown { reason }),
    }
}

enum Transient {
    Conclusive(ChargeOutcome),
    Operator(OperatorError),
    GaveUp(String),
}

enum ErrorKind {
    Transient(String),
    /// The customer's payment method answered: a decline, a missing method.
    Conclusive(ChargeOutcome),
    Operator(OperatorError),
}

/// Who must act on a Stripe error object (issue 19; Stripe API "Errors" and "Error codes"):
/// - transient, retried with the same key: 429 (`rate_limit`), 409 (an idempotent request
///   still in flight), 5xx (`api_error`), timeouts, refused connections;
/// - the operator: any 401 or 403 whatever its type (Stripe answers a wrong key with 401 and
///   type `invalid_request_error`), `idempotency_error`, and every other
///   `invalid_request_error` (400, 404), an unknown API version included;
/// - the customer: `card_error` (HTTP 402: declines, expired cards…), `authentication_required`,
///   and `resource_missing` on the payment method (detached or gone).
fn classify_error_object(type_: &str, code: Option<&str>, param: Option<&str>, status: u16) -> Who {
    if status == 429 || status >= 500 || status == 409 {
        return Who::Transient;
    }
    if status == 401 || status == 403 {
        return Who::Operator;
    }
    if type_ == "card_error" || code == Some("authentication_required") {
        return Who::Customer;
    }
    if code == Some("resource_missing") && param.is_some_and(|p| p == "payment_method") {
        return Who::Customer;
    }
    if type_ == "api_error" {
        return Who::Transient;
    }
    Who::Operator
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Transient,
    Operator,
    Customer,
}

fn classify(e: &stripe::StripeError) -> ErrorKind {
    match e {
        stripe::StripeError::Stripe(err, status) => {
            let code = err.code.as_ref().map(|c| c.as_str().to_string());
            let type_ = err.type_.as_str();
            match classify_error_object(type_, code.as_deref(), err.param.as_deref(), *status) {
                Who::Transient => ErrorKind::Transient(format!("Stripe answered HTTP {status}")),
                Who::Operator => ErrorKind::Operator(match status {
                    401 => OperatorError::ApiKey { status: *status },
                    403 => OperatorError::Forbidden { status: *status },
                    _ => OperatorError::InvalidRequest {
                        status: *status,
                        code,
                        param: err.param.clone(),
                        message: redact_secrets(err.message.as_deref().unwrap_or(type_)),
                    },
                }),
                Who::Customer => {
                    // A payment method that is gone will not come back: a hard decline in
                    // billrun's own code (core::collection), not Stripe's `resource_missing`.
                    let missing = code.as_deref() == Some("resource_missing");
                    ErrorKind::Conclusive(ChargeOutcome::Failed {
                        payment_intent: err.payment_intent.as_ref().map(|pi| pi.id.to_string()),
                        code: if missing {
                            Some(PAYMENT_METHOD_MISSING.into())
                        } else {
                            code
                        },
                        decline_code: if missing {
                            Some(PAYMENT_METHOD_MISSING.into())
                        } else {
                            err.decline_code.clone()
                        },
                        message: redact_secrets(
                            &err.message
                                .clone()
                                .unwrap_or_else(|| format!("Stripe answered HTTP {status}")),
                        ),
                    })
                }
            }
        }
        stripe::StripeError::Timeout => ErrorKind::Transient("timed out".into()),
        stripe::StripeError::ClientError(m) => {
            ErrorKind::Transient(format!("cannot reach Stripe: {m}"))
        }
        stripe::StripeError::JSONDeserialize(m) => {
            ErrorKind::Transient(format!("unreadable answer from Stripe: {m}"))
        }
        stripe::StripeError::ConfigError(m) => {
            ErrorKind::Operator(OperatorError::Config(m.clone()))
        }
    }
}

/// billrun's code for a customer's payment method that Stripe no longer has (detached or
/// deleted): a hard decline, see `core::collection::HARD_DECLINES`.
pub const PAYMENT_METHOD_MISSING: &str = "payment_method_missing";

fn outcome_of(pi: &stripe_shared::PaymentIntent) -> ChargeOutcome {
    use stripe_shared::PaymentIntentStatus as S;
    let id = pi.id.to_string();
    match &pi.status {
        S::Succeeded => ChargeOutcome::Succeeded { payment_intent: id },
        S::Processing => ChargeOutcome::Processing { payment_intent: id },
        S::RequiresAction => ChargeOutcome::Failed {
            payment_intent: Some(id),
            code: Some("authentication_required".into()),
            decline_code: Some("authentication_required".into()),
            message: "The bank asks the customer to authenticate this payment.".into(),
        },
        S::RequiresPaymentMethod | S::RequiresConfirmation | S::Canceled => {
            let err = pi.last_payment_error.as_deref();
            ChargeOutcome::Failed {
                payment_intent: Some(id),
                code: err
                    .and_then(|e| e.code.as_ref())
                    .map(|c| c.as_str().to_string()),
                decline_code: err.and_then(|e| e.decline_code.clone()),
                message: err
                    .and_then(|e| e.message.clone())
                    .unwrap_or_else(|| format!("payment {}", pi.status.as_str())),
            }
        }
        // Manual capture is never requested; an unknown status is not a conclusion. (The enum is
        // `#[non_exhaustive]` upstream, hence the last arm.)
        S::RequiresCapture | S::Unknown(_) => ChargeOutcome::Unknown {
            reason: format!("PaymentIntent status {}", pi.status.as_str()),
        },
        _ => ChargeOutcome::Unknown {
            reason: format!("PaymentIntent status {}", pi.status.as_str()),
        },
    }
}

/// The statement descriptor suffix for an invoice: Stripe allows up to 22 characters for the
/// whole descriptor and refuses `<`, `>`, `\\`, `'`, `"` and `*` (Stripe API, PaymentIntent
/// `statement_descriptor_suffix`); an invoice number has none of them, but the rule is kept.
pub fn statement_suffix(invoice_number: &str) -> String {
    invoice_number
        .chars()
        .filter(|c| c.is_ascii() && !matches!(c, '<' | '>' | '\\' | '\'' | '"' | '*'))
        .take(22)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stripe API "Errors": who must act on each answer (issue 19).
    #[test]
    fn stripe_api_errors_are_classified_by_who_must_act() {
        use Who::*;
        let cases = [
            // A wrong key: 401 with type invalid_request_error.
            ("invalid_request_error", None, None, 401, Operator),
            ("invalid_request_error", None, None, 403, Operator),
            ("card_error", Some("card_declined"), None, 401, Operator),
            (
                "invalid_request_error",
                Some("parameter_missing"),
                Some("amount"),
                400,
                Operator,
            ),
            (
                "invalid_request_error",
                Some("resource_missing"),
                Some("customer"),
                400,
                Operator,
            ),
            ("idempotency_error", None, None, 400, Operator),
            ("card_error", Some("card_declined"), None, 402, Customer),
            (
                "card_error",
                Some("expired_card"),
                Some("exp_month"),
                402,
                Customer,
            ),
            (
                "invalid_request_error",
                Some("authentication_required"),
                None,
                402,
                Customer,
            ),
            (
                "invalid_request_error",
                Some("resource_missing"),
                Some("payment_method"),
                400,
                Customer,
            ),
            (
                "invalid_request_error",
                Some("rate_limit"),
                None,
                429,
                Transient,
            ),
            (
                "idempotency_error",
                Some("idempotency_key_in_use"),
                None,
                409,
                Transient,
            ),
            ("api_error", None, None, 500, Transient),
            ("api_error", None, None, 503, Transient),
        ];
        for (type_, code, param, status, who) in cases {
            assert_eq!(
                classify_error_object(type_, code, param, status),
                who,
                "{type_} {code:?} {param:?} {status}"
            );
        }
    }

    #[test]
    fn statement_suffix_keeps_stripes_rules() {
        assert_eq!(statement_suffix("2026-000123"), "2026-000123");
        assert_eq!(statement_suffix("A<B>'C\"*"), "ABC");
        assert_eq!(statement_suffix(&"9".repeat(40)).len(), 22);
    }
}
