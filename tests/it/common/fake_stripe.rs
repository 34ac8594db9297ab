//! A fake Stripe API for tests: an HTTP/1.1 server on 127.0.0.1 that answers
//! `POST /v1/payment_intents`, `GET /v1/payment_intents/{id}`, `POST /v1/refunds` and `DELETE /v1/customers/{id}`
//! the way Stripe's test mode does (test payment methods such as `pm_card_visa` or
//! `pm_card_visa_chargeDeclined`), with idempotency keys and fault injection.
//!
//! The HTTP layer is [`super::http::Server`] (hyper): its own thread with its own Tokio
//! runtime, so it keeps answering while the test blocks (for example while it waits for a
//! child process) and whatever runtime the test uses. It stops when the last `FakeStripe`
//! handle is dropped.
//!
//! Where the behaviour follows Stripe rather than a simpler reading:
//! - a declined or authentication-required off-session confirmation answers 402 and leaves
//!   the PaymentIntent in `requires_payment_method` with `payment_method: null` (the failed
//!   method moves into `last_payment_error.payment_method`), as Stripe documents for
//!   off-session payments; the PaymentIntent is still created and counted;
//! - a 429 is `{"type": "invalid_request_error", "code": "rate_limit"}` (Stripe has no
//!   `rate_limit_error` type; its libraries key on the 429 status);
//! - a replayed idempotency key answers the stored status and body with
//!   `Idempotent-Replayed: true`; reusing a key with other parameters answers 400
//!   `idempotency_error`; 400 validation errors are not stored under the key;
//! - amounts below the currency minimum (EUR/USD/CHF 50, GBP 30) answer 400 `amount_too_small`;
//! - deleting a customer twice answers 404 `resource_missing` the second time.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::http;

/// Fixed clock of the fake: 2026-01-01T00:00:00Z, plus one second per object created.
const EPOCH: i64 = 1_767_225_600;

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// Path without the query string, e.g. `/v1/payment_intents`.
    pub path: String,
    /// Decoded query string pairs.
    pub query: Vec<(String, String)>,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    /// Decoded `application/x-www-form-urlencoded` body, e.g. `("metadata[invoice_id]", "42")`.
    pub form: Vec<(String, String)>,
    /// Status the fake answered (0 while the answer is still being delayed by `hang_next`).
    pub status: u16,
    /// Whether the answer was an idempotent replay of a stored response.
    pub replayed: bool,
    /// When the request arrived.
    pub arrived: std::time::Instant,
}

impl Recorded {
    /// First header with that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First form parameter with that key, e.g. `param("metadata[invoice_id]")`.
    pub fn param(&self, key: &str) -> Option<&str> {
        lookup(&self.form, key)
    }

    /// First query parameter with that key.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        lookup(&self.query, key)
    }
}

/// Handle on a running fake. Cheap to clone; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeStripe {
    server: http::Server,
    state: Arc<Mutex<State>>,
}

impl FakeStripe {
    /// Binds 127.0.0.1 on a free port and starts answering.
    pub async fn start() -> FakeStripe {
        Self::start_blocking()
    }

    /// Same as [`FakeStripe::start`], for tests that are not async.
    pub fn start_blocking() -> FakeStripe {
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let server = http::Server::start("fake-stripe", move |req| answer(st.clone(), req));
        FakeStripe { server, state }
    }

