//! Proves that async-stripe 1.0.0-rc.10 parses every answer of the fake Stripe in
//! `tests/it/common/fake_stripe.rs`, and documents what each failure looks like as a
//! `stripe::StripeError`:
//!
//! - 402 card error      → `StripeError::Stripe(ApiErrors { type_: CardError, code, decline_code,
//!                          payment_intent: Some(pi), .. }, 402)`
//! - 400 / 404           → `StripeError::Stripe(ApiErrors { type_: InvalidRequestError, .. }, 400|404)`
//! - 429                 → `StripeError::Stripe(ApiErrors { type_: InvalidRequestError,
//!                          code: Some(RateLimit), .. }, 429)`
//! - 500 / 503           → `StripeError::Stripe(ApiErrors { type_: ApiError, .. }, 500|503)`
//! - client timeout      → `StripeError::Timeout`
//! - connection refused  → `StripeError::ClientError("client error (Connect)")`
//!
//! `RequestStrategy::Idempotent` sends once and never retries, so each test controls retries.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::fake_stripe::FakeStripe;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError};
use stripe_client_core::StripeRequest;
use stripe_core::customer::DeleteCustomer;
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentOffSession, RetrievePaymentIntent,
};
use stripe_shared::{
    ApiErrors, ApiErrorsCode, ApiErrorsType, PaymentIntent, PaymentIntentAllowedPaymentMethodTypes,
    PaymentIntentStatus,
};
use stripe_types::{Currency, Expandable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client(fake: &FakeStripe) -> Client {
    ClientBuilder::new("sk_test_x")
        .url(fake.base_url())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn charge(amount: i64, customer: &str, pm: &str, invoice: &str) -> CreatePaymentIntent {
    CreatePaymentIntent::new(amount, Currency::EUR)
        .customer(customer)
        .payment_method(pm)
        .confirm(true)
        .off_session(CreatePaymentIntentOffSession::Bool(true))
        .metadata(HashMap::from([
            ("invoice_id".to_string(), invoice.to_string()),
            ("invoice_number".to_string(), format!("INV-{invoice}")),
        ]))
}

async fn send(
    client: &Client,
    req: &CreatePaymentIntent,
    key: &str,
) -> Result<PaymentIntent, StripeError> {
    req.customize()
        .request_strategy(RequestStrategy::Idempotent(
            IdempotencyKey::new(key).expect("key"),
        ))
        .send(client)
        .await
}

async fn retrieve(client: &Client, id: &str) -> Result<PaymentIntent, StripeError> {
    RetrievePaymentIntent::new(id).send(client).await
}

fn stripe_err(res: Result<impl std::fmt::Debug, StripeError>) -> (Box<ApiErrors>, u16) {
    match res {
        Err(StripeError::Stripe(errs, status)) => (errs, status),
        other => panic!("expected StripeError::Stripe, got {other:?}"),
    }
}

fn expandable_id<T>(e: &Option<Expandable<T>>) -> Option<String>
where
    T: stripe_types::Object,
    T::Id: std::fmt::Display,
{
    e.as_ref().map(|e| e.id().to_string())
}

#[tokio::test]
async fn success_parses_and_request_is_recorded() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);
    let pi = send(&c, &charge(1999, "cus_A", "pm_card_visa", "42"), "inv-42-1")
        .await
        .expect("success parses");
    assert_eq!(pi.status, PaymentIntentStatus::Succeeded);
    assert_eq!(pi.amount, 1999);
    assert_eq!(pi.amount_received, 1999);
    assert_eq!(pi.currency, Currency::EUR);
    assert_eq!(expandable_id(&pi.customer).as_deref(), Some("cus_A"));
    assert_eq!(
        expandable_id(&pi.payment_method).as_deref(),
        Some("pm_card_visa")
    );
    assert!(expandable_id(&pi.latest_charge).unwrap().starts_with("ch_"));
    assert_eq!(pi.metadata["invoice_id"], "42");
    assert_eq!(pi.metadata["invoice_number"], "INV-42");
    assert!(pi.last_payment_error.is_none());
    assert_eq!(pi.payment_method_types, vec!["card".to_string()]);
    assert!(!pi.livemode);
    assert_eq!(fake.charges_created(), 1);

    let stored = fake.payment_intent(pi.id.as_str()).expect("stored");
    assert_eq!(stored["status"], "succeeded");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/payment_intents");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Idempotency-Key"), Some("inv-42-1"));
    assert!(r.header("stripe-version").is_some());
    assert_eq!(r.header("authorization"), Some("Bearer sk_test_x"));
    assert_eq!(r.param("amount"), Some("1999"));
    assert_eq!(r.param("currency"), Some("eur"));
    assert_eq!(r.param("customer"), Some("cus_A"));
    assert_eq!(r.param("payment_method"), Some("pm_card_visa"));
    assert_eq!(r.param("confirm"), Some("true"));
    assert_eq!(r.param("off_session"), Some("true"));
    assert_eq!(r.param("metadata[invoice_id]"), Some("42"));
    assert_eq!(r.param("metadata[invoice_number]"), Some("INV-42"));
}

