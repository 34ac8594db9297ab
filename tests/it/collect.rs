//! The collect job against a server that answers as Stripe does, on both stores.

use crate::common::fake_stripe::FakeStripe;
use crate::common::{TestApp, opts};
use billrun::jobs::collect::CollectionOutcome;
use billrun::jobs::{Count, JobName, JobReport};

const INVOICED: &str = "2026-11-01T06:00:00Z";
const COLLECT: &str = "2026-11-01T07:00:00Z";

/// Fixtures invoiced for October, every account on `pm_card_visa` unless told otherwise.
async fn invoiced(app: &TestApp, pms: &[(&str, &str, &str)]) {
    app.seed_fixtures().await;
    for acc in [
        "acc-fr-consumer",
        "acc-fr-business",
        "acc-de-business",
        "acc-de-consumer",
        "acc-fi-consumer",
        "acc-us-business",
    ] {
        let (kind, pm) = pms
            .iter()
            .find(|p| p.0 == acc)
            .map(|p| (p.1, p.2))
            .unwrap_or(("card", "pm_card_visa"));
        app.set_pm(acc, kind, pm, "2026-10-01T00:00:00Z").await;
    }
    app.run(JobName::Invoice, INVOICED).await;
}

async fn collect(app: &TestApp, now: &str) -> JobReport {
    app.run(JobName::Collect, now).await
}

fn item<'a>(r: &'a JobReport, account: &str) -> &'a billrun::jobs::collect::CollectionItem {
    r.collections
        .iter()
        .find(|c| c.account_id == account)
        .unwrap_or_else(|| panic!("no collection for {account}: {:#?}", r.collections))
}

both_stores!(
    charges_each_invoice_once_with_a_derived_idempotency_key,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app, &[]).await;
        let r = collect(&app, COLLECT).await;
        assert_eq!(r.gateway, Some("stripe"));
        assert_eq!(r.counts.get(&Count::Paid), Some(&6), "{:#?}", r.collections);
        assert!(r.failures.is_empty());
        assert_eq!(fake.charges_created(), 6);
        // Reported in the candidates' order (account, then invoice), however many accounts
        // were collected at once (several on PostgreSQL).
        let order: Vec<(&str, i64)> = r
            .collections
            .iter()
            .map(|c| (c.account_id.as_str(), c.invoice_id))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);

        let bob = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(
            (
                bob.status.as_str(),
                bob.amount_paid.as_str(),
                bob.amount_due.as_str()
            ),
            ("paid", "35.65", "0.00")
        );
        assert_eq!(bob.attempts.len(), 1);
        assert_eq!(bob.attempts[0].outcome, "succeeded");
        let req = fake
            .requests_to("POST", "/v1/payment_intents")
            .into_iter()
            .find(|q| q.param("amount") == Some("3565"))
            .expect("bob's charge");
        assert_eq!(
            req.header("idempotency-key"),
            Some(format!("billrun-invoice-{}-attempt-1", bob.id.unwrap()).as_str())
        );
        assert_eq!(req.param("currency"), Some("eur"));
        assert_eq!(req.param("customer"), Some("cus_acc-fr-business"));
        assert_eq!(req.param("payment_method"), Some("pm_card_visa"));
        assert_eq!(req.param("confirm"), Some("true"));
        assert_eq!(req.param("off_session"), Some("true"));
        assert_eq!(req.param("metadata[invoice_number]"), Some("2026-000004"));
        assert_eq!(
            req.param("metadata[invoice_id]"),
            Some(bob.id.unwrap().to_string().as_str())
        );
        assert!(req.header("stripe-version").is_some());
        assert_eq!(
            bob.attempts[0].payment_intent.as_deref(),
            fake.payment_intent_ids()
                .iter()
                .find(|id| fake.payment_intent(id).unwrap()["amount"] == 3565)
                .map(|s| s.as_str())
        );

        // Receipts are in the outbox, once each.
        let receipts = app
            .outbox()
            .await
            .into_iter()
            .filter(|o| o.1 == "payment_succeeded")
            .count();
        assert_eq!(receipts, 6);

        // A second run finds nothing to do and calls nothing.
        let before = fake.requests().len();
        let again = collect(&app, "2026-11-01T08:00:00Z").await;
        assert!(again.collections.is_empty(), "{:#?}", again.collections);
        assert_eq!(fake.requests().len(), before);
    }
);