    /// `http://127.0.0.1:PORT/` — async-stripe builds `{base}v1{path}`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.server.port())
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Every request received, in order, including those answered by fault injection.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Requests with that method and path prefix, e.g. `("POST", "/v1/payment_intents")`.
    pub fn requests_to(&self, method: &str, path_prefix: &str) -> Vec<Recorded> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }

    /// PaymentIntents actually created, whatever their outcome (a declined confirmation also
    /// creates one, as on Stripe). Idempotent replays and fault-injected answers create none.
    pub fn charges_created(&self) -> usize {
        self.lock().created.len()
    }

    /// Ids of the PaymentIntents created, in order.
    pub fn payment_intent_ids(&self) -> Vec<String> {
        self.lock().created.clone()
    }

    /// PaymentIntents created that are `succeeded` now.
    pub fn succeeded_count(&self) -> usize {
        let st = self.lock();
        st.created
            .iter()
            .filter(|id| st.intents[*id]["status"] == "succeeded")
            .count()
    }

    /// The next `n` requests (any method or path) answer `status` with a Stripe error object
    /// before doing anything: 429 → `rate_limit`, 409 → `idempotency_error`, 5xx → `api_error`.
    /// Nothing is created or stored under the idempotency key.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.fail_next_with(n, status, &[]);
    }

    /// [`FakeStripe::fail_next`], the answers carrying these headers too, as Stripe's do
    /// (Stripe API "Low-level error handling"): `Stripe-Should-Retry: true|false`,
    /// `Retry-After: <seconds>`.
    pub fn fail_next_with(&self, n: usize, status: u16, headers: &[(&str, &str)]) {
        let mut st = self.lock();
        st.fail_remaining = n;
        st.fail_status = status;
        st.fail_headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// The next `n` requests are processed normally (PaymentIntent created and its answer
    /// stored under the idempotency key) but the client gets a 500 `api_error`: a lost
    /// response. Replaying the same key then returns the stored answer.
    pub fn lose_next_response(&self, n: usize) {
        self.lock().lose_remaining = n;
    }

    /// The next `n` requests are processed at once but answered only after `secs` seconds
    /// (so a client timeout leaves a created PaymentIntent behind, as a slow Stripe would).
    pub fn hang_next(&self, n: usize, secs: u64) {
        self.hang_next_for(n, Duration::from_secs(secs));
    }

    /// Every answer from now on takes `latency` (processed at once, answered after it).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// The most requests that waited for their (delayed) answer at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// The most requests that arrived within any one second.
    pub fn max_requests_per_second(&self) -> usize {
        let st = self.lock();
        let times: Vec<std::time::Instant> = st.requests.iter().map(|r| r.arrived).collect();
        let mut best = 0;
        let mut first = 0;
        for (i, t) in times.iter().enumerate() {
            while t.duration_since(times[first]) >= Duration::from_secs(1) {
                first += 1;
            }
            best = best.max(i + 1 - first);
        }
        best
    }

    /// [`FakeStripe::hang_next`] with any duration.
    pub fn hang_next_for(&self, n: usize, delay: Duration) {
        let mut st = self.lock();
        st.hang_remaining = n;
        st.hang_delay = delay;
    }

    /// Outcome the next retrieve of this `processing` SEPA PaymentIntent reports (by default
    /// it fails when the payment method id contains `fail`, else succeeds).
    pub fn set_sepa_outcome(&self, pi_id: &str, succeeded: bool) {
        self.lock()
            .sepa_override
            .insert(pi_id.to_string(), succeeded);
    }

    /// The stored PaymentIntent JSON.
    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        self.lock().intents.get(id).cloned()
    }

    /// Customers deleted so far.
    /// The refunds created (not replays), in order.
    pub fn refunds(&self) -> Vec<Value> {
        self.lock().refunds.clone()
    }

    /// The next `n` refunds created are answered `failed` with this `failure_reason` (Stripe
    /// API "The Refund object": e.g. `expired_or_canceled_card`): created, nothing refunded.
    pub fn fail_next_refunds(&self, n: usize, reason: &str) {
        let mut st = self.lock();
        st.refund_fail_remaining = n;
        st.refund_fail_reason = reason.to_string();
    }

    pub fn deleted_customers(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().deleted_customers.iter().cloned().collect();
        v.sort();
        v
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// ---------------------------------------------------------------------------------------------
// State and request handling

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    seq: u64,
    req_seq: u64,
    /// PaymentIntent ids in creation order.
    created: Vec<String>,
    intents: HashMap<String, Value>,
    /// PaymentIntent id → default SEPA outcome (true = succeeds).
    sepa: HashMap<String, bool>,
    sepa_override: HashMap<String, bool>,
    idempotency: HashMap<String, Stored>,
    deleted_customers: HashSet<String>,
    /// Refunds in creation order; PaymentIntent id → amount refunded so far.
    refunds: Vec<Value>,
    refunded: HashMap<String, i64>,
    refund_fail_remaining: usize,
    refund_fail_reason: String,
    fail_remaining: usize,
    fail_status: u16,
    fail_headers: Vec<(String, String)>,
    lose_remaining: usize,
    hang_remaining: usize,
    hang_delay: Duration,
    /// Every answer waits this long (a remote API's latency).
    latency: Duration,
    /// Requests being answered after a delay, now and at most.
    in_flight: usize,
    max_in_flight: usize,
}

