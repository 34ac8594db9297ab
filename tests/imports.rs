//! Imports: validation with file, line and field; all-or-nothing; idempotence; both formats.

mod common;

use billrun::import::read::Format;
use billrun::import::{ImportKind, Rejected};
use billrun::jobs::JobName;
use common::TestApp;

fn rejected(err: anyhow::Error) -> Vec<String> {
    err.downcast_ref::<Rejected>()
        .unwrap_or_else(|| panic!("not a rejection: {err:#}"))
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect()
}

fn assert_has(errors: &[String], needle: &str) {
    assert!(
        errors.iter().any(|e| e.contains(needle)),
        "no error containing {needle:?} in {errors:#?}"
    );
}

both_stores!(importing_again_changes_nothing, |app: TestApp| async move {
    app.seed_fixtures().await;
    assert_eq!(app.count("accounts").await, 7);
    assert_eq!(app.count("apps").await, 8);
    assert_eq!(app.count("catalog_prices").await, 4);
    assert_eq!(app.count("usage_records").await, 10);
    let before = app.dump().await;
    let r = app.import_fixture(ImportKind::Usage, "usage.csv").await;
    assert_eq!((r.inserted, r.unchanged, r.rejected.len()), (0, 10, 0));
    let r = app
        .import_fixture(ImportKind::Accounts, "accounts.csv")
        .await;
    assert_eq!((r.inserted, r.unchanged), (0, 7));
    app.import_fixture(ImportKind::Catalog, "catalog.csv").await;
    app.import_fixture(ImportKind::Apps, "apps.csv").await;
    // NDJSON with the same keys is the same data.
    let r = app.import_fixture(ImportKind::Usage, "usage.ndjson").await;
    assert_eq!((r.inserted, r.unchanged), (0, 10));
    assert_eq!(app.dump().await, before);
});

both_stores!(ndjson_imports_like_csv, |app: TestApp| async move {
    app.import_fixture(ImportKind::Catalog, "catalog.csv").await;
    app.import_fixture(ImportKind::Accounts, "accounts.csv")
        .await;
    app.import_fixture(ImportKind::Apps, "apps.csv").await;
    let r = app.import_fixture(ImportKind::Usage, "usage.ndjson").await;
    assert_eq!(r.inserted, 10);
    let text = "{\"kind\":\"addon\",\"item\":\"redis-1g\",\"hourly_price\":0.0125,\"monthly_cap\":null,\"currency\":\"EUR\",\"effective_from\":\"2024-01-01\"}\n";
    let r = billrun::import::import_text(
        app.db(),
        ImportKind::Catalog,
        "c.ndjson",
        text,
        Format::Ndjson,
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.inserted, 1);
    let cat = billrun::store::catalog::load_catalog(app.db())
        .await
        .unwrap();
    let p = cat
        .price_at(
            billrun::core::pricing::UsageKind::Addon,
            "redis-1g",
            common::t("2026-01-01T00:00:00Z"),
        )
        .unwrap();
    assert_eq!(
        p.hourly_price.to_string(),
        "0.0125",
        "a JSON number keeps its exact decimal text"
    );
});

