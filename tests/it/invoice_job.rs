//! The monthly invoice job, on both stores.

use crate::common::{TestApp, opts};
use billrun::import::ImportKind;
use billrun::jobs::{Count, JobName};
use billrun::store::invoices::{self, ListFilter};
use billrun::views::InvoiceView;

const OCT_RUN: &str = "2026-11-01T06:00:00Z";

async fn invoices_of(app: &TestApp) -> Vec<InvoiceView> {
    let rows = invoices::list(app.db(), &ListFilter::default())
        .await
        .unwrap();
    let mut out = Vec::new();
    for r in rows {
        let lines = invoices::lines(app.db(), r.id).await.unwrap();
        out.push(InvoiceView::of(
            &billrun::store::invoice_document::from_row(&r, &lines),
        ));
    }
    out
}

fn by_account<'a>(v: &'a [InvoiceView], id: &str) -> &'a InvoiceView {
    v.iter()
        .find(|i| i.account_id == id)
        .unwrap_or_else(|| panic!("no invoice for {id}"))
}

/// (subtotal, tax case, rate, tax, total) per account, computed by hand in the fixtures.
const EXPECTED: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    (
        "acc-de-business",
        "2026-000001",
        "7.20",
        "reverse_charge",
        "0",
        "0.00",
        "7.20",
    ),
    (
        "acc-de-consumer",
        "2026-000002",
        "0.72",
        "eu_consumer",
        "19",
        "0.14",
        "0.86",
    ),
    (
        "acc-fi-consumer",
        "2026-000003",
        "4.80",
        "eu_consumer",
        "25.5",
        "1.22",
        "6.02",
    ),
    (
        "acc-fr-business",
        "2026-000004",
        "29.71",
        "domestic",
        "20",
        "5.94",
        "35.65",
    ),
    (
        "acc-fr-consumer",
        "2026-000005",
        "2.41",
        "domestic",
        "20",
        "0.48",
        "2.89",
    ),
    (
        "acc-us-business",
        "2026-000006",
        "3.84",
        "out_of_scope",
        "0",
        "0.00",
        "3.84",
    ),
];