struct Stored {
    method: String,
    path: String,
    form: Vec<(String, String)>,
    status: u16,
    body: String,
    request_id: String,
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    form: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn param(&self, key: &str) -> Option<&str> {
        lookup(&self.form, key)
    }
}

struct Response {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

impl Response {
    fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            body: serde_json::to_string_pretty(body).expect("json"),
            headers: Vec::new(),
        }
    }
}

/// Outcome of a processed (not fault-injected) request.
struct Outcome {
    response: Response,
    /// Store the answer under the idempotency key (Stripe stores once the endpoint ran).
    store: bool,
}

fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Answers one request; returns the answer and how long to wait before sending it.
fn handle(state: &Mutex<State>, req: Request) -> (Response, Duration, usize) {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.req_seq += 1;
    let request_id = format!("req_fake{:010}", st.req_seq);
    let index = st.requests.len();
    st.requests.push(Recorded {
        arrived: std::time::Instant::now(),
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req.headers.clone(),
        form: req.form.clone(),
        status: 0,
        replayed: false,
    });

    let mut delay = st.latency;
    if st.hang_remaining > 0 {
        st.hang_remaining -= 1;
        delay = st.hang_delay;
    }

    let idem_key = if req.method == "POST" {
        req.header("idempotency-key").map(str::to_string)
    } else {
        None
    };

    let mut replayed = false;
    let mut response = if st.fail_remaining > 0 {
        st.fail_remaining -= 1;
        let status = st.fail_status;
        let mut r = injected_error(status, &request_id);
        r.headers.extend(st.fail_headers.iter().cloned());
        r
    } else if let Some(resp) = authenticate(&req, &request_id) {
        resp
    } else if let Some(stored) = idem_key.as_ref().and_then(|k| st.idempotency.get(k)) {
        let mut a = sorted(&stored.form);
        let mut b = sorted(&req.form);
        a.dedup();
        b.dedup();
        if stored.method != req.method || stored.path != req.path || a != b {
            let key = idem_key.clone().unwrap_or_default();
            Response::json(
                400,
                &error_json(
                    "idempotency_error",
                    None,
                    &format!(
                        "Keys for idempotent requests can only be used with the same parameters \
                         they were first used with. Try using a key other than '{key}' if you \
                         meant to execute a different request."
                    ),
                    None,
                    &request_id,
                ),
            )
        } else {
            replayed = true;
            let mut r = Response {
                status: stored.status,
                body: stored.body.clone(),
                headers: Vec::new(),
            };
            r.headers
                .push(("Idempotent-Replayed".into(), "true".into()));
            r.headers
                .push(("Original-Request".into(), stored.request_id.clone()));
            r
        }
    } else {
        let outcome = route(&mut st, &req, &request_id);
        if outcome.store
            && let Some(key) = &idem_key
        {
            st.idempotency.insert(
                key.clone(),
                Stored {
                    method: req.method.clone(),
                    path: req.path.clone(),
                    form: req.form.clone(),
                    status: outcome.response.status,
                    body: outcome.response.body.clone(),
                    request_id: request_id.clone(),
                },
            );
        }
        let mut r = outcome.response;
        if st.lose_remaining > 0 {
            st.lose_remaining -= 1;
            r = Response::json(500, &api_error_json(&request_id));
        }
        r
    };

    if let Some(key) = &idem_key {
        response
            .headers
            .push(("Idempotency-Key".into(), key.clone()));
    }
    if let Some(v) = req.header("stripe-version") {
        response
            .headers
            .push(("Stripe-Version".into(), v.to_string()));
    }
    response
        .headers
        .push(("Request-Id".into(), request_id.clone()));
    let rec = &mut st.requests[index];
    rec.replayed = replayed;
    if delay.is_zero() {
        rec.status = response.status;
    }
    (response, delay, index)
}

fn sorted(form: &[(String, String)]) -> Vec<(String, String)> {
    let mut v = form.to_vec();
    v.sort();
    v
}

