//! Issue 19: collection that never misleads a customer. An operator's fault (a wrong key, an
//! invalid request) is not a customer's decline; "the payment method changed" is a fact about
//! the method, not about two clocks; no gateway text reaches a customer.

use std::path::PathBuf;

use crate::common::fake_stripe::FakeStripe;
use crate::common::{TestApp, opts};
use billrun::jobs::collect::CollectionOutcome;
use billrun::jobs::{Count, JobName, Secret};

const INVOICED: &str = "2026-11-01T06:00:00Z";
const COLLECT: &str = "2026-11-01T07:00:00Z";
const ACCOUNTS: [&str; 6] = [
    "acc-fr-consumer",
    "acc-fr-business",
    "acc-de-business",
    "acc-de-consumer",
    "acc-fi-consumer",
    "acc-us-business",
];

/// The fixtures invoiced for October, every account on `pm`.
async fn invoiced(app: &TestApp, pm: &str) {
    invoiced_declining(app, pm, &[]).await;
}

/// The fixtures invoiced for October, on `pm`, but the `declining` accounts on a card declined
/// for insufficient funds.
async fn invoiced_declining(app: &TestApp, pm: &str, declining: &[&str]) {
    app.seed_fixtures().await;
    for acc in ACCOUNTS {
        let pm = if declining.contains(&acc) {
            "pm_card_visa_chargeDeclinedInsufficientFunds"
        } else {
            pm
        };
        app.set_pm(acc, "card", pm, "2026-10-01T00:00:00Z").await;
    }
    app.run(JobName::Invoice, INVOICED).await;
}

/// A jobs directory pointing the binary at the fake Stripe.
fn stripe_jobs_dir(app: &TestApp, fake: &FakeStripe) -> PathBuf {
    let jobs = app.dir.path().join("jobs-stripe");
    std::fs::create_dir_all(&jobs).unwrap();
    let repo_jobs = crate::common::repo_root().join("jobs");
    for entry in std::fs::read_dir(&repo_jobs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, jobs.join(path.file_name().unwrap())).unwrap();
        }
    }
    let collect_toml = std::fs::read_to_string(repo_jobs.join("collect.toml"))
        .unwrap()
        .replace("gateway = \"auto\"", "gateway = \"stripe\"")
        .replace(
            "stripe_base_url = \"https://api.stripe.com/\"",
            &format!("stripe_base_url = \"{}\"", fake.base_url()),
        )
        // One try per run: the test needs no backoff.
        .replace("transient_tries = 4", "transient_tries = 1");
    std::fs::write(jobs.join("collect.toml"), collect_toml).unwrap();
    jobs
}

/// What a customer could have been told: emails about payments, and "payment failed" events.
async fn customer_notices(app: &TestApp) -> (Vec<String>, i64) {
    let emails: Vec<String> = app
        .outbox()
        .await
        .into_iter()
        .filter(|(_, kind, _)| kind == "payment_failed" || kind == "action_required")
        .map(|(a, k, _)| format!("{a} {k}"))
        .collect();
    let sql = "SELECT COUNT(*) FROM account_events WHERE kind = 'payment.failed'";
    let (events,): (i64,) =
        billrun::with_db!(app.db(), p => sqlx::query_as(sql).fetch_one(p).await.unwrap());
    (emails, events)
}

both_stores!(
    stripe_api_errors_401_wrong_key_is_an_operator_error_never_a_decline,
    |app: TestApp| async move {
        let fake = FakeStripe::start().await;
        invoiced(&app, "pm_card_visa").await;
        let jobs = stripe_jobs_dir(&app, &fake);
        let run = |key: &str, now: &str| {
            std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
                .args(["run", "collect", "--now", now, "--jobs-dir"])
                .arg(&jobs)
                .env("BILLRUN_DATABASE_URL", &app.url)
                .env("STRIPE_SECRET_KEY", key)
                .output()
                .unwrap()
        };

        let out = run("garbage", COLLECT);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(3), "exit 3: {stderr}");
        assert!(
            stderr.contains("Stripe rejected the API key (401): check STRIPE_SECRET_KEY"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("garbage"),
            "the key is never printed: {stderr}"
        );
        // The run stopped at the first: at most one request per worker reached Stripe.
        let concurrency = app.env.jobs.collect.settings.concurrency.max(1) as usize;
        let sent = fake.requests().len();
        assert!((1..=concurrency).contains(&sent), "{sent} requests");
        assert_eq!(fake.charges_created(), 0);
        // Nothing against any customer: no decline, no schedule move, no email, no event.
        assert_eq!(customer_notices(&app).await, (Vec::new(), 0));
        for acc in ACCOUNTS {
            let inv = app.invoice(acc, "2026-10").await;
            assert!(
                inv.attempts.iter().all(|a| a.outcome == "unknown"),
                "{acc}: {:?}",
                inv.attempts
            );
            assert!(inv.attempts.len() <= 1);
            assert_eq!(inv.next_attempt_at, None, "{acc}: no schedule move");
            assert_ne!(inv.status, "unpaid", "{acc}");
        }
        let (status,): (String,) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT status FROM job_runs WHERE job = 'collect' ORDER BY id DESC LIMIT 1")
            .fetch_one(p).await.unwrap());
        assert_eq!(status, "failed");

        // The next run with a good key carries on where it stopped: each invoice charged once.
        let out = run("sk_test_billrun", "2026-11-01T08:00:00Z");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(fake.charges_created(), 6);
        assert_eq!(fake.succeeded_count(), 6);
        for acc in ACCOUNTS {
            let inv = app.invoice(acc, "2026-10").await;
            assert_eq!(inv.status, "paid", "{acc}");
            assert_eq!(
                inv.attempts.len(),
                1,
                "{acc}: the unknown attempt was sent again"
            );
        }
        assert_eq!(customer_notices(&app).await, (Vec::new(), 0));
    }
);