both_stores!(declines_follow_their_class, |app: TestApp| async move {
    let mut app = app;
    let fake = FakeStripe::start().await;
    app.use_stripe(&fake);
    invoiced(
        &app,
        &[
            (
                "acc-fr-business",
                "card",
                "pm_card_visa_chargeDeclinedInsufficientFunds",
            ),
            ("acc-fr-consumer", "card", "pm_card_visa_chargeDeclined"),
            (
                "acc-de-business",
                "card",
                "pm_card_chargeDeclinedExpiredCard",
            ),
            (
                "acc-fi-consumer",
                "card",
                "pm_card_visa_chargeDeclinedLostCard",
            ),
            ("acc-us-business", "card", "pm_card_authenticationRequired"),
        ],
    )
    .await;
    let r = collect(&app, COLLECT).await;
    assert_eq!(r.counts.get(&Count::FailedAttempts), Some(&5));
    assert_eq!(r.counts.get(&Count::Paid), Some(&1));
    assert_eq!(
        item(&r, "acc-fr-business").decline_code.as_deref(),
        Some("insufficient_funds")
    );
    assert_eq!(
        item(&r, "acc-de-business").decline_code.as_deref(),
        Some("expired_card")
    );
    assert_eq!(
        item(&r, "acc-us-business").decline_code.as_deref(),
        Some("authentication_required")
    );
    let soft = app.invoice("acc-fr-business", "2026-10").await;
    assert_eq!(soft.status, "unpaid");
    assert_eq!(
        soft.next_attempt_at,
        Some(crate::common::t("2026-11-04T07:00:00Z")),
        "retried 3 days later"
    );

    // The account is told: a soft decline says when the next try is; hard ones ask for action.
    let outbox = app.outbox().await;
    let kind_of = |acc: &str| {
        outbox
            .iter()
            .filter(|o| o.0 == acc)
            .map(|o| o.1.clone())
            .collect::<Vec<_>>()
    };
    assert!(kind_of("acc-fr-business").contains(&"payment_failed".to_string()));
    for hard in ["acc-de-business", "acc-fi-consumer", "acc-us-business"] {
        assert!(
            kind_of(hard).contains(&"action_required".to_string()),
            "{hard}: {:?}",
            kind_of(hard)
        );
    }

    // Nothing before the retry date.
    let n = fake.requests().len();
    let wait = collect(&app, "2026-11-03T07:00:00Z").await;
    assert_eq!(fake.requests().len(), n);
    assert_eq!(wait.counts.get(&Count::WaitingForRetry), Some(&5));

    // On day 3 the soft declines are sent again (attempt 2); the hard ones are not sent.
    let day3 = collect(&app, "2026-11-04T07:00:00Z").await;
    let sent: Vec<String> = fake.requests()[n..]
        .iter()
        .filter_map(|q| q.param("customer").map(str::to_string))
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent.contains(&"cus_acc-fr-business".to_string())
            && sent.contains(&"cus_acc-fr-consumer".to_string())
    );
    assert!(
        fake.requests()[n..]
            .iter()
            .all(|q| q.header("idempotency-key").unwrap().ends_with("-attempt-2"))
    );
    let expired = app.invoice("acc-de-business", "2026-10").await;
    assert_eq!(expired.attempts.len(), 2);
    assert_eq!(
        expired.attempts[1].gateway, "none",
        "a hard decline is not sent again with the same card"
    );
    assert_eq!(
        expired.next_attempt_at,
        Some(crate::common::t("2026-11-09T07:00:00Z"))
    );
    assert_eq!(day3.counts.get(&Count::FailedAttempts), Some(&5));
});