both_stores!(bills_a_month_at_a_given_now, |app: TestApp| async move {
    app.seed_fixtures().await;
    let report = app.run(JobName::Invoice, OCT_RUN).await;
    assert_eq!(report.period.as_deref(), Some("2026-10"));
    assert_eq!(report.counts.get(&Count::Invoiced), Some(&6));
    assert_eq!(
        report.counts.get(&Count::NothingToBill),
        Some(&1),
        "acc-idle has no usage"
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    let all = invoices_of(&app).await;
    assert_eq!(all.len(), 6);
    for (acc, number, subtotal, case, rate, tax, total) in EXPECTED {
        let i = by_account(&all, acc);
        assert_eq!(
            (
                i.number.as_deref().unwrap(),
                i.subtotal.as_str(),
                i.tax_case.as_str(),
                i.tax_rate.as_str(),
                i.tax.as_str(),
                i.total.as_str()
            ),
            (*number, *subtotal, *case, *rate, *tax, *total),
            "{acc}"
        );
        assert_eq!(i.status, "open");
        assert_eq!(i.amount_due, i.total);
        assert_eq!(
            i.due_at.to_string(),
            "2026-11-16",
            "due 15 days after issue (jobs/invoice.toml)"
        );
        // Every invoice reconciles: lines sum to the subtotal.
        let lines: i64 = i
            .lines
            .iter()
            .map(|l| billrun::core::money::parse_major(&l.amount).unwrap())
            .sum();
        assert_eq!(
            lines,
            billrun::core::money::parse_major(&i.subtotal).unwrap(),
            "{acc}"
        );
    }

    // Mid-month starts and stops, month-boundary splits, caps, one line per app × kind × item.
    let bob = by_account(&all, "acc-fr-business");
    let amounts: Vec<(&str, &str, &str)> = bob
        .lines
        .iter()
        .map(|l| {
            (
                l.item.as_str(),
                l.quantity_hours.as_str(),
                l.amount.as_str(),
            )
        })
        .collect();
    assert_eq!(
        amounts,
        vec![
            ("M", "1488.00", "28.80"),
            ("postgresql-starter-512", "30.00", "0.75"),
            ("L", "4.00", "0.16")
        ],
        "M capped at 14.40 × 2; the addon split at 1 October; L running to the month's end"
    );
    assert!(
        bob.lines[0].description.contains("plafond mensuel"),
        "{}",
        bob.lines[0].description
    );
    let alice = by_account(&all, "acc-fr-consumer");
    assert_eq!(alice.lines.len(), 1, "three S runs make one line");
    assert_eq!(alice.lines[0].quantity_hours, "240.50");
    assert_eq!(
        alice.lines[0].amount, "2.41",
        "240.5 h × 0.01 = 2.405, rounded once, half away from zero"
    );
    assert_eq!(
        alice.lines[0].description,
        "alice-web — conteneur S (2026-10-10 → 2026-10-26)"
    );
    assert!(
        by_account(&all, "acc-de-business")
            .tax_mention
            .as_deref()
            .unwrap()
            .contains("Autoliquidation")
    );
    assert!(by_account(&all, "acc-us-business").tax_mention.is_some());
    assert!(by_account(&all, "acc-fr-consumer").tax_mention.is_none());

    // The same JSON on both stores: one snapshot for both.
    let mut shown = all.clone();
    for i in &mut shown {
        i.id = None;
    }
    insta::assert_json_snapshot!("october_invoices", shown);

    // A timeline event per invoice.
    assert_eq!(app.count("account_events").await, 6);
});

both_stores!(a_second_run_changes_nothing, |app: TestApp| async move {
    app.seed_fixtures().await;
    app.run(JobName::Invoice, OCT_RUN).await;
    let before = app.dump().await;
    let again = app.run(JobName::Invoice, "2026-11-02T06:00:00Z").await;
    assert_eq!(again.counts.get(&Count::AlreadyInvoiced), Some(&6));
    assert_eq!(again.counts.get(&Count::Invoiced), None);
    assert!(
        again.summary().contains("6 already invoiced"),
        "{}",
        again.summary()
    );
    assert_eq!(app.dump().await, before);
});

/// A November draft for `account` (one line of 10.00 €), for the store-level group tests.
async fn november_draft(app: &TestApp, account: &str) -> invoices::NewInvoice {
    use billrun::core::invoice::{Line, totals};
    use billrun::core::period::Period;
    use billrun::core::pricing::UsageKind;
    let a = billrun::store::accounts::get_account(app.db(), account)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no account {account}"))
        .to_account();
    let period: Period = "2026-11".parse().unwrap();
    let vat = billrun::core::vat::treatment(&a.country, a.vat_number.as_deref(), period.last_day())
        .unwrap();
    let issued_at: chrono::DateTime<chrono::Utc> = "2026-12-01T06:00:00Z".parse().unwrap();
    invoices::NewInvoice {
        account: a,
        period,
        period_start: period.start(),
        period_end: period.end(),
        lines: vec![Line {
            description: "api — container M".into(),
            app_id: None,
            kind: UsageKind::Container,
            item: "M".into(),
            quantity_hours: rust_decimal::Decimal::from(100),
            unit_price: rust_decimal::Decimal::new(1, 1),
            amount: billrun::core::money::Money::eur(1000),
        }],
        discounts: vec![],
        brought_forward: vec![],
        totals: totals([1000], 0, vat).unwrap(),
        issued_at,
        due_at: issued_at.date_naive() + chrono::Duration::days(30),
        vies_consultation: None,
        payment_means: billrun::core::einvoice::PaymentMeans::NotDefined,
        sepa_mandate: None,
    }
}

/// Finalizes `draft` as a group of one and commits: its number.
async fn finalize_alone(app: &TestApp, draft: &invoices::NewInvoice) -> String {
    let mut tx = app.db().begin().await.unwrap();
    let done = invoices::finalize_group(&mut tx, std::slice::from_ref(draft))
        .await
        .unwrap()
        .expect("a group of one new invoice goes through");
    tx.commit().await.unwrap();
    done[0].1.clone()
}

both_stores!(
    a_group_with_an_account_already_invoiced_is_refused_whole,
    |app: TestApp| async move {
        // The group write's own contract: a group naming an account already invoiced for the
        // period is refused (`None`, not an error: the job then goes one by one), and its
        // rollback gives every number back.
        app.seed_fixtures().await;
        app.run(JobName::Invoice, OCT_RUN).await; // 2026-000001 … 2026-000006
        let fr = november_draft(&app, "acc-fr-business").await;
        let de = november_draft(&app, "acc-de-business").await;
        assert_eq!(finalize_alone(&app, &fr).await, "2026-000007");

        let mut tx = app.db().begin().await.unwrap();
        let refused = invoices::finalize_group(&mut tx, &[de.clone(), fr.clone()])
            .await
            .expect("a taken (account, period) is a refusal, not an error");
        assert!(refused.is_none());
        tx.rollback().await.unwrap();

        assert_eq!(
            finalize_alone(&app, &de).await,
            "2026-000008",
            "the refused group's numbers came back"
        );
        let rows = invoices::list(app.db(), &ListFilter::default())
            .await
            .unwrap();
        let november: Vec<(&str, &str)> = rows
            .iter()
            .filter(|r| r.period.to_string() == "2026-11")
            .map(|r| (r.account_id.as_str(), r.number.as_str()))
            .collect();
        assert_eq!(november.len(), 2, "{november:?}");
        assert!(november.contains(&("acc-fr-business", "2026-000007")));
        assert!(november.contains(&("acc-de-business", "2026-000008")));
    }
);

both_stores!(
    emails_queued_together_never_share_a_key,
    |app: TestApp| async move {
        // `OnConflict::Fail` is for keys nobody can have queued: one that is already queued
        // fails the statement (the caller's transaction rolls back) rather than being skipped.
        use billrun::store::outbox::{NewEmail, OnConflict, enqueue, enqueue_many};
        app.seed_fixtures().await;
        let at: chrono::DateTime<chrono::Utc> = "2026-12-01T06:00:00Z".parse().unwrap();
        let email = |key: &str| NewEmail {
            account_id: "acc-fr-business",
            kind: billrun::core::email::EmailKind::InvoiceIssued,
            dedupe_key: key.to_string(),
            language: billrun::core::locale::Language::Fr,
            to_address: "billing@example.fr",
            invoice_id: None,
            data: serde_json::json!({}),
            at,
        };
        let mut tx = app.db().begin().await.unwrap();
        let queued = enqueue_many(&mut tx, &[email("k:1"), email("k:2")], OnConflict::Fail)
            .await
            .unwrap();
        assert_eq!(queued, 2);
        tx.commit().await.unwrap();
        let mut tx = app.db().begin().await.unwrap();
        let err = enqueue_many(&mut tx, &[email("k:3"), email("k:2")], OnConflict::Fail)
            .await
            .expect_err("a key already queued");
        assert!(format!("{err:#}").contains("dedupe_key"), "{err:#}");
        tx.rollback().await.unwrap();
        assert_eq!(app.count("outbox").await, 2);

        // `OnConflict::Skip` queues what is new and counts it; an email already queued is
        // never queued twice, and a single `enqueue` says whether it queued.
        let mut tx = app.db().begin().await.unwrap();
        let queued = enqueue_many(
            &mut tx,
            &[email("k:3"), email("k:2"), email("k:3")],
            OnConflict::Skip,
        )
        .await
        .unwrap();
        assert_eq!(queued, 1);
        assert!(!enqueue(&mut tx, &email("k:1")).await.unwrap());
        assert!(enqueue(&mut tx, &email("k:4")).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(app.count("outbox").await, 4);
    }
);

both_stores!(
    usage_comes_by_account_then_record_id,
    |app: TestApp| async move {
        // The databases return a page's usage app by app, each app's records by start time;
        // the job gets them by account then record id whatever the store (sorted in
        // `usage_in_range`): here a record whose id sorts first starts last.
        use billrun::core::period::Period;
        use billrun::core::pricing::BillingWindow;
        app.seed_fixtures().await;
        app.import_csv(
            ImportKind::Usage,
            "late_ids.csv",
            "id,app_id,kind,item,quantity,started_at,ended_at
u-0-late,app-alice-web,container,S,1,2026-10-28T00:00:00Z,2026-10-28T01:00:00Z
u-z-early,app-alice-web,container,S,1,2026-10-02T00:00:00Z,2026-10-02T01:00:00Z
",
        )
        .await
        .unwrap();
        let window = BillingWindow::month("2026-10".parse::<Period>().unwrap());
        let rows = billrun::store::accounts::usage_in_range(app.db(), "a", "z", &window)
            .await
            .unwrap();
        let keys: Vec<(&str, &str)> = rows
            .iter()
            .map(|(account, u)| (account.as_str(), u.id.as_str()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let alice: Vec<&str> = keys
            .iter()
            .filter(|(a, _)| *a == "acc-fr-consumer")
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(alice, ["u-0-late", "u-a1", "u-a2", "u-a3", "u-z-early"]);
    }
);

both_stores!(
    a_dry_run_writes_nothing_and_shows_the_real_run,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let before = app.dump().await;
        let mut o = opts(OCT_RUN);
        o.dry_run = true;
        let dry = app.run_with(JobName::Invoice, o).await.unwrap();
        assert_eq!(
            app.dump().await,
            before,
            "a dry-run writes no row and takes no number"
        );
        insta::assert_json_snapshot!(
            "invoice_dry_run_plan",
            serde_json::json!({
                "job": dry.job, "dry_run": dry.dry_run, "period": dry.period, "counts": dry.counts,
                "invoices": dry.invoices.iter().map(InvoiceView::of).map(|i| serde_json::json!({
                    "number": i.number, "account_id": i.account_id, "subtotal": i.subtotal, "tax": i.tax, "total": i.total,
                })).collect::<Vec<_>>(),
            })
        );
        assert!(dry.dry_run);
        assert_eq!(dry.counts.get(&Count::WouldInvoice), Some(&6));
        let real = app.run(JobName::Invoice, OCT_RUN).await;
        let strip = |v: &[billrun::core::document::Invoice]| -> Vec<InvoiceView> {
            v.iter()
                .map(InvoiceView::of)
                .map(|mut i| {
                    i.id = None;
                    i.number = None;
                    i
                })
                .collect()
        };
        assert_eq!(
            strip(&dry.invoices),
            strip(&real.invoices),
            "the dry-run computes exactly what the real run does"
        );
        // After the real run, the first number is still 000001: the dry-run consumed none.
        assert_eq!(real.invoices[0].number.as_deref(), Some("2026-000001"));
    }
);

both_stores!(
    numbering_is_gapless_yearly_and_in_finalization_order,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, OCT_RUN).await;
        // Bob's M container still runs: he alone is billed in November and December.
        let nov = app.run(JobName::Invoice, "2026-12-01T06:00:00Z").await;
        assert_eq!(
            nov.invoices
                .iter()
                .map(|i| i.number.clone().unwrap())
                .collect::<Vec<_>>(),
            vec!["2026-000007"]
        );
        let dec = app.run(JobName::Invoice, "2027-01-01T06:00:00Z").await;
        assert_eq!(
            dec.invoices
                .iter()
                .map(|i| i.number.clone().unwrap())
                .collect::<Vec<_>>(),
            vec!["2027-000001"]
        );
        let all = invoices::list(app.db(), &ListFilter::default())
            .await
            .unwrap();
        let mut by_id = all.clone();
        by_id.sort_by_key(|r| r.id);
        let numbers: Vec<String> = by_id.iter().map(|r| r.number.clone()).collect();
        let expected: Vec<String> = (1..=7)
            .map(|n| format!("2026-{n:06}"))
            .chain(["2027-000001".to_string()])
            .collect();
        assert_eq!(numbers, expected);
    }
);

both_stores!(
    concurrent_runs_make_each_invoice_once_without_gaps,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let (a, b, c) = tokio::join!(
            app.run_with(JobName::Invoice, opts(OCT_RUN)),
            app.run_with(JobName::Invoice, opts(OCT_RUN)),
            app.run_with(JobName::Invoice, opts(OCT_RUN)),
        );
        let made: u64 = [a, b, c]
            .iter()
            .map(|r| {
                r.as_ref()
                    .unwrap()
                    .counts
                    .get(&Count::Invoiced)
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(made, 6);
        let mut numbers: Vec<String> = invoices::list(app.db(), &ListFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.number)
            .collect();
        numbers.sort();
        assert_eq!(
            numbers,
            (1..=6).map(|n| format!("2026-{n:06}")).collect::<Vec<_>>()
        );
    }
);

both_stores!(only_named_accounts_are_billed, |app: TestApp| async move {
    app.seed_fixtures().await;
    let mut o = opts(OCT_RUN);
    o.accounts = vec!["acc-fi-consumer".into()];
    let r = app.run_with(JobName::Invoice, o).await.unwrap();
    assert_eq!(r.invoices.len(), 1);
    assert_eq!(r.invoices[0].account_id, "acc-fi-consumer");
    let mut o = opts(OCT_RUN);
    o.accounts = vec!["acc-nobody".into()];
    let err = app.run_with(JobName::Invoice, o).await.unwrap_err();
    assert!(
        err.to_string().contains("unknown account `acc-nobody`"),
        "{err}"
    );
});

both_stores!(a_month_not_over_is_refused, |app: TestApp| async move {
    app.seed_fixtures().await;
    let mut o = opts("2026-10-20T00:00:00Z");
    o.period = Some("2026-10".parse().unwrap());
    let err = app.run_with(JobName::Invoice, o).await.unwrap_err();
    assert!(
        err.to_string().contains("period 2026-10 is not over"),
        "{err}"
    );
    assert_eq!(app.count("invoices").await, 0);
});

both_stores!(
    usage_without_price_fails_that_account_only,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        // A price that starts mid-October: usage before it cannot be priced at import…
        app.import_csv(ImportKind::Catalog, "late.csv", "kind,item,hourly_price,monthly_cap,currency,effective_from\ncontainer,XL,0.08,,EUR,2026-10-15\n").await.unwrap();
        let err = app
        .import_csv(ImportKind::Usage, "early.csv", "id,app_id,kind,item,quantity,started_at,ended_at\nu-x,app-gina-idle,container,XL,1,2026-10-10T00:00:00Z,2026-10-20T00:00:00Z\n")
        .await
        .unwrap_err();
        assert!(format!("{err:#}").contains("invalid record"), "{err:#}");
        // …and the rest of the month bills normally.
        let r = app.run(JobName::Invoice, OCT_RUN).await;
        assert_eq!(r.counts.get(&Count::Invoiced), Some(&6));
    }
);

/// Runs one statement in its own transaction; the error text when the store refuses it.
async fn refused(app: &TestApp, sql: &'static str) -> Option<String> {
    let result = match app.db() {
        billrun::store::Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        billrun::store::Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
    };
    result.err().map(|e| e.to_string())
}

both_stores!(
    invoices_are_kept_and_lines_name_real_invoices,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, OCT_RUN).await;
        let before = app.dump().await;
        // An invoice is never deleted nor renumbered, even by hand.
        for sql in [
            "DELETE FROM invoices",
            "DELETE FROM invoices WHERE id = (SELECT MIN(id) FROM invoices)",
            "UPDATE invoices SET id = id + 1000 WHERE id = (SELECT MIN(id) FROM invoices)",
        ] {
            let err = refused(&app, sql).await;
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("invoices are kept")),
                "{sql}: {err:?}"
            );
        }
        // A line must name an invoice that exists, on insert and on update.
        for sql in [
            "INSERT INTO invoice_lines (invoice_id, position, description, app_id, kind, item, quantity_hours, unit_price, amount_minor)
             VALUES (987654, 1, 'orphan', NULL, 'container', 'S', '1', '0.01', 1)",
            "UPDATE invoice_lines SET invoice_id = 987654 WHERE invoice_id = (SELECT MIN(id) FROM invoices) AND position = 1",
        ] {
            let err = refused(&app, sql).await;
            assert!(
                err.as_deref().is_some_and(|e| e.contains("FOREIGN KEY")
                    || e.contains("names an invoice that does not exist")),
                "{sql}: {err:?}"
            );
        }
        // Nothing changed; an ordinary update of an invoice still works.
        assert_eq!(app.dump().await, before);
        assert_eq!(
            refused(&app, "UPDATE invoices SET status = status").await,
            None
        );
    }
);