both_stores!(
    stripe_api_errors_403_and_400_invalid_request_stop_the_run_without_a_decline,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        app.env.jobs.collect.settings.transient_tries = 1;
        invoiced(&app, "pm_card_visa").await;

        // A restricted key without the permission: 403.
        app.env.stripe_key = Some(Secret("rk_test_noperm".into()));
        let e = app
            .run_with(JobName::Collect, opts(COLLECT))
            .await
            .expect_err("a 403 stops the run");
        let text = format!("{e:#}");
        assert!(text.contains("(403)"), "{text}");
        assert!(!text.contains("rk_test_noperm"), "{text}");
        assert!(
            e.downcast_ref::<billrun::gateway::OperatorError>()
                .is_some()
        );

        // An invalid request (400 `invalid_request_error`, as an unknown API version is).
        app.env.stripe_key = Some(Secret("sk_test_billrun".into()));
        fake.fail_next(1, 400);
        let e = app
            .run_with(JobName::Collect, opts("2026-11-01T07:10:00Z"))
            .await
            .expect_err("a 400 stops the run");
        assert!(
            format!("{e:#}").contains("Stripe refused the request as invalid (400"),
            "{e:#}"
        );
        assert_eq!(customer_notices(&app).await, (Vec::new(), 0));
        // Charges other workers had in flight when the run stopped (PostgreSQL collects
        // `concurrency` accounts at once) went through; no new one was started.
        let concurrency = app.env.jobs.collect.settings.concurrency.max(1) as usize;
        assert!(fake.charges_created() < concurrency);

        // Fixed: everything is collected, each invoice once.
        app.run(JobName::Collect, "2026-11-01T07:20:00Z").await;
        assert_eq!(fake.charges_created(), 6);
        for acc in ACCOUNTS {
            let inv = app.invoice(acc, "2026-10").await;
            assert_eq!(inv.status, "paid", "{acc}");
            assert_eq!(inv.attempts.len(), 1, "{acc}");
        }
    }
);

both_stores!(
    stripe_api_resource_missing_payment_method_is_the_customers_hard_decline,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app, "pm_card_visa").await;
        app.set_pm(
            "acc-fr-business",
            "card",
            "pm_detached_1",
            "2026-10-02T00:00:00Z",
        )
        .await;
        let r = app.run(JobName::Collect, COLLECT).await;
        assert_eq!(r.counts.get(&Count::Paid), Some(&5), "{r:#?}");
        let bob = r
            .collections
            .iter()
            .find(|c| c.account_id == "acc-fr-business")
            .unwrap();
        assert_eq!(bob.outcome, CollectionOutcome::Failed);
        assert_eq!(bob.decline_code.as_deref(), Some("payment_method_missing"));
        // Hard: the account is asked to act, in billrun's words.
        let notices = customer_notices(&app).await;
        assert_eq!(
            notices.0,
            vec!["acc-fr-business action_required".to_string()]
        );
    }
);