fn authenticate(req: &Request, request_id: &str) -> Option<Response> {
    let key = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "));
    let message = match key {
        // A restricted key without the permission (Stripe: 403, `invalid_request_error`).
        Some(k) if k.starts_with("rk_") && k.contains("noperm") => {
            return Some(Response::json(
                403,
                &error_json(
                    "invalid_request_error",
                    None,
                    &format!(
                        "The provided key '{k}' does not have the required permissions for this \
                         endpoint on account 'acct_billrun'."
                    ),
                    None,
                    request_id,
                ),
            ));
        }
        // A revoked or mistyped key: Stripe echoes what it was sent.
        Some(k) if k.contains("revoked") => format!("Invalid API Key provided: {k}"),
        Some(k) if k.starts_with("sk_") || k.starts_with("rk_") => return None,
        Some(k) => format!(
            "Invalid API Key provided: {k}. Authorization was 'Bearer {k}'. You need to provide \
             your API key in the Authorization header, using Bearer auth."
        ),
        None => "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). \
             See https://stripe.com/docs/api#authentication for details, or we can help at \
             https://support.stripe.com/."
            .to_string(),
    };
    Some(Response::json(
        401,
        &error_json("invalid_request_error", None, &message, None, request_id),
    ))
}

fn route(st: &mut State, req: &Request, request_id: &str) -> Outcome {
    let segments: Vec<&str> = req.path.trim_end_matches('/').split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("POST", ["", "v1", "payment_intents"]) => create_payment_intent(st, req, request_id),
        ("GET", ["", "v1", "payment_intents", id]) => Outcome {
            response: retrieve_payment_intent(st, id, request_id),
            store: false,
        },
        ("POST", ["", "v1", "refunds"]) => create_refund(st, req, request_id),
        ("DELETE", ["", "v1", "customers", id]) => Outcome {
            response: delete_customer(st, id, request_id),
            store: false,
        },
        _ => Outcome {
            response: Response::json(
                404,
                &error_json(
                    "invalid_request_error",
                    None,
                    &format!(
                        "Unrecognized request URL ({}: {}). Please see https://stripe.com/docs \
                         or we can help at https://support.stripe.com/.",
                        req.method, req.path
                    ),
                    None,
                    request_id,
                ),
            ),
            store: false,
        },
    }
}

fn invalid(code: &str, message: &str, param: &str, request_id: &str) -> Outcome {
    Outcome {
        response: Response::json(
            400,
            &error_json(
                "invalid_request_error",
                Some(code),
                message,
                Some(param),
                request_id,
            ),
        ),
        store: false,
    }
}

/// Behaviour of a test payment method.
enum Behaviour {
    Succeed,
    Sepa { succeeds: bool },
    Decline(Decline),
}

struct Decline {
    code: &'static str,
    decline_code: &'static str,
    message: &'static str,
    param: Option<&'static str>,
    last4: &'static str,
}

fn behaviour(pm: &str, sepa_requested: bool) -> Behaviour {
    let d = |code, decline_code, message, param, last4| {
        Behaviour::Decline(Decline {
            code,
            decline_code,
            message,
            param,
            last4,
        })
    };
    if pm.starts_with("pm_sepa") || sepa_requested {
        return Behaviour::Sepa {
            succeeds: !pm.contains("fail"),
        };
    }
    match pm {
        "pm_card_visa_chargeDeclined" | "pm_card_chargeDeclined" => d(
            "card_declined",
            "generic_decline",
            "Your card was declined.",
            None,
            "0002",
        ),
        "pm_card_visa_chargeDeclinedInsufficientFunds"
        | "pm_card_chargeDeclinedInsufficientFunds" => d(
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
            None,
            "9995",
        ),
        "pm_card_visa_chargeDeclinedLostCard" | "pm_card_chargeDeclinedLostCard" => d(
            "card_declined",
            "lost_card",
            "Your card was declined.",
            None,
            "9987",
        ),
        "pm_card_visa_chargeDeclinedStolenCard" | "pm_card_chargeDeclinedStolenCard" => d(
            "card_declined",
            "stolen_card",
            "Your card was declined.",
            None,
            "9979",
        ),
        "pm_card_chargeDeclinedExpiredCard" => d(
            "expired_card",
            "expired_card",
            "Your card has expired.",
            Some("exp_month"),
            "0069",
        ),
        "pm_card_chargeDeclinedProcessingError" => d(
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
            None,
            "0119",
        ),
        "pm_card_chargeDeclinedIncorrectNumber" => d(
            "incorrect_number",
            "incorrect_number",
            "Your card number is incorrect.",
            Some("number"),
            "4241",
        ),
        "pm_card_authenticationRequired" => d(
            "authentication_required",
            "authentication_required",
            "Your card was declined. This transaction requires authentication.",
            None,
            "3184",
        ),
        _ => Behaviour::Succeed,
    }
}