both_stores!(
    rate_limits_and_server_errors_never_charge_twice,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app, &[]).await;

        // 429 then success, within the run: one charge, one attempt.
        fake.fail_next(1, 429);
        let mut o = opts(COLLECT);
        o.accounts = vec!["acc-fr-business".into()];
        let r = app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(r.counts.get(&Count::Paid), Some(&1));
        let bob = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(bob.attempts.len(), 1, "a 429 is not an attempt");
        let keys: Vec<_> = fake
            .requests()
            .iter()
            .map(|q| q.header("idempotency-key").unwrap().to_string())
            .collect();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], keys[1], "the retry sends the same key");

        // 500 until the run gives up: the outcome stays unknown, and the next run settles it with
        // the same key.
        fake.fail_next(4, 500);
        let mut o = opts(COLLECT);
        o.accounts = vec!["acc-fi-consumer".into()];
        let r = app.run_with(JobName::Collect, o.clone()).await.unwrap();
        assert_eq!(r.counts.get(&Count::OutcomeUnknown), Some(&1));
        assert_eq!(r.failures.len(), 1, "an unknown outcome is reported");
        let fi = app.invoice("acc-fi-consumer", "2026-10").await;
        assert_eq!(
            (fi.status.as_str(), fi.attempts[0].outcome.as_str()),
            ("pending", "unknown")
        );
        let r = app.run_with(JobName::Collect, o.clone()).await.unwrap();
        assert_eq!(r.counts.get(&Count::Paid), Some(&1));
        let fi = app.invoice("acc-fi-consumer", "2026-10").await;
        assert_eq!(fi.attempts.len(), 1);
        assert_eq!(fi.attempts[0].outcome, "succeeded");

        // Stripe charged but the answer was lost: the in-run retry with the same key gets the
        // stored answer back instead of charging again.
        fake.lose_next_response(1);
        let mut o = opts(COLLECT);
        o.accounts = vec!["acc-us-business".into()];
        let r = app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(r.counts.get(&Count::Paid), Some(&1));
        assert_eq!(
            fake.charges_created(),
            3,
            "bob, eeva and frank: each charged once"
        );
        assert!(
            fake.requests().iter().any(|q| q.replayed),
            "answered from Stripe's idempotency store"
        );

        // The same when the run gives up after the lost answer: settled on the next run.
        app.env.jobs.collect.settings.transient_tries = 1;
        fake.lose_next_response(1);
        let mut o = opts(COLLECT);
        o.accounts = vec!["acc-de-business".into()];
        let r = app.run_with(JobName::Collect, o.clone()).await.unwrap();
        assert_eq!(r.counts.get(&Count::OutcomeUnknown), Some(&1));
        assert_eq!(fake.charges_created(), 4, "Stripe did charge");
        let r = app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(r.counts.get(&Count::Paid), Some(&1));
        assert_eq!(
            fake.charges_created(),
            4,
            "and was not asked to charge again"
        );
        let clara = app.invoice("acc-de-business", "2026-10").await;
        assert_eq!((clara.attempts.len(), clara.status.as_str()), (1, "paid"));
    }
);

/// The idempotency keys the fake Stripe received, in order.
fn keys_sent(fake: &FakeStripe) -> Vec<String> {
    fake.requests()
        .iter()
        .map(|q| q.header("idempotency-key").unwrap().to_string())
        .collect()
}