#[tokio::test]
async fn declines_parse_as_card_errors() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);
    let table = [
        (
            "pm_card_visa_chargeDeclined",
            ApiErrorsCode::CardDeclined,
            "generic_decline",
        ),
        (
            "pm_card_visa_chargeDeclinedInsufficientFunds",
            ApiErrorsCode::CardDeclined,
            "insufficient_funds",
        ),
        (
            "pm_card_visa_chargeDeclinedLostCard",
            ApiErrorsCode::CardDeclined,
            "lost_card",
        ),
        (
            "pm_card_visa_chargeDeclinedStolenCard",
            ApiErrorsCode::CardDeclined,
            "stolen_card",
        ),
        (
            "pm_card_chargeDeclinedExpiredCard",
            ApiErrorsCode::ExpiredCard,
            "expired_card",
        ),
        (
            "pm_card_chargeDeclinedProcessingError",
            ApiErrorsCode::ProcessingError,
            "processing_error",
        ),
        (
            "pm_card_chargeDeclinedIncorrectNumber",
            ApiErrorsCode::IncorrectNumber,
            "incorrect_number",
        ),
    ];
    for (i, (pm, code, decline)) in table.iter().enumerate() {
        let res = send(&c, &charge(5000, "cus_B", pm, "7"), &format!("decl-{i}")).await;
        let (err, status) = stripe_err(res);
        assert_eq!(status, 402, "{pm}");
        assert_eq!(err.type_, ApiErrorsType::CardError, "{pm}");
        assert_eq!(err.code.as_ref(), Some(code), "{pm}");
        assert_eq!(err.decline_code.as_deref(), Some(*decline), "{pm}");
        assert!(!err.message.as_deref().unwrap().is_empty());
        assert!(err.charge.as_deref().unwrap().starts_with("ch_"));
        assert!(err.doc_url.is_some() && err.request_log_url.is_some());
        let pm_obj = err.payment_method.as_ref().expect("payment_method object");
        assert_eq!(pm_obj.id.as_str(), *pm);
        let pi = err
            .payment_intent
            .as_ref()
            .expect("payment_intent in error");
        assert_eq!(pi.status, PaymentIntentStatus::RequiresPaymentMethod);
        assert_eq!(pi.amount_received, 0);
        assert!(pi.payment_method.is_none());
        assert_eq!(pi.metadata["invoice_id"], "7");
        let last = pi.last_payment_error.as_ref().expect("last_payment_error");
        assert_eq!(last.code.as_ref(), Some(code));
        assert_eq!(last.decline_code.as_deref(), Some(*decline));
        // The declined PaymentIntent exists and is retrievable.
        let again = retrieve(&c, pi.id.as_str()).await.expect("retrieve");
        assert_eq!(again.status, PaymentIntentStatus::RequiresPaymentMethod);
    }
    assert_eq!(fake.charges_created(), table.len());
    assert_eq!(fake.succeeded_count(), 0);
}

#[tokio::test]
async fn authentication_required_parses() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);
    let res = send(
        &c,
        &charge(2500, "cus_C", "pm_card_authenticationRequired", "9"),
        "auth-1",
    )
    .await;
    let (err, status) = stripe_err(res);
    assert_eq!(status, 402);
    assert_eq!(err.type_, ApiErrorsType::CardError);
    assert_eq!(err.code, Some(ApiErrorsCode::AuthenticationRequired));
    assert_eq!(err.decline_code.as_deref(), Some("authentication_required"));
    let pi = err.payment_intent.expect("payment_intent");
    assert_eq!(pi.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert!(pi.client_secret.is_some());
    assert_eq!(
        pi.last_payment_error.and_then(|e| e.code),
        Some(ApiErrorsCode::AuthenticationRequired)
    );
}