fn min_amount(currency: &str) -> Option<(i64, &'static str)> {
    match currency {
        "eur" => Some((50, "€0.50 eur")),
        "usd" => Some((50, "$0.50 usd")),
        "chf" => Some((50, "CHF 0.50 chf")),
        "gbp" => Some((30, "£0.30 gbp")),
        _ => None,
    }
}

fn create_payment_intent(st: &mut State, req: &Request, request_id: &str) -> Outcome {
    let Some(amount_s) = req.param("amount") else {
        return invalid(
            "parameter_missing",
            "Missing required param: amount.",
            "amount",
            request_id,
        );
    };
    let Ok(amount) = amount_s.parse::<i64>() else {
        return invalid(
            "parameter_invalid_integer",
            &format!("Invalid integer: {amount_s}"),
            "amount",
            request_id,
        );
    };
    let Some(currency) = req.param("currency").map(str::to_ascii_lowercase) else {
        return invalid(
            "parameter_missing",
            "Missing required param: currency.",
            "currency",
            request_id,
        );
    };
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
        return invalid(
            "parameter_invalid_string",
            &format!(
                "Invalid currency: {currency}. Stripe currently supports these currencies: eur, usd, gbp, ..."
            ),
            "currency",
            request_id,
        );
    }
    if amount < 1 {
        return invalid(
            "parameter_invalid_integer",
            "This value must be greater than or equal to 1.",
            "amount",
            request_id,
        );
    }
    if let Some((min, text)) = min_amount(&currency)
        && amount < min
    {
        return invalid(
            "amount_too_small",
            &format!("Amount must be at least {text}"),
            "amount",
            request_id,
        );
    }
    let confirm = req.param("confirm") == Some("true");
    let pm = req.param("payment_method").map(str::to_string);
    // A payment method the customer detached (or never had): Stripe answers 400
    // `resource_missing` on `payment_method`, nothing created.
    if let Some(id) = pm.as_deref().filter(|p| p.starts_with("pm_detached")) {
        return Outcome {
            response: Response::json(
                400,
                &error_json(
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such PaymentMethod: '{id}'"),
                    Some("payment_method"),
                    request_id,
                ),
            ),
            store: false,
        };
    }
    if confirm && pm.is_none() {
        return invalid(
            "parameter_missing",
            "You cannot confirm this PaymentIntent because it's missing a payment method. \
             To confirm the PaymentIntent with this customer, specify a payment method \
             attached to this customer along with the customer ID.",
            "payment_method",
            request_id,
        );
    }

    // Explicit payment method types (older `payment_method_types[i]`, or
    // async-stripe rc.10's `allowed_payment_method_types[i]`).
    let mut explicit_types: Vec<String> = Vec::new();
    for prefix in ["payment_method_types[", "allowed_payment_method_types["] {
        for (k, v) in &req.form {
            if k.starts_with(prefix) && !explicit_types.contains(v) {
                explicit_types.push(v.clone());
            }
        }
    }
    let sepa_requested = explicit_types.len() == 1 && explicit_types[0] == "sepa_debit";
    let pm_behaviour = pm.as_deref().map(|p| behaviour(p, sepa_requested));
    let is_sepa = matches!(pm_behaviour, Some(Behaviour::Sepa { .. })) || sepa_requested;

    let mut metadata = Map::new();
    for (k, v) in &req.form {
        if let Some(inner) = k
            .strip_prefix("metadata[")
            .and_then(|s| s.strip_suffix(']'))
            && !v.is_empty()
        {
            metadata.insert(inner.to_string(), Value::String(v.clone()));
        }
    }

    st.seq += 1;
    let n = st.seq;
    let id = format!("pi_fake{n:017}");
    let created = EPOCH + n as i64;
    let charge_id = if is_sepa {
        format!("py_fake{n:017}")
    } else {
        format!("ch_fake{n:017}")
    };
    let customer = req.param("customer").map(str::to_string);
    let pm_types: Vec<String> = if !explicit_types.is_empty() {
        explicit_types.clone()
    } else if is_sepa {
        vec!["sepa_debit".into()]
    } else {
        vec!["card".into()]
    };
    let pm_options = if is_sepa {
        json!({"sepa_debit": {}})
    } else {
        json!({"card": {"installments": null, "mandate_options": null, "network": null,
                         "request_three_d_secure": "automatic"}})
    };
    let automatic = if explicit_types.is_empty() {
        json!({"allow_redirects": "always", "enabled": true})
    } else {
        Value::Null
    };

    let mut pi = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": automatic,
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic",
        "client_secret": format!("{id}_secret_fake{n:020}"),
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": customer,
        "customer_account": null,
        "description": req.param("description"),
        "excluded_payment_method_types": null,
        "last_payment_error": null,
        "latest_charge": null,
        "livemode": false,
        "metadata": Value::Object(metadata),
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": pm,
        "payment_method_configuration_details": null,
        "payment_method_options": pm_options,
        "payment_method_types": pm_types,
        "processing": null,
        "receipt_email": req.param("receipt_email"),
        "review": null,
        "setup_future_usage": req.param("setup_future_usage"),
        "shipping": null,
        "source": null,
        "statement_descriptor": req.param("statement_descriptor"),
        "statement_descriptor_suffix": req.param("statement_descriptor_suffix"),
        "status": "requires_payment_method",
        "transfer_data": null,
        "transfer_group": req.param("transfer_group"),
    });

    let (status, body) = match (&pm, pm_behaviour, confirm) {
        (None, _, _) => (200, None),
        (Some(_), _, false) => {
            pi["status"] = json!("requires_confirmation");
            (200, None)
        }
        (Some(_), Some(Behaviour::Succeed), true) => {
            pi["status"] = json!("succeeded");
            pi["amount_received"] = json!(amount);
            pi["latest_charge"] = json!(charge_id);
            (200, None)
        }
        (Some(_), Some(Behaviour::Sepa { succeeds }), true) => {
            pi["status"] = json!("processing");
            pi["latest_charge"] = json!(charge_id);
            st.sepa.insert(id.clone(), succeeds);
            (200, None)
        }
        (Some(pm_id), Some(Behaviour::Decline(d)), true) => {
            let pm_obj = card_payment_method(pm_id, customer.as_deref(), d.last4, created);
            let mut err = Map::new();
            err.insert("charge".into(), json!(charge_id));
            err.insert("code".into(), json!(d.code));
            err.insert("decline_code".into(), json!(d.decline_code));
            err.insert("doc_url".into(), json!(doc_url(d.code)));
            err.insert("message".into(), json!(d.message));
            if let Some(p) = d.param {
                err.insert("param".into(), json!(p));
            }
            err.insert("payment_method".into(), pm_obj);
            err.insert("type".into(), json!("card_error"));
            pi["last_payment_error"] = Value::Object(err.clone());
            pi["latest_charge"] = json!(charge_id);
            pi["payment_method"] = Value::Null;
            pi["status"] = json!("requires_payment_method");
            err.insert("payment_intent".into(), pi.clone());
            err.insert("request_log_url".into(), json!(request_log_url(request_id)));
            (402, Some(json!({ "error": Value::Object(err) })))
        }
        (Some(_), None, _) => unreachable!("behaviour computed for every payment method"),
    };

    st.created.push(id.clone());
    st.intents.insert(id, pi.clone());
    let body = body.unwrap_or(pi);
    Outcome {
        response: Response::json(status, &body),
        store: true,
    }
}

