//! Payment gateways: Stripe (through async-stripe) and a simulator for the embedded default.
//!
//! Both answer with a [`ChargeOutcome`], which has a state for "outcome unknown": a request that
//! kept failing with 429/5xx, timed out or could not connect. The caller records it and sends the
//! same idempotency key again on the next run, so that an unknown outcome never becomes a second
//! charge.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use stripe::StripeRequest;
use tracing::debug;

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

// ---------------------------------------------------------------------------------------------
// Stripe

pub struct StripeGateway {
    client: stripe::Client,
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
        let mut base = base_url.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        let client = stripe::ClientBuilder::new(secret_key)
            .url(base)
            .timeout(timeout)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the Stripe client: {e}"))?;
        Ok(StripeGateway {
            client,
            retry,
            limiter,
        })
    }

    /// Sends a request with a fixed idempotency key, retrying transient failures with backoff.
    async fn with_retries<T, F, Fut>(&self, what: &str, mut send: F) -> Result<T, Transient>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, stripe::StripeError>>,
    {
        let mut backoff = self.retry.first_backoff;
        let mut last = String::new();
        for attempt in 1..=self.retry.tries.max(1) {
            // Every request, first or retried, takes its turn in the shared bucket.
            self.limiter.acquire().await;
            match send().await {
                Ok(v) => return Ok(v),
                Err(e) => match classify(&e) {
                    ErrorKind::Transient(reason) => {
                        if matches!(&e, stripe::StripeError::Stripe(_, 429)) {
                            // Stripe API "Rate limits": back off. async-stripe does not hand
                            // back the response's headers (`Retry-After`,
                            // `Stripe-Should-Retry`), so the bucket halves its rate instead
                            // and climbs back while no 429 comes.
                            self.limiter.slow_down();
                        }
                        debug!(request = what, attempt, reason = %reason, "transient Stripe failure, retrying");
                        last = reason;
                        if attempt < self.retry.tries {
                            tokio::time::sleep(backoff).await;
                            backoff *= 2;
                        }
                    }
                    ErrorKind::Conclusive(err) => return Err(Transient::Conclusive(err)),
                    ErrorKind::Operator(err) => return Err(Transient::Operator(err)),
                },
            }
        }
        Err(Transient::GaveUp(last))
    }

    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, OperatorError> {
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

    async fn retrieve(&self, id: &str) -> Result<ChargeOutcome, OperatorError> {
        use stripe_core::payment_intent::RetrievePaymentIntent;
        let result = self
            .with_retries("retrieve payment intent", || {
                let req = RetrievePaymentIntent::new(id.to_string());
                async move { req.send(&self.client).await }
            })
            .await;
        outcome_or_operator(result)
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundOutcome, OperatorError> {
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

    async fn delete_customer(&self, customer: &str) -> Result<(), DeleteCustomerError> {
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
                        Err(e) => Err(stripe::StripeError::ConfigError(e.to_string())),
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

// ---------------------------------------------------------------------------------------------
// The rate limit

/// A bucket every Stripe request of the process goes through (the collect and delete jobs
/// share it, through `Env`): requests leave at most `rate` per second, spaced evenly, so that
/// no second ever holds more than the rate. A 429 halves the rate; it climbs back by an eighth
/// of the configured rate each time a second's worth of requests passed without one. Rate 0:
/// no limit.
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    configured: u32,
    rate: u32,
    next_free: Option<tokio::time::Instant>,
    since_slow_down: u32,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(0)
    }
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            bucket: Mutex::new(Bucket {
                configured: per_second,
                rate: per_second,
                next_free: None,
                since_slow_down: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the configured rate (the settings may change between runs of a daemon).
    pub fn set_rate(&self, per_second: u32) {
        let mut b = self.lock();
        if b.configured != per_second {
            b.configured = per_second;
            b.rate = per_second;
            b.since_slow_down = 0;
        }
    }

    /// The rate now (lower than configured after a 429).
    pub fn rate(&self) -> u32 {
        self.lock().rate
    }

    /// Waits for this request's turn.
    pub async fn acquire(&self) {
        let at = {
            let mut b = self.lock();
            if b.configured == 0 {
                return;
            }
            let now = tokio::time::Instant::now();
            let at = b.next_free.map_or(now, |t| t.max(now));
            b.next_free = Some(at + Duration::from_secs(1) / b.rate.max(1));
            b.since_slow_down += 1;
            if b.rate < b.configured && b.since_slow_down >= b.rate {
                b.rate = (b.rate + (b.configured / 8).max(1)).min(b.configured);
                b.since_slow_down = 0;
            }
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// After a 429: half the rate, and the next request waits a full interval of it.
    pub fn slow_down(&self) {
        let mut b = self.lock();
        if b.configured == 0 {
            return;
        }
        b.rate = (b.rate / 2).max(1);
        b.since_slow_down = 0;
        let gap = Duration::from_secs(1) / b.rate;
        let now = tokio::time::Instant::now();
        b.next_free = Some(b.next_free.map_or(now, |t| t.max(now)) + gap);
    }
}

/// How long the simulated gateway takes to answer: `0` (at once), `300` (fixed, ms) or
/// `lognormal:MEDIAN_MS:SIGMA` (a log-normal spread around the median, as real API latencies
/// are). Drawn from the request's key, so that a run is repeatable.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Latency {
    #[default]
    None,
    Fixed(Duration),
    LogNormal {
        median: Duration,
        /// The spread (σ of the underlying normal), in thousandths: 500 = 0.5.
        sigma_milli: u32,
    },
}

impl std::str::FromStr for Latency {
    type Err = String;

    fn from_str(s: &str) -> Result<Latency, String> {
        let bad = || {
            format!(
                "`{s}` is not a latency: use milliseconds (`300`), or `lognormal:MEDIAN_MS:SIGMA` (`lognormal:300:0.5`)"
            )
        };
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("lognormal:") {
            let (median, sigma) = rest.split_once(':').ok_or_else(bad)?;
            let median: u64 = median.parse().map_err(|_| bad())?;
            let sigma: rust_decimal::Decimal = sigma.parse().map_err(|_| bad())?;
            let sigma_milli = (sigma * rust_decimal::Decimal::from(1000))
                .round()
                .try_into()
                .ok()
                .filter(|m: &u32| *m <= 3000)
                .ok_or_else(bad)?;
            return Ok(Latency::LogNormal {
                median: Duration::from_millis(median),
                sigma_milli,
            });
        }
        let ms: u64 = s.parse().map_err(|_| bad())?;
        Ok(if ms == 0 {
            Latency::None
        } else {
            Latency::Fixed(Duration::from_millis(ms))
        })
    }
}

impl Latency {
    /// The wait for request `n` with key `key`.
    pub fn sample(&self, key: &str, n: u64) -> Duration {
        match self {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => *d,
            Latency::LogNormal {
                median,
                sigma_milli,
            } => {
                // Box–Muller from two uniforms drawn from the key: a timing, not money.
                let digest = Sha256::digest(format!("{key}/{n}").as_bytes());
                let uniform = |b: &[u8]| {
                    let v = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                    ((v >> 11) as f64 + 0.5) / (1u64 << 53) as f64
                };
                let (u1, u2) = (uniform(&digest[..8]), uniform(&digest[8..16]));
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let factor_for_duration = (f64::from(*sigma_milli) / 1000.0 * z).exp();
                median.mul_f64(factor_for_duration.min(50.0))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The simulator

/// Behaves like Stripe's test payment methods, with no network: `pm_card_visa` pays;
/// `pm_card_visa_chargeDeclined`, `…InsufficientFunds`, `…LostCard`, `…StolenCard`,
/// `pm_card_chargeDeclinedExpiredCard`, `…ProcessingError`, `…IncorrectNumber` and
/// `pm_card_authenticationRequired` fail with Stripe's codes; a SEPA debit is `processing` and
/// settles on the next run (failed when its id contains `fail`). Deterministic: the same
/// idempotency key gives the same PaymentIntent id.
#[derive(Debug, Default, Clone)]
pub struct SimulatedGateway {
    /// How long each answer takes; `Latency::None` answers at once, with no rate limit.
    pub latency: Latency,
    /// Percent of requests that get no conclusive answer (as a Stripe 500 would).
    pub fault_percent: u32,
    /// Shared with every other gateway of the process; used only when `latency` is set, so
    /// that the simulator is then held by the rate limit as Stripe would hold billrun.
    pub limiter: Arc<RateLimiter>,
    requests: Arc<AtomicU64>,
}

impl SimulatedGateway {
    pub fn new(latency: Latency, fault_percent: u32, limiter: Arc<RateLimiter>) -> Self {
        SimulatedGateway {
            latency,
            fault_percent: fault_percent.min(100),
            limiter,
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Waits as a remote gateway would; `Some(reason)` when this request is a simulated fault.
    async fn wait(&self, key: &str) -> Option<String> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if self.latency != Latency::None {
            self.limiter.acquire().await;
            tokio::time::sleep(self.latency.sample(key, n)).await;
        }
        let draw = u64::from_le_bytes(
            Sha256::digest(format!("{key}/{n}").as_bytes())[..8]
                .try_into()
                .unwrap_or([0; 8]),
        ) % 100;
        (draw < u64::from(self.fault_percent))
            .then(|| "simulated fault: the gateway answered HTTP 500".to_string())
    }

    fn pi_id(key: &str, sepa: Option<bool>) -> String {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        match sepa {
            Some(true) => format!("pi_sim_sepa_ok_{hex}"),
            Some(false) => format!("pi_sim_sepa_fail_{hex}"),
            None => format!("pi_sim_{hex}"),
        }
    }

    /// Refunds whatever it is asked, after its latency and faults, under an id derived from the
    /// key (the same key, the same refund).
    async fn refund(&self, req: &RefundRequest) -> RefundOutcome {
        if let Some(reason) = self.wait(&req.idempotency_key).await {
            return RefundOutcome::Unknown { reason };
        }
        let digest = Sha256::digest(req.idempotency_key.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        RefundOutcome::Succeeded {
            refund: format!("re_sim_{hex}"),
        }
    }

    async fn charge(&self, req: &ChargeRequest) -> ChargeOutcome {
        if let Some(reason) = self.wait(&req.idempotency_key).await {
            return ChargeOutcome::Unknown { reason };
        }
        if req.sepa {
            let ok = !req.payment_method.to_ascii_lowercase().contains("fail");
            return ChargeOutcome::Processing {
                payment_intent: Self::pi_id(&req.idempotency_key, Some(ok)),
            };
        }
        let pi = Self::pi_id(&req.idempotency_key, None);
        let decline = |code: &str, decline: &str, message: &str| ChargeOutcome::Failed {
            payment_intent: Some(pi.clone()),
            code: Some(code.into()),
            decline_code: Some(decline.into()),
            message: message.into(),
        };
        match req.payment_method.as_str() {
            "pm_card_visa_chargeDeclined" => decline(
                "card_declined",
                "generic_decline",
                "Your card was declined.",
            ),
            "pm_card_visa_chargeDeclinedInsufficientFunds" => decline(
                "card_declined",
                "insufficient_funds",
                "Your card has insufficient funds.",
            ),
            "pm_card_visa_chargeDeclinedLostCard" => {
                decline("card_declined", "lost_card", "Your card was declined.")
            }
            "pm_card_visa_chargeDeclinedStolenCard" => {
                decline("card_declined", "stolen_card", "Your card was declined.")
            }
            "pm_card_chargeDeclinedExpiredCard" => {
                decline("expired_card", "expired_card", "Your card has expired.")
            }
            "pm_card_chargeDeclinedProcessingError" => decline(
                "processing_error",
                "processing_error",
                "An error occurred while processing your card. Try again in a little bit.",
            ),
            "pm_card_chargeDeclinedIncorrectNumber" => decline(
                "incorrect_number",
                "incorrect_number",
                "Your card number is incorrect.",
            ),
            "pm_card_authenticationRequired" => decline(
                "authentication_required",
                "authentication_required",
                "Your card was declined. This transaction requires authentication.",
            ),
            _ => ChargeOutcome::Succeeded { payment_intent: pi },
        }
    }

    async fn retrieve(&self, id: &str) -> ChargeOutcome {
        if let Some(reason) = self.wait(id).await {
            return ChargeOutcome::Unknown { reason };
        }
        if id.starts_with("pi_sim_sepa_fail_") {
            ChargeOutcome::Failed {
                payment_intent: Some(id.to_string()),
                code: Some("payment_intent_payment_attempt_failed".into()),
                decline_code: Some("insufficient_funds".into()),
                message: "The SEPA debit was refused by the customer's bank.".into(),
            }
        } else {
            ChargeOutcome::Succeeded {
                payment_intent: id.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pm: &str, sepa: bool) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: "billrun-invoice-1-attempt-1".into(),
            amount_minor: 1000,
            customer: "cus_1".into(),
            payment_method: pm.into(),
            sepa,
            invoice_id: 1,
            invoice_number: "2026-000001".into(),
        }
    }

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

    #[tokio::test]
    async fn the_simulator_answers_like_stripe_test_methods() {
        let g = SimulatedGateway::default();
        assert!(matches!(
            g.charge(&req("pm_card_visa", false)).await,
            ChargeOutcome::Succeeded { .. }
        ));
        assert_eq!(
            g.charge(&req("pm_card_visa", false)).await,
            g.charge(&req("pm_card_visa", false)).await,
            "same key, same answer"
        );
        match g
            .charge(&req("pm_card_chargeDeclinedExpiredCard", false))
            .await
        {
            ChargeOutcome::Failed { code, .. } => assert_eq!(code.as_deref(), Some("expired_card")),
            other => panic!("{other:?}"),
        }
        let ChargeOutcome::Processing { payment_intent } =
            g.charge(&req("pm_sepa_debit_fail", true)).await
        else {
            panic!()
        };
        assert!(matches!(
            g.retrieve(&payment_intent).await,
            ChargeOutcome::Failed { .. }
        ));
        let ChargeOutcome::Processing { payment_intent } =
            g.charge(&req("pm_sepa_debit_ok", true)).await
        else {
            panic!()
        };
        assert!(matches!(
            g.retrieve(&payment_intent).await,
            ChargeOutcome::Succeeded { .. }
        ));
    }

    #[test]
    fn latencies_parse_and_sample() {
        assert_eq!("0".parse::<Latency>(), Ok(Latency::None));
        assert_eq!(
            "300".parse::<Latency>(),
            Ok(Latency::Fixed(Duration::from_millis(300)))
        );
        let l: Latency = "lognormal:300:0.5".parse().unwrap();
        assert_eq!(
            l,
            Latency::LogNormal {
                median: Duration::from_millis(300),
                sigma_milli: 500
            }
        );
        assert!("fast".parse::<Latency>().unwrap_err().contains("`fast`"));
        assert!("lognormal:300".parse::<Latency>().is_err());
        // Repeatable, spread around the median: about half below it.
        let draws: Vec<Duration> = (0..1000).map(|n| l.sample("k", n)).collect();
        assert_eq!(
            draws,
            (0..1000).map(|n| l.sample("k", n)).collect::<Vec<_>>()
        );
        let below = draws
            .iter()
            .filter(|d| **d < Duration::from_millis(300))
            .count();
        assert!(
            (400..600).contains(&below),
            "{below} of 1000 below the median"
        );
    }

    /// Stripe API "Rate limits": the bucket never lets more than `rate` requests leave in any
    /// second, and a 429 halves the pace.
    #[tokio::test(start_paused = true)]
    async fn stripe_api_rate_limits_the_bucket_spaces_requests() {
        let limiter = RateLimiter::new(10);
        let start = tokio::time::Instant::now();
        let mut times = Vec::new();
        for _ in 0..30 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        for w in times.windows(11) {
            assert!(
                w[10] - w[0] >= Duration::from_secs(1),
                "11 requests within a second"
            );
        }
        limiter.slow_down();
        assert_eq!(limiter.rate(), 5);
        // It climbs back while no 429 comes.
        for _ in 0..200 {
            limiter.acquire().await;
        }
        assert_eq!(limiter.rate(), 10);
        let unlimited = RateLimiter::new(0);
        let before = tokio::time::Instant::now();
        for _ in 0..1000 {
            unlimited.acquire().await;
        }
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[test]
    fn statement_suffix_keeps_stripes_rules() {
        assert_eq!(statement_suffix("2026-000123"), "2026-000123");
        assert_eq!(statement_suffix("A<B>'C\"*"), "ABC");
        assert_eq!(statement_suffix(&"9".repeat(40)).len(), 22);
    }
}