#[tokio::test]
async fn sepa_processing_then_settles() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);

    // Succeeds by default.
    let pi = send(&c, &charge(12000, "cus_D", "pm_sepa_debit", "1"), "sepa-1")
        .await
        .expect("processing parses");
    assert_eq!(pi.status, PaymentIntentStatus::Processing);
    assert_eq!(pi.amount_received, 0);
    assert_eq!(pi.payment_method_types, vec!["sepa_debit".to_string()]);
    assert!(expandable_id(&pi.latest_charge).unwrap().starts_with("py_"));
    let settled = retrieve(&c, pi.id.as_str()).await.expect("retrieve");
    assert_eq!(settled.status, PaymentIntentStatus::Succeeded);
    assert_eq!(settled.amount_received, 12000);
    // Stays settled.
    let again = retrieve(&c, pi.id.as_str()).await.expect("retrieve");
    assert_eq!(again.status, PaymentIntentStatus::Succeeded);

    // Fails by default when the id contains "fail".
    let pi = send(
        &c,
        &charge(8000, "cus_E", "pm_sepa_debit_fail", "2"),
        "sepa-2",
    )
    .await
    .expect("processing parses");
    assert_eq!(pi.status, PaymentIntentStatus::Processing);
    let failed = retrieve(&c, pi.id.as_str()).await.expect("retrieve");
    assert_eq!(failed.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert_eq!(failed.amount_received, 0);
    assert!(failed.payment_method.is_none());
    let last = failed.last_payment_error.expect("last_payment_error");
    assert_eq!(
        last.code,
        Some(ApiErrorsCode::PaymentIntentPaymentAttemptFailed)
    );
    assert_eq!(
        last.payment_method.map(|p| p.id.to_string()).as_deref(),
        Some("pm_sepa_debit_fail")
    );

    // set_sepa_outcome overrides the default, and the request may name the type and mandate.
    let req = charge(3000, "cus_F", "pm_sepa_debit", "3")
        .mandate("mandate_123")
        .allowed_payment_method_types(vec![PaymentIntentAllowedPaymentMethodTypes::SepaDebit]);
    let pi = send(&c, &req, "sepa-3").await.expect("processing parses");
    assert_eq!(pi.status, PaymentIntentStatus::Processing);
    fake.set_sepa_outcome(pi.id.as_str(), false);
    let failed = retrieve(&c, pi.id.as_str()).await.expect("retrieve");
    assert_eq!(failed.status, PaymentIntentStatus::RequiresPaymentMethod);
    let last_post = fake.requests_to("POST", "/v1/payment_intents");
    let r = last_post.last().unwrap();
    assert_eq!(r.param("mandate"), Some("mandate_123"));
    assert_eq!(
        r.param("allowed_payment_method_types[0]"),
        Some("sepa_debit")
    );

    let pi = send(
        &c,
        &charge(3000, "cus_G", "pm_sepa_debit_fail", "4"),
        "sepa-4",
    )
    .await
    .unwrap();
    fake.set_sepa_outcome(pi.id.as_str(), true);
    let ok = retrieve(&c, pi.id.as_str()).await.expect("retrieve");
    assert_eq!(ok.status, PaymentIntentStatus::Succeeded);
    assert_eq!(fake.charges_created(), 4);
}

#[tokio::test]
async fn idempotency_key_replays_without_a_second_charge() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);
    let req = charge(4200, "cus_H", "pm_card_visa", "5");
    let first = send(&c, &req, "inv-5-attempt-1").await.unwrap();
    let second = send(&c, &req, "inv-5-attempt-1").await.unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(second.status, PaymentIntentStatus::Succeeded);
    assert_eq!(fake.charges_created(), 1);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert!(!reqs[0].replayed && reqs[1].replayed);

    // A stored decline is replayed too.
    let decl = charge(4200, "cus_H", "pm_card_visa_chargeDeclined", "6");
    let (e1, s1) = stripe_err(send(&c, &decl, "inv-6-attempt-1").await);
    let (e2, s2) = stripe_err(send(&c, &decl, "inv-6-attempt-1").await);
    assert_eq!((s1, s2), (402, 402));
    assert_eq!(e1.payment_intent.unwrap().id, e2.payment_intent.unwrap().id);
    assert_eq!(fake.charges_created(), 2);

    // The same key with other parameters is refused, as on Stripe.
    let other = charge(9999, "cus_H", "pm_card_visa", "5");
    let (err, status) = stripe_err(send(&c, &other, "inv-5-attempt-1").await);
    assert_eq!(status, 400);
    assert_eq!(err.type_, ApiErrorsType::IdempotencyError);
    assert_eq!(fake.charges_created(), 2);
}