both_stores!(
    bad_usage_is_named_by_file_line_and_field_and_nothing_is_imported,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let before = app.dump().await;
        let text = "id,app_id,kind,item,quantity,started_at,ended_at
u-new,app-alice-web,container,S,1,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z
u-2,app-alice-web,container,S,1,yesterday,
u-3,app-alice-web,container,S,1,2026-10-05T00:00:00Z,2026-10-04T00:00:00Z
u-4,app-nope,container,S,1,2026-10-05T00:00:00Z,
u-5,app-alice-web,container,XXL,1,2026-10-05T00:00:00Z,
u-6,app-alice-web,container,S,-2,2026-10-05T00:00:00Z,
u-a1,app-alice-web,container,S,2,2026-10-10T12:00:00Z,2026-10-20T12:00:00Z
u-8,app-alice-web,database,S,1,2026-10-05T00:00:00Z,
";
        let errors = rejected(
            app.import_csv(ImportKind::Usage, "usage-bad.csv", text)
                .await
                .unwrap_err(),
        );
        assert_has(
            &errors,
            "usage-bad.csv:3: started_at: `yesterday` is not an RFC 3339 time",
        );
        assert_has(
            &errors,
            "usage-bad.csv:4: ended_at: ends at 2026-10-04T00:00:00+00:00, not after its start",
        );
        assert_has(&errors, "usage-bad.csv:5: app_id: unknown app `app-nope`");
        assert_has(&errors, "usage-bad.csv:6: item: unknown container `XXL`");
        assert_has(&errors, "usage-bad.csv:7: quantity: `-2` is negative");
        assert_has(
            &errors,
            "usage-bad.csv:8: id: `u-a1` was already imported with different content (quantity: \"1\" → \"2\")",
        );
        assert_has(&errors, "usage-bad.csv:9: kind: `database` is not a kind");
        assert_eq!(errors.len(), 7, "{errors:#?}");
        assert_eq!(
            app.dump().await,
            before,
            "a file with any error imports nothing"
        );

        // --skip-invalid imports the rest and reports each rejected line.
        let r = billrun::import::import_text(
            app.db(),
            ImportKind::Usage,
            "usage-bad.csv",
            text,
            Format::Csv,
            true,
        )
        .await
        .unwrap();
        assert_eq!((r.inserted, r.rejected.len()), (1, 7));
        assert_eq!(app.count("usage_records").await, 11);
    }
);

both_stores!(
    bad_accounts_apps_and_prices_are_named,
    |app: TestApp| async move {
        app.import_fixture(ImportKind::Catalog, "catalog.csv").await;
        app.import_fixture(ImportKind::Accounts, "accounts.csv")
            .await;
        let text =
            "id,email,name,company,address,country,vat_number,language,created_at,referred_by
acc-x1,not-an-email,X,,Somewhere,FR,,fr,2025-01-01T00:00:00Z,
acc-x2,x2@example.com,X,,Somewhere,XX,,fr,2025-01-01T00:00:00Z,
acc-x3,x3@example.com,X,,Somewhere,FR,,de,2025-01-01T00:00:00Z,
acc-x4,x4@example.com,X,,Somewhere,FR,,fr,2025-01-01T00:00:00Z,acc-ghost
acc-x5,x5@example.com,X,X GmbH,Somewhere,DE,FR123,en,2025-01-01T00:00:00Z,
acc-x6,x6@example.com,,,Somewhere,FR,,fr,2025-01-01,
acc-x7,x7@example.com,X,,Somewhere,FR,,fr,2025-01-01T00:00:00Z,acc-x4
";
        let errors = rejected(
            app.import_csv(ImportKind::Accounts, "accounts-bad.csv", text)
                .await
                .unwrap_err(),
        );
        assert_has(
            &errors,
            "accounts-bad.csv:2: email: `not-an-email` is not an email address",
        );
        assert_has(
            &errors,
            "accounts-bad.csv:3: country: `XX` is not an ISO 3166 alpha-2 country code",
        );
        assert_has(
            &errors,
            "accounts-bad.csv:4: language: `de` is not a language",
        );
        assert_has(
            &errors,
            "accounts-bad.csv:5: referred_by: unknown account `acc-ghost`",
        );
        assert_has(
            &errors,
            "accounts-bad.csv:6: vat_number: `FR123` is not a DE VAT number",
        );
        assert_has(&errors, "accounts-bad.csv:7: name: is empty");
        assert_has(
            &errors,
            "accounts-bad.csv:7: created_at: `2025-01-01` is not an RFC 3339 time",
        );
        assert_has(
            &errors,
            "accounts-bad.csv:8: referred_by: unknown account `acc-x4`",
        );

        let errors = rejected(
            app.import_csv(
                ImportKind::Apps,
                "apps-bad.csv",
                "id,name,account_id\napp-z,z,acc-ghost\n",
            )
            .await
            .unwrap_err(),
        );
        assert_has(
            &errors,
            "apps-bad.csv:2: account_id: unknown account `acc-ghost`",
        );

        let text = "kind,item,hourly_price,monthly_cap,currency,effective_from
vm,S,0.01,,EUR,2024-01-01
container,XS,-0.01,,EUR,2024-01-01
container,XS,0.01,,USD,2024-01-01
container,XS,0.01,abc,EUR,2024-01-01
container,XS,0.01,,EUR,01/01/2024
container,M,0.03,14.40,EUR,2024-01-01
";
        let errors = rejected(
            app.import_csv(ImportKind::Catalog, "catalog-bad.csv", text)
                .await
                .unwrap_err(),
        );
        assert_has(&errors, "catalog-bad.csv:2: kind: `vm` is not a kind");
        assert_has(
            &errors,
            "catalog-bad.csv:3: hourly_price: `-0.01` is negative",
        );
        assert_has(
            &errors,
            "catalog-bad.csv:4: currency: `USD` is not supported",
        );
        assert_has(
            &errors,
            "catalog-bad.csv:5: monthly_cap: `abc` is not a decimal number",
        );
        assert_has(
            &errors,
            "catalog-bad.csv:6: effective_from: `01/01/2024` is not a date",
        );
        assert_has(
            &errors,
            "catalog-bad.csv:7: id: `container M from 2024-01-01` was already imported with different content (hourly_price: \"0.02\" → \"0.03\")",
        );

        let errors = rejected(
            app.import_csv(
                ImportKind::Apps,
                "apps-cols.csv",
                "id,name,owner\napp-z,z,acc-fr-consumer\n",
            )
            .await
            .unwrap_err(),
        );
        assert_has(&errors, "apps-cols.csv:1: owner: unknown field");
        assert_has(&errors, "apps-cols.csv:1: account_id: missing field");
    }
);

