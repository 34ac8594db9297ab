//! The account lifecycle, as stories with the clock moving, on both stores.

use crate::common::TestApp;
use billrun::core::lifecycle::AccountStatus;
use billrun::jobs::collect::CollectionOutcome;
use billrun::jobs::{Count, JobName};

/// Clara (acc-de-business, 7.20 due) pays with a card that keeps declining.
async fn failing_clara(app: &TestApp) {
    app.seed_fixtures().await;
    for acc in [
        "acc-fr-consumer",
        "acc-fr-business",
        "acc-de-consumer",
        "acc-fi-consumer",
        "acc-us-business",
    ] {
        app.set_pm(acc, "card", "pm_card_visa", "2026-10-01T00:00:00Z")
            .await;
    }
    app.set_pm(
        "acc-de-business",
        "card",
        "pm_card_visa_chargeDeclinedInsufficientFunds",
        "2026-10-01T00:00:00Z",
    )
    .await;
    app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
    // Attempts on days 0, 3, 8 and 15; before the last one fails, nobody is suspended.
    for day in ["2026-11-01", "2026-11-04", "2026-11-09", "2026-11-16"] {
        let early = app.run(JobName::Suspend, &format!("{day}T06:30:00Z")).await;
        assert!(early.lifecycle.is_empty(), "{day}: {:#?}", early.lifecycle);
        let r = app.run(JobName::Collect, &format!("{day}T07:00:00Z")).await;
        assert!(
            r.collections.iter().any(
                |c| c.account_id == "acc-de-business" && c.outcome == CollectionOutcome::Failed
            ),
            "{day}: {:#?}",
            r.collections
        );
    }
}

async fn status(app: &TestApp, account: &str) -> (AccountStatus, Vec<String>) {
    let acc = billrun::store::accounts::get_account(app.db(), account)
        .await
        .unwrap()
        .unwrap();
    let apps: Vec<(String,)> = billrun::with_db!(app.db(), p => sqlx::query_as("SELECT status FROM apps WHERE account_id = $1 ORDER BY id").bind(account).fetch_all(p).await.unwrap());
    (acc.status, apps.into_iter().map(|a| a.0).collect())
}

both_stores!(
    suspended_after_the_last_retry_then_reactivated_by_paying,
    |app: TestApp| async move {
        failing_clara(&app).await;
        let inv = app.invoice("acc-de-business", "2026-10").await;
        assert_eq!(inv.attempts.len(), 4, "4 attempts in all");
        // The last retry failed on the due date (16 November): not suspended on it, since the
        // invoice says payment is due until then (core::terms)...
        let on_due_date = app.run(JobName::Suspend, "2026-11-16T08:00:00Z").await;
        assert!(
            on_due_date.lifecycle.is_empty(),
            "{:#?}",
            on_due_date.lifecycle
        );
        assert_eq!(
            status(&app, "acc-de-business").await.0,
            AccountStatus::Active
        );
        // ...but from the day after.
        let r = app.run(JobName::Suspend, "2026-11-17T08:00:00Z").await;
        assert_eq!(r.counts.get(&Count::Suspended), Some(&1));
        assert_eq!(
            status(&app, "acc-de-business").await,
            (AccountStatus::Suspended, vec!["stopped".to_string()])
        );
        let platform: Vec<(String, String)> = billrun::with_db!(app.db(), p => sqlx::query_as("SELECT app_id, kind FROM platform_events ORDER BY id").fetch_all(p).await.unwrap());
        assert_eq!(
            platform,
            vec![("app-clara-shop".to_string(), "app.stop".to_string())]
        );
        assert!(
            app.outbox()
                .await
                .iter()
                .any(|o| o.0 == "acc-de-business" && o.1 == "account_suspended")
        );
        // Running again changes nothing.
        let before = app.dump().await;
        let again = app.run(JobName::Suspend, "2026-11-17T09:00:00Z").await;
        assert!(again.lifecycle.is_empty());
        assert_eq!(app.dump().await, before);

        // Day 20: a new card; collect charges it at once; the next suspend run reactivates.
        app.set_pm(
            "acc-de-business",
            "card",
            "pm_card_visa",
            "2026-11-21T09:00:00Z",
        )
        .await;
        let paid = app.run(JobName::Collect, "2026-11-21T09:05:00Z").await;
        assert!(paid.collections.iter().any(
            |c| c.account_id == "acc-de-business" && c.outcome == CollectionOutcome::Succeeded
        ));
        let r = app.run(JobName::Suspend, "2026-11-21T10:00:00Z").await;
        assert_eq!(r.counts.get(&Count::Reactivated), Some(&1));
        assert_eq!(
            status(&app, "acc-de-business").await,
            (AccountStatus::Active, vec!["running".to_string()])
        );
        let kinds: Vec<String> = billrun::store::events::timeline(app.db(), "acc-de-business")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind.to_string())
            .collect();
        assert!(
            kinds.contains(&"account.suspended".to_string())
                && kinds.last() == Some(&"account.reactivated".to_string()),
            "{kinds:?}"
        );
    }
);