both_stores!(
    a_customer_email_never_quotes_the_gateway,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app, "pm_card_visa_chargeDeclinedInsufficientFunds").await;
        app.set_pm(
            "acc-de-business",
            "card",
            "pm_card_chargeDeclinedExpiredCard",
            "2026-10-02T00:00:00Z",
        )
        .await;
        app.run(JobName::Collect, COLLECT).await;
        let sql = "SELECT kind, language, data FROM outbox WHERE kind IN ('payment_failed', 'action_required')";
        let rows: Vec<(String, String, String)> =
            billrun::with_db!(app.db(), p => sqlx::query_as(sql).fetch_all(p).await.unwrap());
        assert_eq!(rows.len(), 6);
        let templates = billrun::documents::email::Templates::builtin();
        for (kind, language, data) in rows {
            assert!(!data.contains("Your card"), "{data}");
            let mut value: serde_json::Value = serde_json::from_str(&data).unwrap();
            assert!(value.get("message").is_none(), "{data}");
            for key in billrun::documents::email::COMMON_KEYS {
                value[*key] = serde_json::json!("x");
            }
            let mail = templates
                .render(kind.parse().unwrap(), &language, &value)
                .unwrap();
            for part in [&mail.subject, &mail.text, &mail.html] {
                assert!(!part.contains("Your card"), "{part}");
                assert!(!part.contains("payment provider"), "{part}");
                assert!(!part.contains("prestataire"), "{part}");
            }
        }
    }
);

both_stores!(
    payment_method_change_is_decided_by_the_method_not_by_two_clocks,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced_declining(&app, "pm_card_visa", &["acc-fr-business"]).await;
        app.run(JobName::Collect, COLLECT).await;
        // The dashboard sets a new (also failing) card on the wall clock, weeks "later"…
        app.set_pm(
            "acc-fr-business",
            "card",
            "pm_card_chargeDeclinedProcessingError",
            "2026-12-05T10:00:00Z",
        )
        .await;
        // …and an operator replays November's days.
        for day in [
            "2026-11-02T07:00:00Z",
            "2026-11-03T07:00:00Z",
            "2026-11-04T07:00:00Z",
            "2026-11-09T07:00:00Z",
            "2026-11-16T07:00:00Z",
            "2026-11-20T07:00:00Z",
        ] {
            app.run(JobName::Collect, day).await;
        }
        let inv = app.invoice("acc-fr-business", "2026-10").await;
        let triggers: Vec<&str> = inv.attempts.iter().map(|a| a.trigger.as_str()).collect();
        assert_eq!(
            triggers,
            [
                "initial",
                "payment_method_changed",
                "retry",
                "retry",
                "retry"
            ],
            "{:#?}",
            inv.attempts
        );
        assert_eq!(inv.status, "unpaid");
        // The last scheduled attempt failed: the lifecycle takes over.
        let (exhausted,): (Option<String>,) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT CAST(collection_exhausted_at AS TEXT) FROM invoices WHERE account_id = 'acc-fr-business'")
            .fetch_one(p).await.unwrap());
        assert!(exhausted.is_some(), "retries exhausted");
    }
);

both_stores!(
    stripe_api_errors_401_in_the_delete_job_stop_the_run_and_resume,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        app.seed_fixtures().await;
        app.seed_platform_fixtures().await;
        for acc in ACCOUNTS {
            app.set_pm(acc, "card", "pm_card_visa", "2026-10-01T00:00:00Z")
                .await;
        }
        app.run(JobName::Invoice, INVOICED).await;
        app.run(JobName::Collect, COLLECT).await;
        app.cli(&[
            "app",
            "delete",
            "app-alice-web",
            "--at",
            "2026-11-05T09:00:00Z",
        ]);
        billrun::closing::request(
            &app.env,
            "acc-fr-consumer",
            crate::common::t("2026-11-05T10:00:00Z"),
        )
        .await
        .unwrap();
        let (data,): (String,) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT data FROM outbox WHERE account_id = 'acc-fr-consumer' AND kind = 'account_deletion_confirmation'")
            .fetch_one(p).await.unwrap());
        let token: serde_json::Value = serde_json::from_str(&data).unwrap();
        billrun::closing::confirm(
            &app.env,
            "acc-fr-consumer",
            token["token"].as_str().unwrap(),
            crate::common::t("2026-11-05T11:00:00Z"),
        )
        .await
        .unwrap();
        // The account's emails have gone out (the deliverer ran in between).
        billrun::with_db!(app.db(), p => sqlx::query("UPDATE outbox SET status = 'sent'")
            .execute(p).await.unwrap().rows_affected());

        app.env.stripe_key = Some(Secret("sk_test_revoked_1".into()));
        let e = app
            .run_with(JobName::Delete, opts("2026-11-06T08:30:00Z"))
            .await
            .expect_err("a wrong key stops the delete run");
        let text = format!("{e:#}");
        assert!(
            text.contains("Stripe rejected the API key (401): check STRIPE_SECRET_KEY"),
            "{text}"
        );
        assert!(!text.contains("revoked"), "{text}");
        assert!(fake.deleted_customers().is_empty());

        app.env.stripe_key = Some(Secret("sk_test_billrun".into()));
        let r = app.run(JobName::Delete, "2026-11-07T08:30:00Z").await;
        assert_eq!(r.counts.get(&Count::Deleted), Some(&1), "{r:#?}");
        assert_eq!(
            fake.deleted_customers(),
            vec!["cus_acc-fr-consumer".to_string()]
        );
        // An idempotency key on the deletion too (Stripe API "Idempotent requests").
        let delete = fake
            .requests()
            .into_iter()
            .rfind(|q| q.method == "DELETE")
            .unwrap();
        assert_eq!(
            delete.header("idempotency-key"),
            Some("billrun-delete-cus_acc-fr-consumer")
        );
    }
);

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Fixtures invoiced and collected for October on the simulated gateway, `declining` accounts
/// on a card that is declined for insufficient funds.
async fn unpaid(app: &TestApp, declining: &[&str]) {
    invoiced_declining(app, "pm_card_visa", declining).await;
    app.run(JobName::Collect, COLLECT).await;
}

