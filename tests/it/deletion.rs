//! Account deletion, on both stores: the request and its preconditions, the final invoice,
//! the confirmation token, the `delete` job (batches, crash and resume, Stripe customer),
//! and what stays (invoices, stripped).

use billrun::core::lifecycle::AccountStatus;
use std::collections::BTreeMap;

use billrun::core::deletion::{CATEGORIES, Category};
use billrun::import::ImportKind;
use billrun::jobs::delete::DeletionOutcome;
use billrun::jobs::{Count, JobName, JobReport};

use crate::common::TestApp;
use crate::common::fake_stripe::FakeStripe;
use crate::common::smtp::SmtpServer;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The fixtures, October billed on November 1st, every card working except `declining`'s.
async fn october_billed(app: &TestApp, declining: Option<&str>) {
    app.seed_fixtures().await;
    app.seed_platform_fixtures().await;
    for acc in [
        "acc-fr-consumer",
        "acc-fr-business",
        "acc-de-business",
        "acc-de-consumer",
        "acc-fi-consumer",
        "acc-us-business",
    ] {
        let pm = if Some(acc) == declining {
            "pm_card_visa_chargeDeclinedInsufficientFunds"
        } else {
            "pm_card_visa"
        };
        app.set_pm(acc, "card", pm, "2026-10-01T00:00:00Z").await;
    }
    app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
    app.run(JobName::Collect, "2026-11-01T07:00:00Z").await;
}

/// Points the deliver job at a real SMTP server (aiosmtpd), kept alive by the caller.
fn with_smtp(app: &mut TestApp) -> SmtpServer {
    let smtp = SmtpServer::start();
    app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
    smtp
}

/// The deliver job, as the daemon runs it every five minutes.
async fn deliver(app: &TestApp, now: &str) -> JobReport {
    app.run(JobName::Deliver, now).await
}

/// (kind, status, address) of an account's emails, in queue order.
async fn emails_of(app: &TestApp, account: &str) -> Vec<(String, String, String)> {
    billrun::with_db!(app.db(), p => sqlx::query_as(
        "SELECT kind, status, to_address FROM outbox WHERE account_id = $1 ORDER BY id")
        .bind(account).fetch_all(p).await.unwrap())
}

async fn latest_token(app: &TestApp, account: &str) -> String {
    let (data,): (String,) = billrun::with_db!(app.db(), p => sqlx::query_as(
        "SELECT data FROM outbox WHERE account_id = $1 AND kind = 'account_deletion_confirmation' ORDER BY id DESC LIMIT 1")
        .bind(account).fetch_one(p).await.unwrap());
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    v["token"].as_str().unwrap().to_string()
}

async fn account_status(app: &TestApp, account: &str) -> AccountStatus {
    billrun::store::accounts::get_account(app.db(), account)
        .await
        .unwrap()
        .unwrap()
        .status
}

/// What the delete job should remove for an account, counted before it runs.
async fn expected_counts(app: &TestApp, account: &str) -> BTreeMap<&'static str, i64> {
    let mut out = BTreeMap::new();
    for c in CATEGORIES {
        let n = billrun::store::deletion::remaining(app.db(), account, *c)
            .await
            .unwrap();
        out.insert(
            c.as_str(),
            if *c == Category::StripeCustomer {
                n.min(1)
            } else {
                n
            },
        );
    }
    out
}

async fn recorded_counts(app: &TestApp, account: &str) -> BTreeMap<String, (i64, bool)> {
    billrun::store::deletion::progress(app.db(), account)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.category, (p.deleted, p.completed_at.is_some())))
        .collect()
}