both_stores!(
    a_running_record_may_be_closed_but_not_before_what_was_invoiced,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        let header = "id,app_id,kind,item,quantity,started_at,ended_at\n";
        // u-b1 (bob, M, running) was billed to the end of October: it cannot end in October now.
        let early = format!(
            "{header}u-b1,app-bob-api,container,M,2,2026-09-15T00:00:00Z,2026-10-20T00:00:00Z\n"
        );
        let errors = rejected(
            app.import_csv(ImportKind::Usage, "close.csv", &early)
                .await
                .unwrap_err(),
        );
        assert_has(
            &errors,
            "close.csv:2: ended_at: usage u-b1 was billed as running until",
        );
        let later = format!(
            "{header}u-b1,app-bob-api,container,M,2,2026-09-15T00:00:00Z,2026-11-10T00:00:00Z\n"
        );
        let r = app
            .import_csv(ImportKind::Usage, "close.csv", &later)
            .await
            .unwrap();
        assert_eq!((r.inserted, r.updated), (0, 1));
        // Once closed, its end cannot move.
        let moved = format!(
            "{header}u-b1,app-bob-api,container,M,2,2026-09-15T00:00:00Z,2026-11-12T00:00:00Z\n"
        );
        let errors = rejected(
            app.import_csv(ImportKind::Usage, "close.csv", &moved)
                .await
                .unwrap_err(),
        );
        assert_has(
            &errors,
            "close.csv:2: id: `u-b1` was already imported with different content (ended_at:",
        );
        // November bills the 9 days it ran: 216 h × 2 × 0.02 = 8.64 (beside the L worker's
        // 720 h × 0.04 = 28.80, still running).
        let nov = app.run(JobName::Invoice, "2026-12-01T06:00:00Z").await;
        assert_eq!(nov.invoices.len(), 1);
        let lines: Vec<(&str, &str)> = nov.invoices[0]
            .lines
            .iter()
            .map(|l| (l.item.as_str(), l.amount.as_str()))
            .collect();
        assert_eq!(lines, vec![("M", "8.64"), ("L", "28.80")]);
        assert_eq!(nov.invoices[0].subtotal, "37.44");
    }
);