both_stores!(
    still_owing_warned_then_queued_for_deletion,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = crate::common::smtp::SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        failing_clara(&app).await;
        app.run(JobName::Suspend, "2026-11-17T08:00:00Z").await;
        // 30 days of grace; the final warning 7 days before.
        let r = app.run(JobName::Suspend, "2026-12-09T08:00:00Z").await;
        assert!(r.lifecycle.is_empty(), "{:#?}", r.lifecycle);
        let mut dry = crate::common::opts("2026-12-10T08:00:00Z");
        dry.dry_run = true;
        let before = app.dump().await;
        let plan = app.run_with(JobName::Suspend, dry).await.unwrap();
        assert_eq!(plan.counts.get(&Count::WouldWarn), Some(&1));
        assert_eq!(app.dump().await, before, "a dry-run changes nothing");
        let r = app.run(JobName::Suspend, "2026-12-10T08:00:00Z").await;
        assert_eq!(r.counts.get(&Count::Warned), Some(&1));
        assert!(
            app.outbox()
                .await
                .iter()
                .any(|o| o.0 == "acc-de-business" && o.1 == "data_deletion_warning")
        );
        assert!(
            app.run(JobName::Suspend, "2026-12-16T08:00:00Z")
                .await
                .lifecycle
                .is_empty()
        );
        let r = app.run(JobName::Suspend, "2026-12-17T08:00:00Z").await;
        assert_eq!(r.counts.get(&Count::QueuedForDeletion), Some(&1));
        let queued: Vec<(String, String)> = billrun::with_db!(app.db(), p => sqlx::query_as("SELECT account_id, reason FROM deletion_queue").fetch_all(p).await.unwrap());
        assert_eq!(
            queued,
            vec![("acc-de-business".to_string(), "non_payment".to_string())]
        );
        assert!(
            app.run(JobName::Suspend, "2026-12-18T08:00:00Z")
                .await
                .lifecycle
                .is_empty()
        );

        // The delete job removes Clara's data; her invoices stay, stripped of her profile. It
        // strips her address only once her invoice email is sent (the deliver job).
        app.seed_platform_fixtures().await;
        let invoices_before = app.count("invoices").await;
        let r = app.run(JobName::Delete, "2026-12-18T08:30:00Z").await;
        assert_eq!(r.counts.get(&Count::WaitingForEmails), Some(&1), "{r:#?}");
        app.run(JobName::Deliver, "2026-12-18T08:35:00Z").await;
        let r = app.run(JobName::Delete, "2026-12-18T08:40:00Z").await;
        assert_eq!(r.counts.get(&Count::Deleted), Some(&1), "{r:#?}");
        let d = &r.deletions[0];
        assert_eq!(
            (d.account_id.as_str(), d.reason.as_str()),
            ("acc-de-business", "non_payment")
        );
        let count = |c: billrun::core::deletion::Category| {
            d.categories.iter().find(|x| x.category == c).unwrap().count
        };
        use billrun::core::deletion::Category;
        assert_eq!(count(Category::Deployments), 1);
        assert_eq!(count(Category::Aliases), 1);
        assert_eq!(count(Category::Domains), 1);
        assert_eq!(count(Category::Certificates), 1);
        assert_eq!(count(Category::Apps), 1);
        assert_eq!(count(Category::StripeCustomer), 1);
        assert_eq!(count(Category::PaymentMethods), 1);
        assert_eq!(
            status(&app, "acc-de-business").await,
            (AccountStatus::Deleted, vec!["deleted".to_string()])
        );
        let platform: Vec<(String, String)> = billrun::with_db!(app.db(), p => sqlx::query_as("SELECT app_id, kind FROM platform_events ORDER BY id DESC LIMIT 1").fetch_all(p).await.unwrap());
        assert_eq!(
            platform,
            vec![("app-clara-shop".to_string(), "app.delete".to_string())]
        );
        assert_eq!(app.count("invoices").await, invoices_before);
        let kept = app.invoice("acc-de-business", "2026-10").await;
        assert_eq!(kept.status, "unpaid", "still owed, and kept");
        assert_eq!(kept.buyer.company.as_deref(), Some("Schmidt GmbH"));
        let acc = billrun::store::accounts::get_account(app.db(), "acc-de-business")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(acc.email, "");
        let farewell: (String,) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT data FROM outbox WHERE account_id = 'acc-de-business' AND kind = 'account_deleted'").fetch_one(p).await.unwrap());
        assert!(farewell.0.contains("non_payment"), "{}", farewell.0);
        // Emails not sent yet to the deleted account are cancelled.
        let pending: Vec<(String,)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT kind FROM outbox WHERE account_id = 'acc-de-business' AND status = 'pending'").fetch_all(p).await.unwrap());
        assert_eq!(pending, vec![("account_deleted".to_string(),)]);
        // The next month's invoice job leaves the deleted account alone.
        let r = app.run(JobName::Invoice, "2027-01-01T06:00:00Z").await;
        assert!(r.invoices.iter().all(|i| i.account_id != "acc-de-business"));
    }
);