both_stores!(
    accounts_are_kept_and_what_names_them_names_real_ones,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, OCT_RUN).await;
        let before = app.dump().await;
        // An account is never deleted nor renamed, even by hand (deletion keeps the row).
        for sql in [
            "DELETE FROM accounts",
            "DELETE FROM accounts WHERE id = (SELECT MIN(id) FROM accounts)",
            "UPDATE accounts SET id = id || '-x' WHERE id = (SELECT MIN(id) FROM accounts)",
        ] {
            let err = refused(&app, sql).await;
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("accounts are kept")),
                "{sql}: {err:?}"
            );
        }
        // An invoice, an event or an email must name an account (and an invoice) that
        // exists, on insert and on update.
        let no_account = |e: &str| {
            e.contains("FOREIGN KEY") || e.contains("names an account that does not exist")
        };
        let no_invoice = |e: &str| {
            e.contains("FOREIGN KEY") || e.contains("names an invoice that does not exist")
        };
        for (sql, named) in [
            ("INSERT INTO invoices (number, account_id, period, period_start, period_end, status, currency, language,
                buyer_name, buyer_address, buyer_country, subtotal_minor, discount_minor, tax_case, tax_rate,
                tax_minor, total_minor, amount_due_minor, issued_at, due_at)
              SELECT 'F-X', 'nobody', '2026-10', period_start, period_end, status, currency, language,
                buyer_name, buyer_address, buyer_country, 0, 0, tax_case, tax_rate, 0, 0, 0, issued_at, due_at
              FROM invoices WHERE id = (SELECT MIN(id) FROM invoices)", no_account as fn(&str) -> bool),
            ("UPDATE invoices SET account_id = 'nobody' WHERE id = (SELECT MIN(id) FROM invoices)", no_account),
            ("INSERT INTO account_events (account_id, at, kind, message)
              VALUES ('nobody', '2026-11-01T00:00:00Z', 'test', 'orphan')", no_account),
            ("INSERT INTO account_events (account_id, at, kind, invoice_id, message)
              SELECT account_id, issued_at, 'test', 987654, 'orphan' FROM invoices WHERE id = (SELECT MIN(id) FROM invoices)", no_invoice),
            ("UPDATE account_events SET account_id = 'nobody' WHERE id = (SELECT MIN(id) FROM account_events)", no_account),
            ("UPDATE account_events SET invoice_id = 987654 WHERE id = (SELECT MIN(id) FROM account_events)", no_invoice),
            ("INSERT INTO outbox (account_id, kind, dedupe_key, language, to_address, data, created_at)
              VALUES ('nobody', 'test', 'orphan', 'fr', 'x@example.org', '{}', '2026-11-01T00:00:00Z')", no_account),
            ("INSERT INTO outbox (account_id, kind, dedupe_key, language, to_address, invoice_id, data, created_at)
              SELECT account_id, 'test', 'orphan', 'fr', 'x@example.org', 987654, '{}', issued_at FROM invoices WHERE id = (SELECT MIN(id) FROM invoices)", no_invoice),
            ("UPDATE outbox SET account_id = 'nobody' WHERE id = (SELECT MIN(id) FROM outbox)", no_account),
            ("UPDATE outbox SET invoice_id = 987654 WHERE id = (SELECT MIN(id) FROM outbox)", no_invoice),
        ] {
            let err = refused(&app, sql).await;
            assert!(err.as_deref().is_some_and(named), "{sql}: {err:?}");
        }
        // Nothing changed (but the id sequences the refused inserts drew from); ordinary
        // updates still work.
        let (mut after, mut before) = (app.dump().await, before);
        for d in [&mut after, &mut before] {
            d.remove("(sequences)");
        }
        assert_eq!(after, before);
        for sql in [
            "UPDATE accounts SET name = name",
            "UPDATE outbox SET status = status",
            "UPDATE account_events SET message = message",
        ] {
            assert_eq!(refused(&app, sql).await, None, "{sql}");
        }
    }
);

both_stores!(
    an_account_status_is_one_billrun_writes,
    |app: TestApp| async move {
        // Migration 0016: the stores hold `accounts.status` to `AccountStatus`'s names, so a
        // row never decodes into a status billrun does not know.
        app.seed_fixtures().await;
        for sql in [
            "UPDATE accounts SET status = 'closed' WHERE id = 'acc-fr-business'",
            "UPDATE accounts SET status = 'Active' WHERE id = 'acc-fr-business'",
            "INSERT INTO accounts (id, email, name, address, country, language, created_at, status)
              VALUES ('acc-x', 'x@example.org', 'X', '1 rue', 'FR', 'fr', '2026-01-01T00:00:00Z', 'gone')",
        ] {
            let err = refused(&app, sql).await;
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("accounts_status_check")),
                "{sql}: {err:?}"
            );
        }
        for status in billrun::core::lifecycle::AccountStatus::ALL {
            let mut tx = app.db().begin().await.unwrap();
            let row = billrun::with_db!(&mut tx, c => sqlx::query(
                "UPDATE accounts SET status = $1 WHERE id = 'acc-fr-business'")
                .bind(status.as_str()).execute(c).await.map(|r| r.rows_affected()));
            assert_eq!(row.as_ref().ok(), Some(&1), "{status}: {row:?}");
            let read = billrun::store::accounts::get_account(&mut tx, "acc-fr-business")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(read.status, status);
            tx.rollback().await.unwrap();
        }
    }
);

