//! The gateway's refunds (for credit notes, issue 22) against the fake Stripe: Stripe API
//! "Create a refund" and "Idempotent requests" — one refund per key, whatever is retried.

use std::sync::Arc;
use std::time::Duration;

use billrun::gateway::{
    ChargeOutcome, ChargeRequest, Gateway, OperatorError, RateLimiter, RefundOutcome,
    RefundRequest, RetryPolicy, StripeGateway,
};

use crate::common::fake_stripe::FakeStripe;

fn gateway(fake: &FakeStripe, tries: u32) -> Gateway {
    Gateway::Stripe(Box::new(
        StripeGateway::new(
            "sk_test_billrun",
            &fake.base_url(),
            Duration::from_secs(5),
            RetryPolicy {
                tries,
                first_backoff: Duration::from_millis(1),
            },
            Arc::new(RateLimiter::new(0)),
        )
        .unwrap(),
    ))
}

async fn paid(g: &Gateway) -> String {
    let outcome = g
        .charge(&ChargeRequest {
            idempotency_key: "billrun-inv-1-attempt-1".into(),
            amount_minor: 3600,
            customer: "cus_acc-fr".into(),
            payment_method: "pm_card_visa".into(),
            sepa: false,
            invoice_id: 1,
            invoice_number: "2026-000001".into(),
        })
        .await
        .unwrap();
    match outcome {
        ChargeOutcome::Succeeded { payment_intent } => payment_intent,
        other => panic!("the charge succeeds: {other:?}"),
    }
}

fn refund(pi: &str, amount: i64, key: &str) -> RefundRequest {
    RefundRequest {
        idempotency_key: key.into(),
        payment_intent: pi.into(),
        amount_minor: amount,
        credit_note_number: "AV-2026-000001".into(),
        invoice_number: "2026-000001".into(),
    }
}

#[tokio::test]
async fn stripe_idempotent_requests_a_refund_retried_under_its_key_refunds_once() {
    let fake = FakeStripe::start().await;
    let g = gateway(&fake, 3);
    let pi = paid(&g).await;

    // Two 500s, then Stripe answers: the same key each time, one refund.
    fake.fail_next(2, 500);
    let first = g
        .refund(&refund(&pi, 1000, "billrun-cn-1-refund-1"))
        .await
        .unwrap();
    let RefundOutcome::Succeeded { refund: id } = &first else {
        panic!("refunded: {first:?}");
    };
    // The next run sends it again (its outcome was lost, say): Stripe replays the answer.
    let again = g
        .refund(&refund(&pi, 1000, "billrun-cn-1-refund-1"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(fake.refunds().len(), 1, "one refund");
    assert_eq!(fake.refunds()[0]["id"], serde_json::json!(id));
    assert_eq!(fake.refunds()[0]["amount"], serde_json::json!(1000));
    assert_eq!(
        fake.refunds()[0]["metadata"]["credit_note"],
        serde_json::json!("AV-2026-000001")
    );
    let posts = fake.requests_to("POST", "/v1/refunds");
    assert_eq!(posts.len(), 4, "2 failed + 1 + 1 replayed");
    assert!(
        posts
            .iter()
            .all(|r| r.header("idempotency-key") == Some("billrun-cn-1-refund-1")),
        "every try carries the key"
    );
}

#[tokio::test]
async fn stripe_refunds_more_than_was_paid_is_the_operators_error_and_refunds_nothing() {
    let fake = FakeStripe::start().await;
    let g = gateway(&fake, 1);
    let pi = paid(&g).await;
    g.refund(&refund(&pi, 3000, "billrun-cn-1-refund-1"))
        .await
        .unwrap();
    let err = g
        .refund(&refund(&pi, 601, "billrun-cn-2-refund-1"))
        .await
        .unwrap_err();
    match err {
        OperatorError::InvalidRequest { status, code, .. } => {
            assert_eq!((status, code.as_deref()), (400, Some("amount_too_large")));
        }
        other => panic!("an invalid request: {other:?}"),
    }
    assert_eq!(fake.refunds().len(), 1);
}

#[tokio::test]
async fn stripe_a_refund_with_no_answer_is_unknown_then_settled_by_the_same_request() {
    let fake = FakeStripe::start().await;
    let g = gateway(&fake, 2);
    let pi = paid(&g).await;
    fake.fail_next(2, 503);
    let lost = g
        .refund(&refund(&pi, 600, "billrun-cn-3-refund-1"))
        .await
        .unwrap();
    assert!(matches!(lost, RefundOutcome::Unknown { .. }), "{lost:?}");
    assert!(fake.refunds().is_empty(), "nothing refunded yet");
    let settled = g
        .refund(&refund(&pi, 600, "billrun-cn-3-refund-1"))
        .await
        .unwrap();
    assert!(
        matches!(settled, RefundOutcome::Succeeded { .. }),
        "{settled:?}"
    );
    assert_eq!(fake.refunds().len(), 1);
}