both_stores!(
    a_request_is_refused_then_billed_confirmed_and_deleted,
    |app: TestApp| async move {
        let mut app = app;
        let _smtp = with_smtp(&mut app);
        october_billed(&app, Some("acc-fr-business")).await;
        let october = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(october.status, "unpaid");
        let number = october.number.clone().unwrap();

        // Refused: two apps and an unpaid invoice, each named.
        let out = app.cli(&[
            "account",
            "request-deletion",
            "acc-fr-business",
            "--now",
            "2026-11-10T09:00:00Z",
        ]);
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        let msg = text(&out);
        for needle in [
            "bob-api (app-bob-api)",
            "bob-worker (app-bob-worker)",
            &number,
            "unpaid",
        ] {
            assert!(msg.contains(needle), "missing {needle}: {msg}");
        }
        assert_eq!(
            app.count("deletion_requests").await,
            0,
            "a refusal changes nothing"
        );

        // The owner deletes both apps: only the invoice is left in the way.
        for a in ["app-bob-api", "app-bob-worker"] {
            let out = app.cli(&["app", "delete", a, "--at", "2026-11-10T10:00:00Z"]);
            assert!(out.status.success(), "{}", text(&out));
        }
        let again = app.cli(&[
            "app",
            "delete",
            "app-bob-api",
            "--at",
            "2026-11-10T10:05:00Z",
        ]);
        assert!(text(&again).contains("already deleted"), "{}", text(&again));
        let out = app.cli(&[
            "account",
            "request-deletion",
            "acc-fr-business",
            "--now",
            "2026-11-10T10:30:00Z",
        ]);
        assert_eq!(out.status.code(), Some(4));
        let msg = text(&out);
        assert!(msg.contains(&number) && !msg.contains("bob-api"), "{msg}");

        // A new card pays October at once; then the request is accepted: November so far is
        // billed (up to the apps' deletion) and collected at once, and the token is emailed.
        app.set_pm(
            "acc-fr-business",
            "card",
            "pm_card_visa",
            "2026-11-10T11:00:00Z",
        )
        .await;
        app.run(JobName::Collect, "2026-11-10T11:05:00Z").await;
        assert_eq!(
            app.invoice("acc-fr-business", "2026-10").await.status,
            "paid"
        );
        let out = app.cli(&[
            "account",
            "request-deletion",
            "acc-fr-business",
            "--now",
            "2026-11-10T12:00:00Z",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["status"], "confirmation_sent");
        assert_eq!(report["expires_at"], "2026-11-13T12:00:00Z");
        let finals = report["final_invoices"].as_array().unwrap();
        assert_eq!(finals.len(), 1, "{report:#}");
        let november = app.invoice("acc-fr-business", "2026-11").await;
        assert_eq!(november.status, "paid", "collected at once");
        // bob-api: 2 × M for 9 days 10 hours; bob-worker: 1 × L for the same time.
        let hours = rust_decimal::Decimal::from(9 * 24 + 10);
        let lines: Vec<(String, rust_decimal::Decimal)> = november
            .lines
            .iter()
            .map(|l| {
                (
                    l.app_id.clone().unwrap_or_default(),
                    l.quantity_hours.parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                (
                    "app-bob-api".to_string(),
                    hours * rust_decimal::Decimal::TWO
                ),
                ("app-bob-worker".to_string(), hours)
            ],
            "{november:#?}"
        );
        let token = latest_token(&app, "acc-fr-business").await;
        assert!(token.starts_with("dlt_") && token.len() > 40);
        let stored: (String,) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT token_sha256 FROM deletion_requests WHERE account_id = 'acc-fr-business'").fetch_one(p).await.unwrap());
        assert_eq!(stored.0, billrun::core::deletion::token_digest(&token));
        assert!(!stored.0.contains(&token[4..]), "only the digest is stored");

        // A wrong token changes nothing.
        let before = app.dump().await;
        let out = app.cli(&[
            "account",
            "confirm-deletion",
            "acc-fr-business",
            "dlt_not_the_token",
            "--now",
            "2026-11-10T13:00:00Z",
        ]);
        assert_eq!(out.status.code(), Some(4));
        assert!(text(&out).contains("does not match"), "{}", text(&out));
        assert_eq!(app.dump().await, before);

        // The right one deactivates and queues; using it again is refused.
        let out = app.cli(&[
            "account",
            "confirm-deletion",
            "acc-fr-business",
            &token,
            "--now",
            "2026-11-10T13:00:00Z",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            account_status(&app, "acc-fr-business").await,
            AccountStatus::Deactivated
        );
        let before = app.dump().await;
        let out = app.cli(&[
            "account",
            "confirm-deletion",
            "acc-fr-business",
            &token,
            "--now",
            "2026-11-10T13:05:00Z",
        ]);
        assert_eq!(out.status.code(), Some(4));
        assert!(text(&out).contains("already used"), "{}", text(&out));
        assert_eq!(app.dump().await, before);

        // The daemon's deliver job sends the invoices, receipts and the confirmation (the
        // delete job waits for them before it strips the address).
        let r = deliver(&app, "2026-11-11T08:00:00Z").await;
        assert!(r.failures.is_empty(), "{:?}", r.failures);

        // The delete job: a dry-run plans exactly what the run then does.
        let expected = expected_counts(&app, "acc-fr-business").await;
        assert_eq!(expected["deployments"], 3);
        assert_eq!(expected["aliases"], 2);
        assert_eq!(expected["domains"], 2);
        assert_eq!(expected["certificates"], 3);
        assert_eq!(expected["payment_methods"], 1);
        assert_eq!(expected["stripe_customer"], 1);
        assert_eq!(expected["apps"], 0, "deleted by the owner already");
        assert!(expected["activity"] >= 5, "{expected:?}");
        let mut dry = crate::common::opts("2026-11-11T08:30:00Z");
        dry.dry_run = true;
        let before = app.dump().await;
        let plan = app.run_with(JobName::Delete, dry).await.unwrap();
        assert_eq!(app.dump().await, before, "a dry-run changes nothing");
        assert_eq!(plan.deletions.len(), 1);
        let invoices_before = app.count("invoices").await;
        let lines_before = app.count("invoice_lines").await;
        let attempts_before = app.count("payment_attempts").await;
        let r = app.run(JobName::Delete, "2026-11-11T08:30:00Z").await;
        assert_eq!(r.counts.get(&Count::Deleted), Some(&1), "{r:#?}");
        let done = &r.deletions[0];
        for (p, d) in plan.deletions[0].categories.iter().zip(&done.categories) {
            assert_eq!(p.category, d.category);
            if p.category != Category::PersonalData {
                assert_eq!(p.count, d.count, "{:?}", p.category);
                assert_eq!(expected[p.category.as_str()], d.count, "{:?}", p.category);
            }
        }
        for table in ["deployments", "aliases", "domains", "certificates"] {
            let n: (i64,) = billrun::with_db!(app.db(), p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table} WHERE id LIKE '%bob%'"))).fetch_one(p).await.unwrap());
            assert_eq!(n.0, 0, "{table}");
        }
        // Other accounts keep theirs.
        assert_eq!(app.count("aliases").await, 2);
        assert_eq!(
            account_status(&app, "acc-fr-business").await,
            AccountStatus::Deleted
        );

        // Kept: invoices, lines and payments (with the buyer identity an invoice requires);
        // stripped: the profile, the Stripe ids.
        assert_eq!(app.count("invoices").await, invoices_before);
        assert_eq!(app.count("invoice_lines").await, lines_before);
        assert_eq!(app.count("payment_attempts").await, attempts_before);
        let kept = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(kept.buyer.name, "Bob Durand");
        let acc = billrun::store::accounts::get_account(app.db(), "acc-fr-business")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                acc.email.as_str(),
                acc.name.as_str(),
                acc.company.as_deref()
            ),
            ("", "Deleted account", None)
        );
        let ids: Vec<(Option<String>, Option<String>)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT a.stripe_customer, a.stripe_payment_method FROM payment_attempts a JOIN invoices i ON i.id = a.invoice_id
             WHERE i.account_id = 'acc-fr-business'").fetch_all(p).await.unwrap());
        assert!(
            !ids.is_empty() && ids.iter().all(|r| r.0.is_none() && r.1.is_none()),
            "{ids:?}"
        );
        assert_eq!(
            billrun::store::events::timeline(app.db(), "acc-fr-business")
                .await
                .unwrap()
                .len(),
            0,
            "activity deleted"
        );
        // The deletion record, and the farewell email addressed before the profile went.
        let record = billrun::store::deletion::record(app.db(), "acc-fr-business")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.reason, "request");
        assert!(record.completed_at.is_some());
        let (to, data): (String, String) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT to_address, data FROM outbox WHERE account_id = 'acc-fr-business' AND kind = 'account_deleted'").fetch_one(p).await.unwrap());
        assert_eq!(to, "bob@example.com");
        assert!(
            data.contains("\"reason\":\"request\"") && data.contains("Bob Durand"),
            "{data}"
        );

        // Running again does nothing.
        let before = app.dump().await;
        let r = app.run(JobName::Delete, "2026-11-12T08:30:00Z").await;
        assert!(r.deletions.is_empty());
        assert_eq!(app.dump().await, before);
    }
);