both_stores!(
    stripe_rate_limits_retry_after_header_holds_the_next_request_back_for_its_seconds,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        // The run's own backoff is short: only Retry-After can hold the retry two seconds.
        app.env.jobs.collect.settings.transient_backoff_ms = 10;
        invoiced(&app, &[]).await;
        // Stripe API "Rate limits" / RFC 9110 §10.2.3: a 429 with `Retry-After: 2`.
        fake.fail_next_with(1, 429, &[("Retry-After", "2")]);
        let mut o = opts(COLLECT);
        o.accounts = vec!["acc-fr-business".into()];
        let r = app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(r.counts.get(&Count::Paid), Some(&1), "{r:#?}");
        let requests = fake.requests();
        assert_eq!(
            requests.iter().map(|q| q.status).collect::<Vec<_>>(),
            vec![429, 200]
        );
        // On the server's own clock, the next request came at least Retry-After later (a lower
        // bound: a loaded machine only adds to it).
        let gap = requests[1].arrived.duration_since(requests[0].arrived);
        assert!(gap >= std::time::Duration::from_secs(2), "{gap:?}");
        let keys = keys_sent(&fake);
        assert_eq!(keys[0], keys[1], "the retry sends the same key");
        assert_eq!(
            app.invoice("acc-fr-business", "2026-10")
                .await
                .attempts
                .len(),
            1,
            "a 429 is not an attempt"
        );
    }
);

both_stores!(
    stripe_should_retry_header_false_is_not_retried_in_the_run_and_the_next_run_settles_it_once_with_the_same_key,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        app.env.jobs.collect.settings.transient_backoff_ms = 10;
        assert!(app.env.jobs.collect.settings.transient_tries > 1, "a 500 would be retried");
        invoiced(&app, &[]).await;
        // Stripe API "Low-level error handling": `Stripe-Should-Retry: false` on a 500.
        fake.fail_next_with(1, 500, &[("Stripe-Should-Retry", "false")]);
        let mut o = opts(COLLECT);
        o.accounts = vec!["acc-fi-consumer".into()];
        let r = app.run_with(JobName::Collect, o.clone()).await.unwrap();
        assert_eq!(r.counts.get(&Count::OutcomeUnknown), Some(&1), "{r:#?}");
        assert_eq!(fake.requests().len(), 1, "not sent again in this run");
        let fi = app.invoice("acc-fi-consumer", "2026-10").await;
        assert_eq!(
            (fi.status.as_str(), fi.attempts.len(), fi.attempts[0].outcome.as_str()),
            ("pending", 1, "unknown")
        );
        // The next run sends the same key once and settles it.
        let r = app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(r.counts.get(&Count::Paid), Some(&1), "{r:#?}");
        let keys = keys_sent(&fake);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], keys[1]);
        assert_eq!(fake.charges_created(), 1);
        let fi = app.invoice("acc-fi-consumer", "2026-10").await;
        assert_eq!(
            (fi.status.as_str(), fi.attempts.len(), fi.attempts[0].outcome.as_str()),
            ("paid", 1, "succeeded")
        );
    }
);

both_stores!(
    stripe_should_retry_header_true_is_retried_with_the_same_key_whatever_the_status,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        app.env.jobs.collect.settings.transient_backoff_ms = 10;
        invoiced(&app, &[]).await;
        // Stripe API "Low-level error handling": `Stripe-Should-Retry: true` on an answer its
        // status alone makes final (a 400 without the header stops the run: see
        // collection_truth.rs); Stripe's libraries retry it, with the same key.
        fake.fail_next_with(1, 400, &[("Stripe-Should-Retry", "true")]);
        let mut o = opts(COLLECT);
        o.accounts = vec!["acc-us-business".into()];
        let r = app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(r.counts.get(&Count::Paid), Some(&1), "{r:#?}");
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let requests = fake.requests();
        assert_eq!(
            requests.iter().map(|q| q.status).collect::<Vec<_>>(),
            vec![400, 200]
        );
        let keys = keys_sent(&fake);
        assert_eq!(keys[0], keys[1], "the retry sends the same key");
        assert_eq!(fake.charges_created(), 1);
        assert_eq!(
            app.invoice("acc-us-business", "2026-10")
                .await
                .attempts
                .len(),
            1
        );
    }
);