both_stores!(
    hds_contact_reviewed_thirteen_months_ago_gets_monthly_reminders,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let out = app.cli(&[
            "account",
            "hds-contact",
            "set",
            "acc-fr-business",
            "--name",
            "Dr Anne Petit",
            "--email",
            "anne.petit@example.com",
            "--phone",
            "+33 1 23 45 67 89",
            "--at",
            "2025-10-01T00:00:00Z",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bad = app.cli(&["account", "hds-review", "acc-fr-consumer"]);
        assert_eq!(bad.status.code(), Some(2), "no contact to review");

        // Reviewed 13 months before 2026-11-01: one reminder…
        let r = app.run(JobName::Hds, "2026-11-01T09:00:00Z").await;
        assert_eq!(r.counts.get(&Count::Reminded), Some(&1));
        let reminders = || async {
            app.outbox()
                .await
                .into_iter()
                .filter(|o| o.1 == "hds_review_reminder")
                .count()
        };
        assert_eq!(reminders().await, 1);
        // …none the next day…
        let r = app.run(JobName::Hds, "2026-11-02T09:00:00Z").await;
        assert!(r.hds.is_empty());
        assert_eq!(reminders().await, 1);
        // …another 30 days later (and a dry-run before it changes nothing).
        let mut dry = crate::common::opts("2026-12-01T09:00:00Z");
        dry.dry_run = true;
        let before = app.dump().await;
        assert_eq!(
            app.run_with(JobName::Hds, dry)
                .await
                .unwrap()
                .counts
                .get(&Count::WouldRemind),
            Some(&1)
        );
        assert_eq!(app.dump().await, before);
        let r = app.run(JobName::Hds, "2026-12-01T09:00:00Z").await;
        assert_eq!(r.counts.get(&Count::Reminded), Some(&1));
        assert_eq!(reminders().await, 2);
        // Reviewed: no more reminders for a year.
        let out = app.cli(&[
            "account",
            "hds-review",
            "acc-fr-business",
            "--at",
            "2026-12-02T10:00:00Z",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            app.run(JobName::Hds, "2027-01-05T09:00:00Z")
                .await
                .hds
                .is_empty()
        );
        assert_eq!(
            app.run(JobName::Hds, "2027-12-02T10:00:00Z")
                .await
                .counts
                .get(&Count::Reminded),
            Some(&1)
        );
    }
);

both_stores!(
    cgi_272_a_full_credit_note_voids_the_unpaid_invoice_and_lifts_the_suspension_it_caused,
    |app: TestApp| async move {
        failing_clara(&app).await;
        let r = app.run(JobName::Suspend, "2026-11-17T08:00:00Z").await;
        assert_eq!(r.counts.get(&Count::Suspended), Some(&1));
        let number = app
            .invoice("acc-de-business", "2026-10")
            .await
            .number
            .unwrap();
        // The whole invoice credited (issue 22): nothing is owed; void.
        let cn = billrun::credit_notes::issue(
            &app.env,
            &billrun::credit_notes::Request {
                invoice: number,
                reason: "Billing error".into(),
                what: billrun::core::credit_note::CreditRequest::Full,
                method: billrun::core::credit_note::RefundMethod::Auto,
                now: crate::common::t("2026-11-18T09:00:00Z"),
                dry_run: false,
            },
        )
        .await
        .unwrap();
        assert_eq!(cn.refund.reduce_due, cn.total);
        let inv = app.invoice("acc-de-business", "2026-10").await;
        assert_eq!(
            (inv.status.as_str(), inv.amount_due.as_str()),
            ("void", "0.00")
        );
        // No further attempt on it; the next suspend run lifts the suspension it alone caused.
        let c = app.run(JobName::Collect, "2026-11-18T10:00:00Z").await;
        assert!(
            c.collections
                .iter()
                .all(|i| i.account_id != "acc-de-business"),
            "{:#?}",
            c.collections
        );
        let r = app.run(JobName::Suspend, "2026-11-18T11:00:00Z").await;
        assert_eq!(
            r.counts.get(&Count::Reactivated),
            Some(&1),
            "{:#?}",
            r.lifecycle
        );
        assert_eq!(
            status(&app, "acc-de-business").await,
            (AccountStatus::Active, vec!["running".to_string()])
        );
    }
);

both_stores!(
    a_timeline_kind_billrun_never_wrote_is_an_error_naming_the_event,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        let (id, account): (i64, String) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT id, account_id FROM account_events ORDER BY id DESC LIMIT 1").fetch_one(p).await.unwrap());
        let before = billrun::store::events::timeline(app.db(), &account)
            .await
            .unwrap();
        assert!(
            before
                .iter()
                .any(|e| e.id == id && e.kind.as_str() == "invoice.issued")
        );
        billrun::with_db!(app.db(), p => sqlx::query(
            "UPDATE account_events SET kind = 'invoice.lost' WHERE id = (SELECT MAX(id) FROM account_events)")
            .execute(p).await.unwrap().rows_affected());
        let err = billrun::store::events::timeline(app.db(), &account)
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "account event {id} (account {account}): unknown timeline event kind `invoice.lost` in store"
            )
        );
    }
);