both_stores!(
    a_group_writes_exactly_what_one_by_one_writes,
    |app: TestApp| async move {
        // The same platform billed twice: here in one run (the invoices finalized together, in
        // bulk), there one account per run in the same order (each finalized alone). Every
        // table must come out the same, value for value.
        let alone = TestApp::new(app.store).await;
        let mut ids = Vec::new();
        for a in [&app, &alone] {
            a.seed_fixtures().await;
            a.import_csv(ImportKind::Catalog, "late.csv", "kind,item,hourly_price,monthly_cap,currency,effective_from\ncontainer,XL,0.08,,EUR,2026-12-15\n").await.unwrap();
        }
        let together = app.run(JobName::Invoice, OCT_RUN).await;
        assert_eq!(together.counts.get(&Count::Invoiced), Some(&6));
        let rows: Vec<(String,)> = match alone.db() {
            billrun::store::Db::Postgres(p) => {
                sqlx::query_as("SELECT id FROM accounts ORDER BY id")
                    .fetch_all(p)
                    .await
                    .unwrap()
            }
            billrun::store::Db::Sqlite(p) => sqlx::query_as("SELECT id FROM accounts ORDER BY id")
                .fetch_all(p)
                .await
                .unwrap(),
        };
        for (id,) in rows {
            let mut o = opts(OCT_RUN);
            o.accounts = vec![billrun::core::ids::AccountId(id.clone())];
            let r = alone.run_with(JobName::Invoice, o).await.unwrap();
            assert!(r.failures.is_empty(), "{id}: {:?}", r.failures);
            ids.push(id);
        }
        assert_eq!(ids.len(), 7);
        let (mut grouped, mut single) = (app.dump().await, alone.dump().await);
        for d in [&mut grouped, &mut single] {
            // When each store was migrated: the one table that may differ.
            d.remove("_sqlx_migrations");
        }
        for (table, rows) in &grouped {
            assert_eq!(Some(rows), single.get(table), "{table}");
        }
        assert_eq!(grouped.len(), single.len());
        assert_eq!(grouped["invoice_lines"].len(), 8);
    }
);