both_stores!(
    timeouts_and_refused_connections_leave_the_outcome_unknown,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        app.env.jobs.collect.settings.transient_tries = 1;
        invoiced(&app, &[]).await;
        fake.hang_next(1, 4);
        let mut o = opts(COLLECT);
        o.accounts = vec!["acc-de-business".into()];
        let r = app.run_with(JobName::Collect, o.clone()).await.unwrap();
        assert_eq!(r.counts.get(&Count::OutcomeUnknown), Some(&1), "{:#?}", r);
        // Stripe is unreachable now.
        app.env.jobs.collect.settings.stripe_base_url = "http://127.0.0.1:9/".into();
        let r = app.run_with(JobName::Collect, o.clone()).await.unwrap();
        assert_eq!(r.counts.get(&Count::OutcomeUnknown), Some(&1));
        app.use_stripe(&fake);
        let r = app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(r.counts.get(&Count::Paid), Some(&1));
        assert_eq!(fake.charges_created(), 1);
    }
);

both_stores!(sepa_debits_wait_then_settle, |app: TestApp| async move {
    let mut app = app;
    let fake = FakeStripe::start().await;
    app.use_stripe(&fake);
    invoiced(
        &app,
        &[
            ("acc-fr-business", "sepa_debit", "pm_sepa_debit_ok"),
            ("acc-de-business", "sepa_debit", "pm_sepa_debit_fail"),
        ],
    )
    .await;
    let r = collect(&app, COLLECT).await;
    assert_eq!(r.counts.get(&Count::Pending), Some(&2));
    assert_eq!(
        app.invoice("acc-fr-business", "2026-10").await.status,
        "pending"
    );
    let next = collect(&app, "2026-11-02T07:00:00Z").await;
    assert_eq!(
        item(&next, "acc-fr-business").outcome,
        CollectionOutcome::Succeeded
    );
    assert_eq!(
        item(&next, "acc-de-business").outcome,
        CollectionOutcome::Failed
    );
    let ok = app.invoice("acc-fr-business", "2026-10").await;
    assert_eq!(
        (ok.status.as_str(), ok.amount_paid.as_str()),
        ("paid", "35.65")
    );
    let failed = app.invoice("acc-de-business", "2026-10").await;
    assert_eq!(failed.status, "unpaid");
    assert_eq!(
        failed.next_attempt_at,
        Some(crate::common::t("2026-11-05T07:00:00Z")),
        "the schedule starts from the failure"
    );
    assert_eq!(fake.charges_created(), 6);
});

both_stores!(
    a_new_payment_method_is_charged_at_once,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(
            &app,
            &[(
                "acc-de-business",
                "card",
                "pm_card_chargeDeclinedExpiredCard",
            )],
        )
        .await;
        collect(&app, COLLECT).await;
        assert_eq!(
            app.invoice("acc-de-business", "2026-10").await.status,
            "unpaid"
        );
        app.set_pm(
            "acc-de-business",
            "card",
            "pm_card_visa",
            "2026-11-01T09:00:00Z",
        )
        .await;
        let mut o = opts("2026-11-01T09:05:00Z");
        o.accounts = vec!["acc-de-business".into()];
        let r = app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(
            item(&r, "acc-de-business").outcome,
            CollectionOutcome::Succeeded
        );
        let inv = app.invoice("acc-de-business", "2026-10").await;
        assert_eq!(inv.status, "paid");
        assert_eq!(inv.attempts[1].trigger, "payment_method_changed");
    }
);