/// `POST /v1/refunds` (Stripe API "Create a refund"): a succeeded PaymentIntent, an amount no
/// more than what it has left to refund (the whole rest when none is given).
fn create_refund(st: &mut State, req: &Request, request_id: &str) -> Outcome {
    let Some(pi_id) = req.param("payment_intent") else {
        return invalid(
            "parameter_missing",
            "One of the following params should be provided for this request: payment_intent or charge.",
            "payment_intent",
            request_id,
        );
    };
    let Some(pi) = st.intents.get(pi_id).cloned() else {
        return invalid(
            "resource_missing",
            &format!("No such payment_intent: '{pi_id}'"),
            "payment_intent",
            request_id,
        );
    };
    if pi["status"] != json!("succeeded") {
        return invalid(
            "charge_not_refundable",
            "This PaymentIntent does not have a successful charge to refund.",
            "payment_intent",
            request_id,
        );
    }
    let received = pi["amount_received"].as_i64().unwrap_or(0);
    let already = st.refunded.get(pi_id).copied().unwrap_or(0);
    let left = received - already;
    let amount = match req.param("amount").map(str::parse::<i64>) {
        None => left,
        Some(Ok(a)) if a >= 1 => a,
        Some(_) => {
            return invalid(
                "parameter_invalid_integer",
                "Invalid positive integer",
                "amount",
                request_id,
            );
        }
    };
    if left == 0 {
        return invalid(
            "charge_already_refunded",
            &format!("Charge for PaymentIntent {pi_id} has already been refunded."),
            "payment_intent",
            request_id,
        );
    }
    if amount > left {
        return invalid(
            "amount_too_large",
            &format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"
            ),
            "amount",
            request_id,
        );
    }
    st.seq += 1;
    let n = st.seq;
    let id = format!("re_fake{n:020}");
    let mut metadata = Map::new();
    for (k, v) in &req.form {
        if let Some(key) = k
            .strip_prefix("metadata[")
            .and_then(|k| k.strip_suffix(']'))
        {
            metadata.insert(key.to_string(), json!(v));
        }
    }
    let failed = st.refund_fail_remaining > 0;
    if failed {
        st.refund_fail_remaining -= 1;
    }
    let mut refund = json!({
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": format!("txn_fake{n:020}"),
        "charge": pi["latest_charge"],
        "created": pi["created"],
        "currency": pi["currency"],
        "destination_details": null,
        "metadata": Value::Object(metadata),
        "payment_intent": pi_id,
        "reason": null,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null,
    });
    if failed {
        refund["status"] = json!("failed");
        refund["failure_reason"] = json!(st.refund_fail_reason);
    } else {
        st.refunded.insert(pi_id.to_string(), already + amount);
    }
    st.refunds.push(refund.clone());
    Outcome {
        response: Response::json(200, &refund),
        store: true,
    }
}