both_stores!(
    a_counts_only_run_keeps_no_views_and_does_the_same_work,
    |app: TestApp| async move {
        // The daemon's runs: the report keeps counts, not every invoice's view.
        app.seed_fixtures().await;
        let mut o = opts(OCT_RUN);
        o.counts_only = true;
        let r = app.run_with(JobName::Invoice, o).await.unwrap();
        assert!(r.invoices.is_empty(), "{} views kept", r.invoices.len());
        let issued = invoices_of(&app).await.len() as u64;
        assert!(issued > 0);
        assert_eq!(r.counts.get(&Count::Invoiced), Some(&issued));
        assert_eq!(app.count("invoice_documents").await, issued as i64);

        // Collection likewise keeps counts only, and still collects.
        let mut o = opts("2026-11-01T07:00:00Z");
        o.counts_only = true;
        let c = app.run_with(JobName::Collect, o).await.unwrap();
        assert!(c.collections.is_empty(), "{:#?}", c.collections);
        assert!(app.count("payment_attempts").await > 0);
        assert!(c.counts.values().sum::<u64>() > 0, "{:?}", c.counts);
    }
);

/// The app's environment with the invoice job reading `batch_size` accounts a page.
fn with_pages(app: &TestApp, batch_size: u32) -> billrun::jobs::Env {
    let mut env = app.env.clone();
    env.jobs.invoice.settings.batch_size = batch_size;
    env
}