both_stores!(
    credit_pays_first_and_the_ledger_balances,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app, &[]).await;
        assert!(
            app.add_credit("acc-fr-business", 1000, "PAYPAL-1", "2026-10-20T00:00:00Z")
                .await
        );
        assert!(
            !app.add_credit("acc-fr-business", 1000, "PAYPAL-1", "2026-10-20T00:00:00Z")
                .await,
            "idempotent by reference"
        );
        app.add_credit("acc-fi-consumer", 10000, "PAYPAL-2", "2026-10-20T00:00:00Z")
            .await;
        let r = collect(&app, COLLECT).await;
        let bob = item(&r, "acc-fr-business");
        assert_eq!(
            (bob.credit_applied.as_str(), bob.charge.as_str()),
            ("10.00", "25.65")
        );
        let eeva = item(&r, "acc-fi-consumer");
        assert_eq!(
            (
                eeva.credit_applied.as_str(),
                eeva.charge.as_str(),
                eeva.method.as_deref()
            ),
            ("6.02", "0.00", Some("credit"))
        );
        assert!(
            fake.requests()
                .iter()
                .all(|q| q.param("customer") != Some("cus_acc-fi-consumer")),
            "credit covered all: no charge"
        );
        assert!(
            fake.requests()
                .iter()
                .any(|q| q.param("amount") == Some("2565"))
        );
        let inv = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(
            (
                inv.credit_applied.as_str(),
                inv.amount_paid.as_str(),
                inv.amount_due.as_str()
            ),
            ("10.00", "25.65", "0.00")
        );
        // The ledger balances: Σ movements = balance, and each row's running balance is right.
        for acc in ["acc-fr-business", "acc-fi-consumer"] {
            let ledger = billrun::store::collection::ledger(app.db(), acc)
                .await
                .unwrap();
            let mut running = 0;
            for l in &ledger {
                running += l.amount_minor;
                assert_eq!(running, l.balance_after_minor);
            }
            assert_eq!(
                running,
                billrun::store::collection::credit_balance(app.db(), acc)
                    .await
                    .unwrap()
            );
        }
        assert_eq!(
            billrun::store::collection::credit_balance(app.db(), "acc-fi-consumer")
                .await
                .unwrap(),
            10000 - 602
        );
    }
);

both_stores!(
    small_balances_move_to_the_next_invoice,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app, &[]).await;
        // Dieter owes 0.86; 0.50 of credit leaves 0.36, below Stripe's minimum.
        app.add_credit("acc-de-consumer", 50, "PAYPAL-3", "2026-10-20T00:00:00Z")
            .await;
        let r = collect(&app, COLLECT).await;
        assert_eq!(
            item(&r, "acc-de-consumer").outcome,
            CollectionOutcome::CarriedForward
        );
        assert!(
            fake.requests()
                .iter()
                .all(|q| q.param("customer") != Some("cus_acc-de-consumer"))
        );
        let oct = app.invoice("acc-de-consumer", "2026-10").await;
        assert_eq!(
            (
                oct.status.as_str(),
                oct.carried_forward.as_str(),
                oct.amount_due.as_str()
            ),
            ("carried_forward", "0.36", "0.00")
        );
        // November's usage makes the next invoice, which brings the 0.36 forward.
        app.import_csv(billrun::import::ImportKind::Usage, "nov.csv",
        "id,app_id,kind,item,quantity,started_at,ended_at\nu-d2,app-dieter-blog,container,S,1,2026-11-02T00:00:00Z,2026-11-12T00:00:00Z\n").await.unwrap();
        app.run(JobName::Invoice, "2026-12-01T06:00:00Z").await;
        let nov = app.invoice("acc-de-consumer", "2026-11").await;
        // 240 h × 0.01 = 2.40; VAT 19% = 0.46; total 2.86; + 0.36 brought forward.
        assert_eq!(
            (
                nov.total.as_str(),
                nov.balance_brought_forward.as_str(),
                nov.amount_due.as_str()
            ),
            ("2.86", "0.36", "3.22")
        );
        assert_eq!(
            nov.brought_forward_from[0].invoice_number,
            oct.number.clone().unwrap()
        );
        assert_eq!(
            app.invoice("acc-de-consumer", "2026-10")
                .await
                .carried_forward_to,
            nov.number.clone()
        );
        collect(&app, "2026-12-01T07:00:00Z").await;
        assert!(
            fake.requests()
                .iter()
                .any(|q| q.param("customer") == Some("cus_acc-de-consumer")
                    && q.param("amount") == Some("322"))
        );
    }
);