both_stores!(
    an_expired_token_is_refused_and_a_new_request_replaces_it,
    |app: TestApp| async move {
        october_billed(&app, None).await;
        app.cli(&[
            "app",
            "delete",
            "app-alice-web",
            "--at",
            "2026-11-05T09:00:00Z",
        ]);
        let out = app.cli(&[
            "account",
            "request-deletion",
            "acc-fr-consumer",
            "--now",
            "2026-11-05T10:00:00Z",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("confirmation email was queued"),
            "{}",
            text(&out)
        );
        let first = latest_token(&app, "acc-fr-consumer").await;
        // 72 hours later the token has expired.
        let before = app.dump().await;
        let out = app.cli(&[
            "account",
            "confirm-deletion",
            "acc-fr-consumer",
            &first,
            "--now",
            "2026-11-08T10:00:00Z",
        ]);
        assert_eq!(out.status.code(), Some(4));
        assert!(text(&out).contains("expired"), "{}", text(&out));
        assert_eq!(app.dump().await, before);
        // A new request: the old token no longer works, the new one does.
        let out = app.cli(&[
            "account",
            "request-deletion",
            "acc-fr-consumer",
            "--now",
            "2026-11-08T11:00:00Z",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let second = latest_token(&app, "acc-fr-consumer").await;
        assert_ne!(first, second);
        let out = app.cli(&[
            "account",
            "confirm-deletion",
            "acc-fr-consumer",
            &first,
            "--now",
            "2026-11-08T12:00:00Z",
        ]);
        assert_eq!(out.status.code(), Some(4));
        assert!(text(&out).contains("does not match"), "{}", text(&out));
        let out = app.cli(&[
            "account",
            "confirm-deletion",
            "acc-fr-consumer",
            &second,
            "--now",
            "2026-11-08T12:00:00Z",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            account_status(&app, "acc-fr-consumer").await,
            AccountStatus::Deactivated
        );
        // A deactivated account cannot ask again.
        let out = app.cli(&[
            "account",
            "request-deletion",
            "acc-fr-consumer",
            "--now",
            "2026-11-08T13:00:00Z",
        ]);
        assert_eq!(out.status.code(), Some(4));
    }
);

both_stores!(
    a_closing_account_below_the_stripe_minimum_is_waived,
    |app: TestApp| async move {
        october_billed(&app, None).await;
        // Dieter ran one S container for 30 minutes in November: 0.01 EUR/h → 0.01 EUR (with VAT).
        app.import_csv(
            ImportKind::Usage,
            "november.csv",
            "id,app_id,kind,item,quantity,started_at,ended_at\nu-d-nov,app-dieter-blog,container,S,1,2026-11-03T10:00:00Z,2026-11-03T10:30:00Z\n",
        )
        .await
        .unwrap();
        app.cli(&[
            "app",
            "delete",
            "app-dieter-blog",
            "--at",
            "2026-11-06T09:00:00Z",
        ]);
        let out = app.cli(&[
            "account",
            "request-deletion",
            "acc-de-consumer",
            "--now",
            "2026-11-06T10:00:00Z",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["status"], "confirmation_sent");
        let final_inv = app.invoice("acc-de-consumer", "2026-11").await;
        assert_eq!(final_inv.amount_due, "0.00", "{final_inv:#?}");
        assert_eq!(final_inv.carried_forward_to.as_deref(), Some("waived"));
        assert_eq!(
            final_inv.carried_forward, final_inv.total,
            "the whole invoice was below €0.50"
        );
        let waived: Vec<(i64, Option<String>)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT amount_minor, CAST(waived_at AS TEXT) FROM balance_transfers WHERE account_id = 'acc-de-consumer'").fetch_all(p).await.unwrap());
        assert_eq!(waived.len(), 1);
        assert!(
            waived[0].0 > 0 && waived[0].0 < 50 && waived[0].1.is_some(),
            "{waived:?}"
        );
        // No charge was attempted for it: only October's.
        let attempts = app.invoice("acc-de-consumer", "2026-11").await.attempts;
        assert!(attempts.is_empty(), "{attempts:?}");
        let kinds: Vec<String> = billrun::store::events::timeline(app.db(), "acc-de-consumer")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind.to_string())
            .collect();
        assert!(kinds.contains(&"invoice.waived".to_string()), "{kinds:?}");
    }
);

both_stores!(
    a_crash_in_the_middle_of_a_deletion_resumes_with_exact_counts,
    |app: TestApp| async move {
        let mut app = app;
        let _smtp = with_smtp(&mut app);
        october_billed(&app, None).await;
        for a in ["app-bob-api", "app-bob-worker"] {
            app.cli(&["app", "delete", a, "--at", "2026-11-10T10:00:00Z"]);
        }
        app.cli(&[
            "account",
            "request-deletion",
            "acc-fr-business",
            "--now",
            "2026-11-10T12:00:00Z",
        ]);
        let token = latest_token(&app, "acc-fr-business").await;
        let out = app.cli(&[
            "account",
            "confirm-deletion",
            "acc-fr-business",
            &token,
            "--now",
            "2026-11-10T13:00:00Z",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let r = deliver(&app, "2026-11-11T08:00:00Z").await;
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let expected = expected_counts(&app, "acc-fr-business").await;

        // One row per batch, and the process aborts after every third committed batch.
        let jobs = app.dir.path().join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        for job in [
            "invoice",
            "collect",
            "suspend",
            "hds",
            "deliver",
            "vat-check",
        ] {
            let file = format!("{job}.toml");
            let repo = crate::common::repo_root().join("jobs");
            std::fs::copy(repo.join(&file), jobs.join(&file)).unwrap();
        }
        let delete_toml =
            include_str!("../../jobs/delete.toml").replace("batch_size = 500", "batch_size = 1");
        std::fs::write(jobs.join("delete.toml"), delete_toml).unwrap();
        let mut crashes = 0;
        loop {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
                .args(["run", "delete", "--now", "2026-11-11T08:30:00Z"])
                .env("BILLRUN_DATABASE_URL", &app.url)
                .env_remove("BILLRUN_JOBS_DIR")
                .env(billrun::jobs::delete::CRASH_AFTER_BATCHES_ENV, "3")
                .current_dir(app.dir.path())
                .output()
                .unwrap();
            if out.status.success() {
                assert!(text(&out).contains("1 deleted"), "{}", text(&out));
                break;
            }
            assert_eq!(out.status.code(), None, "killed by abort: {}", text(&out));
            crashes += 1;
            // What is recorded so far never exceeds what there was.
            for (cat, (n, _)) in recorded_counts(&app, "acc-fr-business").await {
                assert!(n <= expected[cat.as_str()], "{cat}: {n}");
            }
            assert!(crashes < 50, "no progress");
        }
        assert!(crashes >= 3, "the crash hit several times: {crashes}");
        let recorded = recorded_counts(&app, "acc-fr-business").await;
        for (cat, n) in &expected {
            if *cat != "personal_data" {
                assert_eq!(recorded[*cat], (*n, true), "{cat}");
            }
        }
        assert!(recorded["personal_data"].1);
        assert_eq!(
            account_status(&app, "acc-fr-business").await,
            AccountStatus::Deleted
        );
        assert_eq!(
            billrun::with_db!(app.db(), p => sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM outbox WHERE kind = 'account_deleted'").fetch_one(p).await.unwrap()).0,
            1,
            "one farewell email"
        );
    }
);

both_stores!(
    the_stripe_customer_is_deleted_through_the_api_and_a_failure_resumes,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        let _smtp = with_smtp(&mut app);
        october_billed(&app, None).await;
        app.cli(&[
            "app",
            "delete",
            "app-alice-web",
            "--at",
            "2026-11-05T09:00:00Z",
        ]);
        // In-process (the CLI would not know the fake Stripe): request, confirm.
        let r = billrun::closing::request(
            &app.env,
            "acc-fr-consumer",
            crate::common::t("2026-11-05T10:00:00Z"),
        )
        .await
        .unwrap();
        assert!(matches!(
            r.outcome,
            billrun::closing::RequestOutcome::ConfirmationSent { .. }
        ));
        let token = latest_token(&app, "acc-fr-consumer").await;
        billrun::closing::confirm(
            &app.env,
            "acc-fr-consumer",
            &token,
            crate::common::t("2026-11-05T11:00:00Z"),
        )
        .await
        .unwrap();

        // Stripe keeps answering 500 (every try of the run): the deletion stops before the
        // payment method, reported.
        fake.fail_next(app.env.jobs.collect.settings.transient_tries as usize, 500);
        let r = app.run(JobName::Delete, "2026-11-06T08:30:00Z").await;
        assert_eq!(r.failures.len(), 1, "{r:#?}");
        assert!(
            r.failures[0].error.contains("Stripe customer"),
            "{:?}",
            r.failures
        );
        assert_eq!(
            account_status(&app, "acc-fr-consumer").await,
            AccountStatus::Deleting
        );
        assert!(fake.deleted_customers().is_empty());
        let recorded = recorded_counts(&app, "acc-fr-consumer").await;
        assert_eq!(recorded.get("deployments"), Some(&(2, true)));
        assert!(!recorded.contains_key("payment_methods"));

        // Stripe is back, the emails are sent: the next run resumes and finishes.
        let r = deliver(&app, "2026-11-07T08:00:00Z").await;
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let r = app.run(JobName::Delete, "2026-11-07T08:30:00Z").await;
        assert_eq!(r.counts.get(&Count::Deleted), Some(&1), "{r:#?}");
        assert!(r.deletions[0].resumed);
        assert_eq!(
            fake.deleted_customers(),
            vec!["cus_acc-fr-consumer".to_string()]
        );
        let recorded = recorded_counts(&app, "acc-fr-consumer").await;
        assert_eq!(recorded["stripe_customer"], (1, true));
        assert_eq!(recorded["payment_methods"], (1, true));
        assert_eq!(recorded["deployments"], (2, true), "not counted twice");
    }
);

both_stores!(
    the_final_invoice_and_its_receipt_reach_the_owner_before_the_address_is_stripped_cgi_289,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = with_smtp(&mut app);
        october_billed(&app, None).await;
        let r = deliver(&app, "2026-11-01T08:00:00Z").await;
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let october_messages = smtp.messages().len();

        // Bob deletes his apps and asks: November so far is billed and paid at once, and the
        // token is queued; he confirms (the test reads the token from the outbox) before the
        // deliver job has run again.
        for a in ["app-bob-api", "app-bob-worker"] {
            let out = app.cli(&["app", "delete", a, "--at", "2026-11-05T09:00:00Z"]);
            assert!(out.status.success(), "{}", text(&out));
        }
        let out = app.cli(&[
            "account",
            "request-deletion",
            "acc-fr-business",
            "--now",
            "2026-11-05T10:00:00Z",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let final_invoice = app.invoice("acc-fr-business", "2026-11").await;
        assert_eq!(final_invoice.status, "paid");
        let final_number = final_invoice.number.clone().unwrap();
        let token = latest_token(&app, "acc-fr-business").await;
        let out = app.cli(&[
            "account",
            "confirm-deletion",
            "acc-fr-business",
            &token,
            "--now",
            "2026-11-05T11:00:00Z",
        ]);
        assert!(out.status.success(), "{}", text(&out));

        // The delete job removes what it can, and waits with the address intact.
        let r = app.run(JobName::Delete, "2026-11-05T11:01:00Z").await;
        assert_eq!(r.counts.get(&Count::WaitingForEmails), Some(&1), "{r:#?}");
        assert_eq!(r.counts.get(&Count::Deleted), None, "{r:#?}");
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let d = &r.deletions[0];
        assert_eq!(d.outcome, DeletionOutcome::WaitingForEmails);
        let mut waiting: Vec<(&str, &str, i64)> = d
            .waiting_for_emails
            .iter()
            .map(|e| (e.kind.as_str(), e.status.as_str(), e.count))
            .collect();
        waiting.sort();
        assert_eq!(
            waiting,
            vec![
                ("account_deletion_confirmation", "pending", 1),
                ("invoice_issued", "pending", 1),
                ("payment_succeeded", "pending", 1),
            ]
        );
        assert!(d.line().contains("waiting for emails"), "{}", d.line());
        assert_eq!(
            account_status(&app, "acc-fr-business").await,
            AccountStatus::Deleting
        );
        let acc = billrun::store::accounts::get_account(app.db(), "acc-fr-business")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(acc.email, "bob@example.com", "not stripped yet");
        let recorded = recorded_counts(&app, "acc-fr-business").await;
        assert_eq!(recorded.get("deployments"), Some(&(3, true)));
        assert!(!recorded.contains_key("personal_data"), "{recorded:?}");
        let emails = emails_of(&app, "acc-fr-business").await;
        assert!(
            emails
                .iter()
                .all(|(_, status, to)| status != "cancelled" && to == "bob@example.com"),
            "{emails:?}"
        );
        // Running again before any delivery changes nothing.
        let before = app.dump().await;
        let r = app.run(JobName::Delete, "2026-11-05T11:02:00Z").await;
        assert_eq!(r.counts.get(&Count::WaitingForEmails), Some(&1));
        assert_eq!(app.dump().await, before);

        // The deliver job sends the three; a dunning email queued meanwhile is not waited for.
        let r = deliver(&app, "2026-11-05T11:05:00Z").await;
        assert_eq!(r.counts.get(&Count::Sent), Some(&3), "{r:#?}");
        let mut tx = app.db().begin().await.unwrap();
        billrun::store::outbox::enqueue(
            &mut tx,
            &billrun::store::outbox::NewEmail {
                account_id: "acc-fr-business",
                kind: billrun::core::email::EmailKind::PaymentFailed,
                dedupe_key: "test:late-dunning".into(),
                language: billrun::core::locale::Language::Fr,
                to_address: "bob@example.com",
                invoice_id: None,
                data: serde_json::json!({}),
                at: crate::common::t("2026-11-05T11:06:00Z"),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let r = app.run(JobName::Delete, "2026-11-05T11:10:00Z").await;
        assert_eq!(r.counts.get(&Count::Deleted), Some(&1), "{r:#?}");
        assert!(r.deletions[0].resumed);
        assert!(r.deletions[0].waiting_for_emails.is_empty());
        let acc = billrun::store::accounts::get_account(app.db(), "acc-fr-business")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(acc.email, "");
        let r = deliver(&app, "2026-11-05T11:15:00Z").await;
        assert_eq!(r.counts.get(&Count::Sent), Some(&1), "the farewell: {r:#?}");

        // What the account's outbox says, and what the SMTP server received.
        let emails: Vec<(String, String)> = emails_of(&app, "acc-fr-business")
            .await
            .into_iter()
            .map(|(kind, status, _)| (kind, status))
            .collect();
        let pair = |k: &str, s: &str| (k.to_string(), s.to_string());
        assert_eq!(
            emails,
            vec![
                pair("invoice_issued", "sent"),
                pair("payment_succeeded", "sent"),
                pair("invoice_issued", "sent"),
                pair("payment_succeeded", "sent"),
                pair("account_deletion_confirmation", "sent"),
                pair("payment_failed", "cancelled"),
                pair("account_deleted", "sent"),
            ]
        );
        let messages = smtp.messages();
        let to_bob: Vec<&serde_json::Value> = messages[october_messages..]
            .iter()
            .filter(|m| m["To"].as_str().unwrap().contains("bob@example.com"))
            .collect();
        let subjects: Vec<&str> = to_bob
            .iter()
            .map(|m| m["Subject"].as_str().unwrap())
            .collect();
        assert_eq!(
            subjects.len(),
            4,
            "invoice, receipt, confirmation, farewell: {subjects:?}"
        );
        assert!(
            subjects[0].starts_with(&format!("Votre facture {final_number}")),
            "{subjects:?}"
        );
        assert!(
            subjects[1].contains(&final_number) && subjects[1].starts_with("Paiement reçu"),
            "{subjects:?}"
        );
        assert!(
            subjects[2].starts_with("Confirmez la suppression"),
            "{subjects:?}"
        );
        assert!(subjects[3].contains("a été supprimé"), "{subjects:?}");
        let pdf = to_bob[0]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["content_type"] == "application/pdf")
            .expect("the final invoice's PDF is attached");
        assert!(pdf["filename"].as_str().unwrap().contains(&final_number));
    }
);

both_stores!(
    an_email_that_failed_for_good_no_longer_holds_a_deletion,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = with_smtp(&mut app);
        app.seed_fixtures().await;
        // The receiving server rejects this address for good (550): the email is dead.
        app.import_csv(
            ImportKind::Accounts,
            "a.csv",
            "id,email,name,company,address,country,vat_number,language,created_at,referred_by\nacc-reject,reject-me@example.com,Rex Reject,,\"1 rue C, Nantes\",FR,,fr,2025-01-01T00:00:00Z,\n",
        )
        .await
        .unwrap();
        let out = app.cli(&[
            "account",
            "request-deletion",
            "acc-reject",
            "--now",
            "2026-11-05T10:00:00Z",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let token = latest_token(&app, "acc-reject").await;
        let out = app.cli(&[
            "account",
            "confirm-deletion",
            "acc-reject",
            &token,
            "--now",
            "2026-11-05T11:00:00Z",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let r = app.run(JobName::Delete, "2026-11-05T11:01:00Z").await;
        assert_eq!(r.counts.get(&Count::WaitingForEmails), Some(&1), "{r:#?}");

        let r = deliver(&app, "2026-11-05T11:05:00Z").await;
        assert_eq!(r.counts.get(&Count::Rejected), Some(&1), "{r:#?}");
        assert_eq!(
            emails_of(&app, "acc-reject").await,
            vec![(
                "account_deletion_confirmation".to_string(),
                "failed".to_string(),
                "reject-me@example.com".to_string()
            )]
        );
        let r = app.run(JobName::Delete, "2026-11-05T11:10:00Z").await;
        assert_eq!(r.counts.get(&Count::Deleted), Some(&1), "{r:#?}");
        let acc = billrun::store::accounts::get_account(app.db(), "acc-reject")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(acc.email, "");
        assert!(smtp.messages().is_empty());
    }
);

both_stores!(
    a_dry_run_says_a_deletion_would_wait_for_emails,
    |app: TestApp| async move {
        october_billed(&app, None).await;
        app.cli(&[
            "app",
            "delete",
            "app-alice-web",
            "--at",
            "2026-11-05T09:00:00Z",
        ]);
        app.cli(&[
            "account",
            "request-deletion",
            "acc-fr-consumer",
            "--now",
            "2026-11-05T10:00:00Z",
        ]);
        let token = latest_token(&app, "acc-fr-consumer").await;
        app.cli(&[
            "account",
            "confirm-deletion",
            "acc-fr-consumer",
            &token,
            "--now",
            "2026-11-05T11:00:00Z",
        ]);
        let mut dry = crate::common::opts("2026-11-05T11:01:00Z");
        dry.dry_run = true;
        let before = app.dump().await;
        let plan = app.run_with(JobName::Delete, dry).await.unwrap();
        assert_eq!(app.dump().await, before);
        assert_eq!(
            plan.counts.get(&Count::WouldWaitForEmails),
            Some(&1),
            "{plan:#?}"
        );
        assert_eq!(plan.counts.get(&Count::WouldDelete), None);
        // October's invoice and receipt were never delivered, nor the confirmation.
        let mut kinds: Vec<&str> = plan.deletions[0]
            .waiting_for_emails
            .iter()
            .map(|e| e.kind.as_str())
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "account_deletion_confirmation",
                "invoice_issued",
                "payment_succeeded"
            ]
        );
    }
);

#[test]
fn the_demo_sends_every_email_of_the_closing_account_and_cancels_none() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
        .args(["demo", "--seed", "7"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}: {out}"))
            .to_string()
    };
    // The owner gets the final invoice, its receipt and the confirmation before confirming,
    // and the farewell after the deletion: each one sent, none cancelled.
    for kind in [
        "invoice_issued",
        "payment_succeeded",
        "account_deletion_confirmation",
        "account_deleted",
    ] {
        let l = line(&format!("to the owner: {kind} "));
        assert!(l.ends_with("(sent)"), "{l}");
    }
    assert!(line("asked for its deletion").contains(" paid)"), "{out}");
    assert!(line("the owner confirmed with the emailed token").contains("deletion queued"));
    assert!(
        line("delete [simulated gateway]").contains("1 deleted"),
        "{out}"
    );
    // Every email the demo queued was sent (written as an .eml file): nothing cancelled, none
    // left pending.
    let outbox = line("outbox: ");
    let sent: usize = outbox
        .strip_prefix("outbox: ")
        .and_then(|r| r.strip_suffix(" sent"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("only sent emails: {outbox}"));
    let emls = std::fs::read_dir(dir.path().join("demo-out/emails"))
        .unwrap()
        .count();
    assert_eq!(emls, sent);
}