both_stores!(
    small_pages_write_what_one_page_writes,
    |app: TestApp| async move {
        // Pages of two accounts: groups of two and of one, each finalized while the next page
        // is billed. Every table must come out as from one page, value for value: numbers
        // and ids in account order.
        let one_page = TestApp::new(app.store).await;
        for a in [&app, &one_page] {
            a.seed_fixtures().await;
        }
        let paged = billrun::jobs::run(&with_pages(&app, 2), JobName::Invoice, &opts(OCT_RUN))
            .await
            .unwrap();
        let whole = one_page.run(JobName::Invoice, OCT_RUN).await;
        assert_eq!(paged.counts, whole.counts);
        assert_eq!(paged.counts.get(&Count::Invoiced), Some(&6));
        // Every group was finalized as a group: none fell back to one by one.
        assert_eq!(paged.counts.get(&Count::RegroupedOneByOne), None);
        let numbers: Vec<_> = paged.invoices.iter().map(|i| i.number.clone()).collect();
        let expected: Vec<_> = EXPECTED.iter().map(|e| Some(e.1.to_string())).collect();
        assert_eq!(numbers, expected);
        let (mut paged, mut whole) = (app.dump().await, one_page.dump().await);
        for d in [&mut paged, &mut whole] {
            // When each store was migrated: the one table that may differ.
            d.remove("_sqlx_migrations");
        }
        for (table, rows) in &paged {
            assert_eq!(Some(rows), whole.get(table), "{table}");
        }
        assert_eq!(paged.len(), whole.len());
    }
);