both_stores!(
    without_a_payment_method_the_account_is_told,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, INVOICED).await;
        let r = collect(&app, COLLECT).await;
        assert_eq!(r.gateway, Some("simulated"), "no Stripe key: the simulator");
        assert!(
            r.summary().contains("[simulated gateway]"),
            "{}",
            r.summary()
        );
        assert_eq!(
            item(&r, "acc-fr-consumer").decline_code.as_deref(),
            Some("no_payment_method")
        );
        let inv = app.invoice("acc-fr-consumer", "2026-10").await;
        assert_eq!(inv.status, "unpaid");
        assert!(
            app.outbox()
                .await
                .iter()
                .any(|o| o.0 == "acc-fr-consumer" && o.1 == "action_required")
        );
        // New credit is applied at once, off the schedule.
        app.add_credit("acc-fr-consumer", 500, "PAYPAL-4", "2026-11-01T10:00:00Z")
            .await;
        let r = collect(&app, "2026-11-01T10:05:00Z").await;
        assert_eq!(
            item(&r, "acc-fr-consumer").outcome,
            CollectionOutcome::Succeeded
        );
        assert_eq!(
            app.invoice("acc-fr-consumer", "2026-10")
                .await
                .attempts
                .len(),
            1
        );
    }
);

both_stores!(
    a_dry_run_plans_and_touches_nothing,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(
            &app,
            &[("acc-fr-business", "sepa_debit", "pm_sepa_debit_ok")],
        )
        .await;
        app.add_credit("acc-fi-consumer", 200, "PAYPAL-5", "2026-10-20T00:00:00Z")
            .await;
        let before = app.dump().await;
        let mut o = opts(COLLECT);
        o.dry_run = true;
        let r = app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(app.dump().await, before);
        assert!(fake.requests().is_empty(), "a dry-run calls nothing");
        assert_eq!(r.counts.get(&Count::WouldCollect), Some(&6));
        let bob = item(&r, "acc-fr-business");
        assert_eq!(
            (bob.charge.as_str(), bob.method.as_deref()),
            ("35.65", Some("sepa_debit"))
        );
        let eeva = item(&r, "acc-fi-consumer");
        assert_eq!(
            (eeva.credit_applied.as_str(), eeva.charge.as_str()),
            ("2.00", "4.02")
        );
        // The plan, as operators see it in JSON; one snapshot for both stores.
        let plan: Vec<serde_json::Value> = r
            .collections
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap();
                v.as_object_mut().unwrap().remove("invoice_id");
                v
            })
            .collect();
        insta::assert_json_snapshot!("collect_dry_run_plan", plan);
    }
);

both_stores!(
    the_simulator_is_refused_in_production,
    |app: TestApp| async move {
        let mut app = app;
        app.env.production = true;
        let err = app
            .run_with(JobName::Collect, opts(COLLECT))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("refusing the simulated payment gateway in production"),
            "{err}"
        );
    }
);