#[tokio::test]
async fn server_errors_then_success() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);
    let req = charge(1500, "cus_I", "pm_card_visa", "10");
    fake.fail_next(2, 500);
    for _ in 0..2 {
        let (err, status) = stripe_err(send(&c, &req, "inv-10").await);
        assert_eq!(status, 500);
        assert_eq!(err.type_, ApiErrorsType::ApiError);
        assert!(err.code.is_none());
    }
    assert_eq!(fake.charges_created(), 0);
    let pi = send(&c, &req, "inv-10").await.unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Succeeded);
    assert_eq!(fake.charges_created(), 1);

    fake.fail_next(1, 503);
    let (err, status) = stripe_err(send(&c, &req, "inv-10").await);
    assert_eq!((status, err.type_), (503, ApiErrorsType::ApiError));
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 500, 200, 503]);
}

#[tokio::test]
async fn lost_response_then_replay_returns_the_stored_charge() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);
    let req = charge(2000, "cus_J", "pm_card_visa", "11");
    fake.lose_next_response(1);
    let (err, status) = stripe_err(send(&c, &req, "inv-11").await);
    assert_eq!((status, err.type_), (500, ApiErrorsType::ApiError));
    assert_eq!(fake.charges_created(), 1);
    let created = fake.payment_intent_ids()[0].clone();
    let pi = send(&c, &req, "inv-11").await.unwrap();
    assert_eq!(pi.id.as_str(), created);
    assert_eq!(pi.status, PaymentIntentStatus::Succeeded);
    assert_eq!(fake.charges_created(), 1);
}

#[tokio::test]
async fn rate_limited() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);
    fake.fail_next(1, 429);
    let (err, status) =
        stripe_err(send(&c, &charge(1500, "cus_K", "pm_card_visa", "12"), "k").await);
    assert_eq!(status, 429);
    assert_eq!(err.type_, ApiErrorsType::InvalidRequestError);
    assert_eq!(err.code, Some(ApiErrorsCode::RateLimit));
    assert_eq!(fake.charges_created(), 0);
    // Fault injection applies to GET too.
    fake.fail_next(1, 429);
    let (_, status) = stripe_err(retrieve(&c, "pi_whatever").await);
    assert_eq!(status, 429);
}

#[tokio::test]
async fn timeout_and_refused_connection() {
    let fake = FakeStripe::start().await;
    let c = ClientBuilder::new("sk_test_x")
        .url(fake.base_url())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let req = charge(1800, "cus_L", "pm_card_visa", "13");
    fake.hang_next(1, 3);
    let res = send(&c, &req, "inv-13").await;
    assert!(matches!(res, Err(StripeError::Timeout)), "{res:?}");
    // The hanging request was processed: a retry with the same key replays it.
    assert_eq!(fake.charges_created(), 1);
    let pi = send(&c, &req, "inv-13").await.unwrap();
    assert_eq!(pi.id.as_str(), fake.payment_intent_ids()[0]);
    assert_eq!(fake.charges_created(), 1);

    // Nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = ClientBuilder::new("sk_test_x")
        .url(format!("http://127.0.0.1:{port}/"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let res = send(&dead, &req, "inv-13").await;
    match res {
        Err(StripeError::ClientError(msg)) => {
            assert!(msg.contains("Connect") || msg.contains("connect"), "{msg}")
        }
        other => panic!("expected ClientError, got {other:?}"),
    }
}

#[tokio::test]
async fn delete_customer_parses() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);
    let deleted = DeleteCustomer::new("cus_M").send(&c).await.expect("parses");
    assert_eq!(deleted.id.as_str(), "cus_M");
    let r = &fake.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("DELETE", "/v1/customers/cus_M")
    );
    // A second delete: Stripe no longer knows the customer.
    let (err, status) = stripe_err(DeleteCustomer::new("cus_M").send(&c).await);
    assert_eq!(status, 404);
    assert_eq!(err.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(fake.deleted_customers(), vec!["cus_M".to_string()]);
}