both_stores!(
    concurrent_paged_runs_make_each_invoice_once_without_gaps,
    |app: TestApp| async move {
        // Three runs with pages of two race: groups meet accounts invoiced by another run,
        // roll back and go one by one. Whatever wins, each account is invoiced once and the
        // numbers have no gap.
        app.seed_fixtures().await;
        let env = with_pages(&app, 2);
        let o = opts(OCT_RUN);
        let run = || billrun::jobs::run(&env, JobName::Invoice, &o);
        let (a, b, c) = tokio::join!(run(), run(), run());
        let made: u64 = [a, b, c]
            .iter()
            .map(|r| {
                let r = r.as_ref().unwrap();
                assert!(r.failures.is_empty(), "{:?}", r.failures);
                r.counts.get(&Count::Invoiced).copied().unwrap_or(0)
            })
            .sum();
        assert_eq!(made, 6);
        let mut rows = invoices::list(app.db(), &ListFilter::default())
            .await
            .unwrap();
        rows.sort_by(|a, b| a.number.cmp(&b.number));
        let numbers: Vec<String> = rows.iter().map(|r| r.number.clone()).collect();
        assert_eq!(
            numbers,
            (1..=6).map(|n| format!("2026-{n:06}")).collect::<Vec<_>>()
        );
        let (last,): (i64,) = match app.db() {
            billrun::store::Db::Postgres(p) => {
                sqlx::query_as("SELECT last_value FROM invoice_sequences WHERE year = 2026")
                    .fetch_one(p)
                    .await
                    .unwrap()
            }
            billrun::store::Db::Sqlite(p) => {
                sqlx::query_as("SELECT last_value FROM invoice_sequences WHERE year = 2026")
                    .fetch_one(p)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(last, 6);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_meets_an_invoice_made_meanwhile_goes_one_by_one() {
    // Another writer invoices the first page's first account after the run has read that
    // page and before its group is written (PostgreSQL, where the other writer can hold the
    // year's counter while the run waits for it). The group is refused whole, rolled back
    // (giving its numbers back), and finalized one by one: that account is already
    // invoiced, the rest are invoiced, and the numbers have no gap.
    use sqlx::Connection;
    let app = TestApp::new(crate::common::Store::Postgres).await;
    app.seed_fixtures().await;
    let mut other = sqlx::PgConnection::connect(&app.url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    // The other writer holds the year's counter: the run's first group waits for it.
    let (n,): (i64,) = sqlx::query_as(
        "INSERT INTO invoice_sequences (year, last_value) VALUES (2026, 1)
         ON CONFLICT (year) DO UPDATE SET last_value = invoice_sequences.last_value + 1
         RETURNING last_value",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(n, 1);
    let env = with_pages(&app, 2);
    let run =
        tokio::spawn(
            async move { billrun::jobs::run(&env, JobName::Invoice, &opts(OCT_RUN)).await },
        );
    crate::common::wait_until(
        "the run to wait for the year's counter",
        std::time::Duration::from_secs(10),
        async || {
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            waiting > 0
        },
    )
    .await;
    sqlx::query(
        "INSERT INTO invoices (number, account_id, period, period_start, period_end, status, currency,
            language, buyer_name, buyer_address, buyer_country, subtotal_minor, discount_minor, tax_case,
            tax_rate, tax_minor, total_minor, amount_due_minor, issued_at, due_at)
         VALUES ('2026-000001', 'acc-de-business', '2026-10', '2026-10-01T00:00:00Z', '2026-11-01T00:00:00Z',
            'paid', 'EUR', 'en', 'Other writer', 'Somewhere', 'DE', 0, 0, 'reverse_charge', 0, 0, 0, 0,
            '2026-11-01T05:00:00Z', '2026-11-15')",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let r = run.await.unwrap().unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(
        r.counts.get(&Count::AlreadyInvoiced),
        Some(&1),
        "{:?}",
        r.counts
    );
    assert_eq!(r.counts.get(&Count::Invoiced), Some(&5), "{:?}", r.counts);
    // The refused group (the first page: two accounts) went one by one.
    assert_eq!(
        r.counts.get(&Count::RegroupedOneByOne),
        Some(&2),
        "{:?}",
        r.counts
    );
    let mut rows = invoices::list(app.db(), &ListFilter::default())
        .await
        .unwrap();
    rows.sort_by(|a, b| a.number.cmp(&b.number));
    let numbers: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.number.clone(), r.account_id.to_string()))
        .collect();
    assert_eq!(numbers.len(), 6, "{numbers:?}");
    for (i, (number, _)) in numbers.iter().enumerate() {
        assert_eq!(number, &format!("2026-{:06}", i + 1), "{numbers:?}");
    }
    assert_eq!(numbers[0].1, "acc-de-business");
}

/// Rows no import lets through any more (issue 25), written straight to the store: i64::MAX
/// containers for a day on acc-de-consumer's app, and 100 containers for a day of a size priced
/// at the most PostgreSQL's `NUMERIC(24, 10)` holds on acc-fr-consumer's.
async fn insert_unbillable_usage(app: &TestApp) {
    use crate::common::t;
    use billrun::core::ids::AppId;
    use billrun::core::pricing::{PriceEntry, UsageKind, UsageRecord};
    let mut tx = app.db().begin().await.unwrap();
    billrun::store::catalog::insert_price(
        &mut tx,
        &PriceEntry {
            kind: UsageKind::Container,
            item: "XXL".into(),
            hourly_price: "99999999999999.9999999999".parse().unwrap(),
            monthly_cap: None,
            effective_from: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        },
    )
    .await
    .unwrap();
    for (id, app_id, item, quantity) in [
        ("u-huge-quantity", "app-dieter-blog", "S", i64::MAX),
        ("u-huge-price", "app-alice-web", "XXL", 100),
    ] {
        let u = UsageRecord {
            id: id.into(),
            app_id: AppId(app_id.into()),
            kind: UsageKind::Container,
            item: item.into(),
            quantity,
            started_at: t("2026-10-05T00:00:00Z"),
            ended_at: Some(t("2026-10-06T00:00:00Z")),
        };
        billrun::store::accounts::insert_usage(&mut tx, &u)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

fn assert_unbillable_failures(failures: &[billrun::jobs::Failure]) {
    let got: Vec<(&str, &str)> = failures
        .iter()
        .map(|f| (f.item.as_str(), f.error.as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "account acc-de-consumer");
    assert!(
        got[0]
            .1
            .contains("usage u-huge-quantity (app app-dieter-blog, container `S`)")
            && got[0].1.contains("out of range"),
        "{got:?}"
    );
    assert_eq!(got[1].0, "account acc-fr-consumer");
    assert!(
        got[1]
            .1
            .contains("usage u-huge-price (app app-alice-web, container `XXL`)"),
        "{got:?}"
    );
}

both_stores!(
    an_unbillable_record_fails_its_account_and_every_other_is_invoiced,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        insert_unbillable_usage(&app).await;

        let before = app.dump().await;
        let mut dry = opts(OCT_RUN);
        dry.dry_run = true;
        let report = app.run_with(JobName::Invoice, dry).await.unwrap();
        assert_unbillable_failures(&report.failures);
        assert_eq!(report.counts.get(&Count::WouldInvoice), Some(&4));
        assert_eq!(app.dump().await, before, "a dry-run writes nothing");

        // acc-fi-consumer and acc-fr-business, between the two failures, are finalized as one
        // group; the others alone.
        let report = app.run(JobName::Invoice, OCT_RUN).await;
        assert_unbillable_failures(&report.failures);
        assert_eq!(report.counts.get(&Count::Invoiced), Some(&4));
        assert_eq!(report.counts.get(&Count::RegroupedOneByOne), None);
        let all = invoices_of(&app).await;
        let mut accounts: Vec<&str> = all.iter().map(|i| i.account_id.as_str()).collect();
        accounts.sort();
        assert_eq!(
            accounts,
            [
                "acc-de-business",
                "acc-fi-consumer",
                "acc-fr-business",
                "acc-us-business"
            ]
        );
        let numbers: Vec<_> = report.invoices.iter().map(|i| i.number.clone()).collect();
        assert_eq!(
            numbers,
            ["2026-000001", "2026-000002", "2026-000003", "2026-000004"].map(|n| Some(n.into()))
        );

        // The binary: exit 1 (items failed), each failure on stderr, the run recorded failed.
        for args in [&["--dry-run"][..], &[]] {
            let out = app.cli(&[&["run", "invoice", "--now", OCT_RUN][..], args].concat());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.contains("failed: account acc-de-consumer: usage u-huge-quantity")
                    && stderr.contains("failed: account acc-fr-consumer: usage u-huge-price")
                    && !stderr.contains("panicked"),
                "{stderr}"
            );
        }
        let runs = billrun::store::runs::list(app.db(), Some("invoice"), 10)
            .await
            .unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, billrun::store::runs::RunStatus::Failed);
    }
);

both_stores!(
    run_invoice_json_spools_its_invoices_with_the_same_bytes,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let mut dry = opts(OCT_RUN);
        dry.dry_run = true;
        // What `run invoice --format json` printed before it spooled (issue 25 §4).
        let whole = app.run_with(JobName::Invoice, dry.clone()).await.unwrap();
        assert_eq!(whole.invoices.len(), 6);
        let before = format!("{}\n", serde_json::to_string_pretty(&whole).unwrap());
        // Pages of two accounts: the views reach the spool in several hand-overs.
        for batch_size in [2, 500] {
            let spool = billrun::views::InvoiceSpool::new().unwrap();
            let mut o = dry.clone();
            o.invoice_sink = spool.sink();
            let mut report =
                billrun::jobs::run(&with_pages(&app, batch_size), JobName::Invoice, &o)
                    .await
                    .unwrap();
            assert!(report.invoices.is_empty(), "the report holds none");
            let mut out = Vec::new();
            billrun::views::write_run_report_json(&mut report, Some(&spool), &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                before,
                "pages of {batch_size}"
            );
        }
        // Views handed over, then views still in the report: in that order.
        let spool = billrun::views::InvoiceSpool::new().unwrap();
        let mut report = whole.clone();
        let handed: Vec<_> = report.invoices.drain(..4).collect();
        (spool.sink().0.unwrap())(handed);
        let mut out = Vec::new();
        billrun::views::write_run_report_json(&mut report, Some(&spool), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), before);
        // The binary, dry-run (deterministic at a given --now), then for real.
        let out = app.cli(&[
            "run",
            "invoice",
            "--now",
            OCT_RUN,
            "--dry-run",
            "--format",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), before);
        let out = app.cli(&["run", "invoice", "--now", OCT_RUN, "--format", "json"]);
        assert_eq!(out.status.code(), Some(0));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let numbers: Vec<&str> = report["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["number"].as_str().unwrap())
            .collect();
        assert_eq!(numbers, EXPECTED.iter().map(|e| e.1).collect::<Vec<_>>());
        assert_eq!(report["counts"]["invoiced"], 6);
    }
);

both_stores!(
    the_run_s_table_is_written_row_by_row_in_fixed_columns,
    |app: TestApp| async move {
        // Issue 25 §4: `run invoice` (table format) held every invoice until the run ended to
        // size its columns; now each row is written as the run issues it, in fixed columns.
        app.seed_fixtures().await;
        let text = |args: &[&str]| {
            let out = app.cli(args);
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let dry = text(&["run", "invoice", "--now", OCT_RUN, "--dry-run"]);
        let real = text(&["run", "invoice", "--now", OCT_RUN]);
        insta::assert_snapshot!(
            "run_invoice_table",
            format!("$ billrun run invoice --dry-run\n{dry}$ billrun run invoice\n{real}")
        );
    }
);

both_stores!(
    the_run_s_table_rows_come_out_as_the_invoices_are_issued,
    |app: TestApp| async move {
        use std::sync::{Arc, Mutex};
        app.seed_fixtures().await;
        // Pages of two accounts: the run hands its invoices over page by page.
        let mut env = app.env.clone();
        env.jobs.invoice.settings.batch_size = 2;
        let all = Arc::new(billrun::views::InvoiceTableStream::new(50));
        let capped = Arc::new(billrun::views::InvoiceTableStream::new(2));
        let out: Arc<Mutex<(Vec<u8>, Vec<u8>)>> = Arc::default();
        // What had been written each time the run handed invoices over, and how many it held.
        let seen: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
        let mut o = opts(OCT_RUN);
        o.invoice_sink = billrun::jobs::InvoiceSink(Some({
            let (all, capped, out, seen) = (all.clone(), capped.clone(), out.clone(), seen.clone());
            Arc::new(move |invoices| {
                let mut out = out.lock().unwrap();
                all.write(&invoices, &mut out.0);
                capped.write(&invoices, &mut out.1);
                seen.lock()
                    .unwrap()
                    .push((String::from_utf8(out.0.clone()).unwrap(), invoices.len()));
            })
        }));
        let mut report = billrun::jobs::run(&env, JobName::Invoice, &o)
            .await
            .unwrap();
        assert_eq!(report.counts.get(&Count::Invoiced), Some(&6));
        let rest = std::mem::take(&mut report.invoices);
        {
            let mut out = out.lock().unwrap();
            all.finish(&rest, &mut out.0).unwrap();
            capped.finish(&rest, &mut out.1).unwrap();
        }
        let seen = seen.lock().unwrap().clone();
        let handed: Vec<usize> = seen.iter().map(|s| s.1).filter(|n| *n > 0).collect();
        assert!(
            handed.len() >= 2,
            "the invoices came in several hand-overs: {seen:?}"
        );
        // After each hand-over its rows were already written: the header and one row per
        // invoice handed over so far.
        let mut so_far = 0;
        for (text, n) in &seen {
            so_far += n;
            let lines: Vec<&str> = text.lines().collect();
            if so_far > 0 {
                assert!(lines[0].starts_with("NUMBER       ACCOUNT"), "{text}");
                assert_eq!(lines.len(), 1 + so_far, "{text}");
            }
        }
        let (full, short) = {
            let out = out.lock().unwrap();
            (
                String::from_utf8(out.0.clone()).unwrap(),
                String::from_utf8(out.1.clone()).unwrap(),
            )
        };
        assert_eq!(full.lines().count(), 7, "{full}");
        // Beyond its rows, the table counts the rest.
        let short_lines: Vec<&str> = short.lines().collect();
        assert_eq!(short_lines[..3], full.lines().collect::<Vec<_>>()[..3]);
        assert_eq!(
            short_lines[3],
            "(and 4 more invoices: see them all with --format json or `billrun invoices list`)"
        );
        assert_eq!(short_lines.len(), 4, "{short}");
    }
);