fn retrieve_payment_intent(st: &mut State, id: &str, request_id: &str) -> Response {
    let Some(mut pi) = st.intents.get(id).cloned() else {
        return Response::json(
            404,
            &error_json(
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such payment_intent: '{id}'"),
                Some("intent"),
                request_id,
            ),
        );
    };
    if pi["status"] == "processing"
        && let Some(default) = st.sepa.get(id).copied()
    {
        let succeeds = st.sepa_override.remove(id).unwrap_or(default);
        if succeeds {
            pi["status"] = json!("succeeded");
            pi["amount_received"] = pi["amount"].clone();
        } else {
            let pm_id = pi["payment_method"]
                .as_str()
                .unwrap_or("pm_sepa")
                .to_string();
            let created = pi["created"].as_i64().unwrap_or(EPOCH);
            let customer = pi["customer"].as_str().map(str::to_string);
            pi["last_payment_error"] = json!({
                "code": "payment_intent_payment_attempt_failed",
                "doc_url": doc_url("payment_intent_payment_attempt_failed"),
                "message": "The latest payment attempt of this PaymentIntent has failed or been \
                            canceled, and the attached payment method has been removed. You can \
                            try confirming again with a new payment method.",
                "payment_method": sepa_payment_method(&pm_id, customer.as_deref(), created),
                "type": "invalid_request_error",
            });
            pi["payment_method"] = Value::Null;
            pi["status"] = json!("requires_payment_method");
        }
        st.intents.insert(id.to_string(), pi.clone());
    }
    Response::json(200, &pi)
}

fn delete_customer(st: &mut State, id: &str, request_id: &str) -> Response {
    if !st.deleted_customers.insert(id.to_string()) {
        return Response::json(
            404,
            &error_json(
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such customer: '{id}'"),
                Some("id"),
                request_id,
            ),
        );
    }
    Response::json(
        200,
        &json!({"id": id, "object": "customer", "deleted": true}),
    )
}

fn injected_error(status: u16, request_id: &str) -> Response {
    let body = match status {
        429 => error_json(
            "invalid_request_error",
            Some("rate_limit"),
            "Request rate limit exceeded. Learn more about rate limits here \
             https://stripe.com/docs/rate-limits.",
            None,
            request_id,
        ),
        409 => error_json(
            "idempotency_error",
            Some("idempotency_key_in_use"),
            "There is currently another in-progress request using this Idempotent Key \
             (that probably means you submitted twice, and the other request is still going \
             through). Please retry your request after a few seconds.",
            None,
            request_id,
        ),
        s if s >= 500 => api_error_json(request_id),
        _ => error_json(
            "invalid_request_error",
            None,
            "Injected error.",
            None,
            request_id,
        ),
    };
    Response::json(status, &body)
}