#[tokio::test]
async fn not_found_and_invalid_requests() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);
    let (err, status) = stripe_err(retrieve(&c, "pi_missing").await);
    assert_eq!(status, 404);
    assert_eq!(err.type_, ApiErrorsType::InvalidRequestError);
    assert_eq!(err.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(err.param.as_deref(), Some("intent"));

    // An endpoint the fake does not serve.
    let (err, status) = stripe_err(
        stripe_core::customer::RetrieveCustomer::new("cus_X")
            .send(&c)
            .await,
    );
    assert_eq!(status, 404);
    assert!(err.message.unwrap().starts_with("Unrecognized request URL"));

    // Below the EUR minimum.
    let (err, status) =
        stripe_err(send(&c, &charge(30, "cus_N", "pm_card_visa", "14"), "small").await);
    assert_eq!(status, 400);
    assert_eq!(err.code, Some(ApiErrorsCode::AmountTooSmall));
    assert_eq!(err.param.as_deref(), Some("amount"));
    assert_eq!(fake.charges_created(), 0);
}

/// Raw HTTP: a body async-stripe would never send, form decoding, keep-alive.
#[tokio::test]
async fn raw_http_missing_and_bad_amount() {
    let fake = FakeStripe::start().await;
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", fake.port()))
        .await
        .unwrap();
    let mut exchange = async |body: &str| -> (u16, serde_json::Value) {
        let req = format!(
            "POST /v1/payment_intents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk_test_x\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
            body.len(),
            body
        );
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        loop {
            let mut tmp = [0u8; 4096];
            let n = sock.read(&mut tmp).await.unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&tmp[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(head.contains("Content-Type: application/json"));
                assert!(head.contains("Request-Id: req_"));
                if rest.len() >= len {
                    let status = head[9..12].parse().unwrap();
                    return (status, serde_json::from_str(&rest[..len]).unwrap());
                }
            }
        }
    };
    let (status, body) = exchange("currency=eur&description=a+b%26c").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "parameter_missing");
    assert_eq!(body["error"]["param"], "amount");
    // Same connection (keep-alive).
    let (status, body) = exchange("amount=12.5&currency=eur").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "parameter_invalid_integer");
    assert_eq!(body["error"]["param"], "amount");
    let reqs = fake.requests();
    assert_eq!(reqs[0].param("description"), Some("a b&c"));
    assert_eq!(reqs[0].header("idempotency-key"), None);
    assert_eq!(fake.charges_created(), 0);
}

#[tokio::test]
async fn every_request_carries_the_stripe_headers() {
    let fake = FakeStripe::start().await;
    let c = client(&fake);
    let pi = send(&c, &charge(1000, "cus_O", "pm_sepa_debit", "15"), "h-1")
        .await
        .unwrap();
    let _ = send(
        &c,
        &charge(1000, "cus_O", "pm_card_visa_chargeDeclined", "16"),
        "h-2",
    )
    .await;
    fake.fail_next(1, 500);
    let _ = send(&c, &charge(1000, "cus_O", "pm_card_visa", "17"), "h-3").await;
    retrieve(&c, pi.id.as_str()).await.unwrap();
    DeleteCustomer::new("cus_O").send(&c).await.unwrap();
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 5);
    for r in &reqs {
        assert!(r.header("stripe-version").is_some(), "{r:?}");
        assert!(r.header("user-agent").is_some(), "{r:?}");
        if r.method == "POST" {
            assert!(r.header("idempotency-key").is_some(), "{r:?}");
            assert_eq!(
                r.header("content-type"),
                Some("application/x-www-form-urlencoded")
            );
        }
    }
}

/// A test that is not async can drive the fake too (its server has its own thread).
#[test]
fn works_from_a_blocking_test() {
    let fake = FakeStripe::start_blocking();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    use std::io::{Read, Write};
    s.write_all(
        b"DELETE /v1/customers/cus_P HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk_test_x\r\n\
          Connection: close\r\n\r\n",
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("\"deleted\": true"));
}