both_stores!(
    a_process_killed_between_the_attempt_and_its_result_never_charges_twice,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app, &[]).await;
        // A jobs directory pointing the binary at the fake Stripe.
        let jobs = app.dir.path().join("jobs-crash");
        std::fs::create_dir_all(&jobs).unwrap();
        let repo_jobs = crate::common::repo_root().join("jobs");
        for job in [
            "invoice",
            "suspend",
            "hds",
            "delete",
            "deliver",
            "vat-check",
        ] {
            let file = format!("{job}.toml");
            std::fs::copy(repo_jobs.join(&file), jobs.join(&file)).unwrap();
        }
        let collect_toml = std::fs::read_to_string(repo_jobs.join("collect.toml"))
            .unwrap()
            .replace("gateway = \"auto\"", "gateway = \"stripe\"")
            .replace(
                "stripe_base_url = \"https://api.stripe.com/\"",
                &format!("stripe_base_url = \"{}\"", fake.base_url()),
            );
        std::fs::write(jobs.join("collect.toml"), collect_toml).unwrap();

        // Stripe takes the charge but its answer is slow: the process dies before it arrives.
        fake.hang_next(1, 60);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
            .args([
                "run",
                "collect",
                "--now",
                COLLECT,
                "--account",
                "acc-fr-business",
                "--jobs-dir",
                jobs.to_str().unwrap(),
            ])
            .env("BILLRUN_DATABASE_URL", &app.url)
            .env("STRIPE_SECRET_KEY", "sk_test_billrun")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        crate::common::wait_until(
            "the charge to reach Stripe",
            std::time::Duration::from_secs(30),
            async || !fake.requests().is_empty(),
        )
        .await;
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(fake.charges_created(), 1);
        let bob = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(bob.attempts.len(), 1);
        assert_eq!(
            bob.attempts[0].outcome, "unknown",
            "the attempt was committed before the call"
        );

        // The next run settles it with the same key: Stripe answers with the first charge.
        let mut o = opts("2026-11-01T08:00:00Z");
        o.accounts = vec!["acc-fr-business".into()];
        let r = app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(
            item(&r, "acc-fr-business").outcome,
            CollectionOutcome::Succeeded
        );
        assert_eq!(fake.charges_created(), 1, "no second charge");
        let keys: Vec<String> = fake
            .requests()
            .iter()
            .map(|q| q.header("idempotency-key").unwrap().to_string())
            .collect();
        assert_eq!(keys[0], keys[1]);
        let bob = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(
            (
                bob.status.as_str(),
                bob.attempts.len(),
                bob.attempts[0].outcome.as_str()
            ),
            ("paid", 1, "succeeded")
        );
    }
);

both_stores!(
    concurrent_collect_runs_charge_each_invoice_once,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(
            &app,
            &[("acc-fr-business", "sepa_debit", "pm_sepa_debit_ok")],
        )
        .await;
        app.add_credit("acc-fi-consumer", 200, "PAYPAL-C", "2026-10-20T00:00:00Z")
            .await;
        let (a, b, c) = tokio::join!(
            app.run_with(JobName::Collect, opts(COLLECT)),
            app.run_with(JobName::Collect, opts(COLLECT)),
            app.run_with(JobName::Collect, opts(COLLECT)),
        );
        for r in [&a, &b, &c] {
            assert!(r.as_ref().unwrap().failures.is_empty(), "{r:#?}");
        }
        assert_eq!(fake.charges_created(), 6, "one charge per invoice");
        // The SEPA debit is polled by three runs at once: paid once.
        let (a, b) = tokio::join!(
            app.run_with(JobName::Collect, opts("2026-11-02T07:00:00Z")),
            app.run_with(JobName::Collect, opts("2026-11-02T07:00:00Z")),
        );
        a.unwrap();
        b.unwrap();
        for acc in [
            "acc-fr-consumer",
            "acc-fr-business",
            "acc-de-business",
            "acc-de-consumer",
            "acc-fi-consumer",
            "acc-us-business",
        ] {
            let inv = app.invoice(acc, "2026-10").await;
            assert_eq!(inv.attempts.len(), 1, "{acc}: {:#?}", inv.attempts);
            assert_eq!(
                (inv.status.as_str(), inv.amount_due.as_str()),
                ("paid", "0.00"),
                "{acc}"
            );
        }
        let eeva = app.invoice("acc-fi-consumer", "2026-10").await;
        assert_eq!(
            (eeva.credit_applied.as_str(), eeva.amount_paid.as_str()),
            ("2.00", "4.02"),
            "credit applied once"
        );
        assert_eq!(
            billrun::store::collection::credit_balance(app.db(), "acc-fi-consumer")
                .await
                .unwrap(),
            0
        );
    }
);