fn api_error_json(request_id: &str) -> Value {
    error_json(
        "api_error",
        None,
        "Sorry, something went wrong. We've already been notified of the problem, but if you \
         need any help, you can reach us at support.stripe.com/contact.",
        None,
        request_id,
    )
}

fn error_json(
    type_: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
    request_id: &str,
) -> Value {
    let mut err = Map::new();
    if let Some(c) = code {
        err.insert("code".into(), json!(c));
        err.insert("doc_url".into(), json!(doc_url(c)));
    }
    err.insert("message".into(), json!(message));
    if let Some(p) = param {
        err.insert("param".into(), json!(p));
    }
    err.insert("request_log_url".into(), json!(request_log_url(request_id)));
    err.insert("type".into(), json!(type_));
    json!({ "error": Value::Object(err) })
}

fn doc_url(code: &str) -> String {
    format!(
        "https://stripe.com/docs/error-codes/{}",
        code.replace('_', "-")
    )
}

fn request_log_url(request_id: &str) -> String {
    format!("https://dashboard.stripe.com/test/logs/{request_id}?t={EPOCH}")
}

fn billing_details() -> Value {
    json!({
        "address": {"city": null, "country": null, "line1": null, "line2": null,
                    "postal_code": null, "state": null},
        "email": null, "name": null, "phone": null, "tax_id": null,
    })
}

fn card_payment_method(id: &str, customer: Option<&str>, last4: &str, created: i64) -> Value {
    json!({
        "id": id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(),
        "card": {
            "brand": "visa",
            "checks": {"address_line1_check": null, "address_postal_code_check": null,
                       "cvc_check": null},
            "country": "US",
            "display_brand": "visa",
            "exp_month": 12,
            "exp_year": 2034,
            "fingerprint": format!("fakefp{last4}"),
            "funding": "credit",
            "generated_from": null,
            "last4": last4,
            "networks": {"available": ["visa"], "preferred": null},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": true},
            "wallet": null,
        },
        "created": created,
        "customer": customer,
        "livemode": false,
        "metadata": {},
        "type": "card",
    })
}

fn sepa_payment_method(id: &str, customer: Option<&str>, created: i64) -> Value {
    json!({
        "id": id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(),
        "created": created,
        "customer": customer,
        "livemode": false,
        "metadata": {},
        "sepa_debit": {
            "bank_code": "37040044",
            "branch_code": "",
            "country": "DE",
            "fingerprint": "fakefpsepa3000",
            "generated_from": {"charge": null, "setup_attempt": null},
            "last4": "3000",
        },
        "type": "sepa_debit",
    })
}

// ---------------------------------------------------------------------------------------------
// Answering (the HTTP server itself is `http.rs`)

/// Answers one request: [`handle`], then the delay (latency or `hang_next`) if any.
async fn answer(state: Arc<Mutex<State>>, req: http::Request) -> http::Response {
    let is_form = req
        .header("content-type")
        .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        decode_form(&req.body)
    } else {
        Vec::new()
    };
    let request = Request {
        query: decode_form(req.query.as_bytes()),
        method: req.method,
        path: req.path,
        headers: req.headers,
        form,
    };
    let (resp, delay, index) = handle(&state, request);
    if !delay.is_zero() {
        {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.in_flight += 1;
            st.max_in_flight = st.max_in_flight.max(st.in_flight);
        }
        // In a task of its own: a client that gives up (a timeout, a killed process) drops
        // this answer, not the count of requests in flight or the recorded status.
        let st = state.clone();
        let status = resp.status;
        let _ = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut st = st.lock().unwrap_or_else(|e| e.into_inner());
            st.in_flight -= 1;
            st.requests[index].status = status;
        })
        .await;
    }
    let mut headers: Vec<(String, String)> = vec![
        ("Server".into(), "nginx".into()),
        ("Content-Type".into(), "application/json".into()),
        ("Cache-Control".into(), "no-cache, no-store".into()),
    ];
    headers.extend(resp.headers);
    http::Response {
        status: resp.status,
        headers,
        body: resp.body.into_bytes(),
    }
}

/// Decodes `a=1&b%5Bc%5D=x+y` into pairs (percent-decoding, `+` → space).
pub fn decode_form(s: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s).into_owned().collect()
}

/// A BTreeMap view of the form, handy in assertions.
pub fn form_map(form: &[(String, String)]) -> BTreeMap<String, String> {
    form.iter().cloned().collect()
}