both_stores!(
    a_new_payment_method_is_charged_right_away_seeds_billing,
    |app: TestApp| async move {
        unpaid(&app, &["acc-fr-business", "acc-de-business"]).await;
        assert_eq!(
            app.invoice("acc-fr-business", "2026-10").await.status,
            "unpaid"
        );
        let out = app.cli(&[
            "payment-method",
            "set",
            "--account",
            "acc-fr-business",
            "--kind",
            "card",
            "--stripe-customer",
            "cus_bob",
            "--stripe-payment-method",
            "pm_card_visa",
            "--now",
            "2026-11-02T10:00:00Z",
        ]);
        assert!(out.status.success(), "{out:?}");
        let text = stdout(&out);
        assert!(text.contains("payment method set"), "{text}");
        assert!(text.contains(": paid: 35.65 EUR by card"), "{text}");
        let bob = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(bob.status, "paid");
        let last = bob.attempts.last().unwrap();
        assert_eq!(
            (last.trigger.as_str(), last.at),
            (
                "payment_method_changed",
                crate::common::t("2026-11-02T10:00:00Z")
            ),
            "charged by the command, at its --now"
        );

        // --no-charge only records it; the older --at still works.
        let out = app.cli(&[
            "payment-method",
            "set",
            "--account",
            "acc-de-business",
            "--kind",
            "card",
            "--stripe-customer",
            "cus_de",
            "--stripe-payment-method",
            "pm_card_visa",
            "--at",
            "2026-11-02T10:00:00Z",
            "--no-charge",
        ]);
        assert!(out.status.success(), "{out:?}");
        assert!(!stdout(&out).contains("invoice"), "{}", stdout(&out));
        assert_eq!(
            app.invoice("acc-de-business", "2026-10").await.status,
            "unpaid"
        );
    }
);

both_stores!(
    new_credit_pays_an_owed_invoice_right_away_seeds_billing,
    |app: TestApp| async move {
        unpaid(&app, &["acc-fr-business"]).await;
        let out = app.cli(&[
            "credit",
            "add",
            "--account",
            "acc-fr-business",
            "--amount",
            "100.00",
            "--reference",
            "PAYPAL-9",
            "--now",
            "2026-11-03T09:00:00Z",
        ]);
        assert!(out.status.success(), "{out:?}");
        let text = stdout(&out);
        assert!(
            text.contains("paid: 0.00 EUR by prepaid credit, 35.65 EUR of credit"),
            "{text}"
        );
        let bob = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(
            (bob.status.as_str(), bob.credit_applied.as_str()),
            ("paid", "35.65")
        );
        // Nothing owed any more: a second purchase charges nothing.
        let out = app.cli(&[
            "credit",
            "add",
            "--account",
            "acc-fr-business",
            "--amount",
            "5.00",
            "--reference",
            "PAYPAL-10",
            "--now",
            "2026-11-04T09:00:00Z",
        ]);
        assert!(stdout(&out).contains("nothing owed: no charge"), "{out:?}");
    }
);

both_stores!(
    sepa_debit_is_refused_outside_the_european_union_seeds_billing,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let out = app.cli(&[
            "payment-method",
            "set",
            "--account",
            "acc-us-business",
            "--kind",
            "sepa_debit",
            "--stripe-customer",
            "cus_us",
            "--stripe-payment-method",
            "pm_sepa_us",
        ]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("European Union"), "{err}");
        assert!(
            billrun::store::collection::payment_method(app.db(), "acc-us-business")
                .await
                .unwrap()
                .is_none(),
            "nothing recorded"
        );
        let out = app.cli(&[
            "payment-method",
            "set",
            "--account",
            "acc-de-business",
            "--kind",
            "sepa_debit",
            "--stripe-customer",
            "cus_de",
            "--stripe-payment-method",
            "pm_sepa_de",
        ]);
        assert!(out.status.success(), "{out:?}");
    }
);
