//! Imports: validation with file, line and field; all-or-nothing; idempotence; both formats.

use crate::common::TestApp;
use billrun::import::read::Format;
use billrun::import::{ImportKind, Rejected};
use billrun::jobs::JobName;

fn rejected(err: anyhow::Error) -> Vec<String> {
    err.downcast_ref::<Rejected>()
        .unwrap_or_else(|| panic!("not a rejection: {err:#}"))
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect()
}

/// The message of a file refused as a whole (exit 2 whatever `--skip-invalid` says).
fn refused_file(err: anyhow::Error) -> String {
    err.downcast_ref::<billrun::config::BadInput>()
        .unwrap_or_else(|| panic!("not a refused file: {err:#}"))
        .0
        .clone()
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

// A store that refuses a record as already stored yet holds none with its key (here a trigger
// drops every insert into `apps`) fails the import with an error naming the file, the line and
// the record, where the import used to panic; nothing is imported.
both_stores!(
    an_insert_refused_without_a_stored_row_fails_the_import,
    |app: TestApp| async move {
        app.import_fixture(ImportKind::Accounts, "accounts.csv")
            .await;
        let apps = app.count("apps").await;
        match app.db() {
            billrun::store::Db::Postgres(p) => {
                sqlx::query(
                    "CREATE FUNCTION drop_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
                )
                .execute(p)
                .await
                .unwrap();
                sqlx::query("CREATE TRIGGER drop_apps BEFORE INSERT ON apps FOR EACH ROW EXECUTE FUNCTION drop_row()")
                    .execute(p)
                    .await
                    .unwrap();
            }
            billrun::store::Db::Sqlite(p) => {
                sqlx::query("CREATE TRIGGER drop_apps BEFORE INSERT ON apps BEGIN SELECT RAISE(IGNORE); END")
                    .execute(p)
                    .await
                    .unwrap();
            }
        }
        let err = app
            .import_csv(
                ImportKind::Apps,
                "apps.csv",
                "id,name,account_id\napp-new,web,acc-fr-consumer\n",
            )
            .await
            .unwrap_err();
        let missing = err
            .downcast_ref::<billrun::import::StoredRowMissing>()
            .unwrap_or_else(|| panic!("not a missing row: {err:#}"));
        assert_eq!((missing.file.as_str(), missing.line), ("apps.csv", 2));
        assert_eq!(
            err.to_string(),
            "apps.csv:2: the store refused app `app-new` as already stored, but holds no app `app-new` (did it change during the import?); nothing imported"
        );
        assert_eq!(app.count("apps").await, apps);
    }
);

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
            crate::common::t("2026-01-01T00:00:00Z"),
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

        let error = refused_file(
            app.import_csv(
                ImportKind::Apps,
                "apps-cols.csv",
                "id,name,owner\napp-z,z,acc-fr-consumer\n",
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(
            error,
            "apps-cols.csv:1: header: `owner` unknown field (expected: id,name,account_id); `account_id` missing field"
        );
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
        let lines: Vec<(&str, i64)> = nov.invoices[0]
            .lines
            .iter()
            .map(|l| (l.item.as_str(), l.amount.minor))
            .collect();
        assert_eq!(lines, vec![("M", 864), ("L", 2880)]);
        assert_eq!(nov.invoices[0].subtotal.minor, 3744);
    }
);

/// `(records, inserted, unchanged, rejected)` of a report.
fn tally(r: &billrun::import::ImportReport) -> (usize, usize, usize, usize) {
    (r.records, r.inserted, r.unchanged, r.rejected.len())
}

async fn import_ndjson(
    app: &TestApp,
    kind: ImportKind,
    name: &str,
    text: &str,
) -> anyhow::Result<billrun::import::ImportReport> {
    billrun::import::import_text(app.db(), kind, name, text, Format::Ndjson, false).await
}

async fn import_skipping(
    app: &TestApp,
    kind: ImportKind,
    name: &str,
    text: &str,
) -> billrun::import::ImportReport {
    billrun::import::import_text(app.db(), kind, name, text, Format::Csv, true)
        .await
        .unwrap()
}

/// `(line, field)` of each rejected record of a report.
fn rejected_lines(r: &billrun::import::ImportReport) -> Vec<(usize, String)> {
    r.rejected
        .iter()
        .map(|e| (e.line, e.field.clone()))
        .collect()
}

both_stores!(
    deployments_aliases_domains_and_certificates_import_once,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let [deployments, aliases, domains, certificates] = app.seed_platform_fixtures().await;
        assert_eq!(tally(&deployments), (6, 6, 0, 0));
        assert_eq!(tally(&aliases), (4, 4, 0, 0));
        assert_eq!(tally(&domains), (5, 5, 0, 0));
        assert_eq!(tally(&certificates), (5, 5, 0, 0));
        assert_eq!(app.count("deployments").await, 6);
        assert_eq!(app.count("aliases").await, 4);
        assert_eq!(app.count("domains").await, 5);
        assert_eq!(app.count("certificates").await, 5);

        // Every domain of acc-fr-business has a certificate (api.… was renewed once).
        let per_domain: Vec<(String, i64)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT d.name, COUNT(c.id) FROM domains d JOIN apps a ON a.id = d.app_id
             LEFT JOIN certificates c ON c.domain_id = d.id
             WHERE a.account_id = $1 GROUP BY d.name ORDER BY d.name")
            .bind("acc-fr-business").fetch_all(p).await.unwrap());
        assert_eq!(
            per_domain,
            vec![
                ("api.durand-sas.fr".to_string(), 2),
                ("status.durand-sas.fr".to_string(), 1)
            ]
        );
        let aliases: Vec<(String,)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT name FROM aliases WHERE account_id = $1 ORDER BY name")
            .bind("acc-fr-business").fetch_all(p).await.unwrap());
        assert_eq!(
            aliases,
            vec![("durand".to_string(),), ("durand-sas".to_string(),)]
        );

        // Times are stored as the other imports store them: they read back as the same
        // instant and compare with bound times on both stores.
        let (expires,): (chrono::DateTime<chrono::Utc>,) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT expires_at FROM certificates WHERE id = $1")
            .bind("cert-bob-api-2").fetch_one(p).await.unwrap());
        assert_eq!(expires, crate::common::t("2027-01-28T08:00:00Z"));
        let expiring: Vec<(String,)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT id FROM certificates WHERE expires_at < $1 ORDER BY id")
            .bind(crate::common::t("2026-11-01T00:00:00Z")).fetch_all(p).await.unwrap());
        assert_eq!(expiring, vec![("cert-bob-api-1".to_string(),)]);
        let october: Vec<(String,)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT id FROM deployments WHERE created_at >= $1 AND created_at < $2 ORDER BY id")
            .bind(crate::common::t("2026-10-01T00:00:00Z"))
            .bind(crate::common::t("2026-11-01T00:00:00Z"))
            .fetch_all(p).await.unwrap());
        assert_eq!(
            october,
            vec![
                ("dep-alice-web-2".to_string(),),
                ("dep-bob-api-2".to_string(),),
                ("dep-clara-shop-1".to_string(),)
            ]
        );
        // … and with the times of the usage import.
        let after_usage: Vec<(String,)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT d.id FROM deployments d JOIN usage_records u ON u.app_id = d.app_id
             WHERE u.id = $1 AND d.created_at > u.started_at ORDER BY d.id")
            .bind("u-a1").fetch_all(p).await.unwrap());
        assert_eq!(
            after_usage,
            vec![("dep-alice-web-2".to_string(),)],
            "alice's deployments after usage u-a1 started (2026-10-10T12:00:00Z)"
        );

        // Importing the same files again changes nothing.
        let before = app.dump().await;
        let [deployments, aliases, domains, certificates] = app.seed_platform_fixtures().await;
        assert_eq!(tally(&deployments), (6, 0, 6, 0));
        assert_eq!(tally(&aliases), (4, 0, 4, 0));
        assert_eq!(tally(&domains), (5, 0, 5, 0));
        assert_eq!(tally(&certificates), (5, 0, 5, 0));
        // NDJSON with the same keys is the same data, and a time is an instant: the same one
        // written with another offset is unchanged.
        let r = import_ndjson(
            &app,
            ImportKind::Deployments,
            "deployments.ndjson",
            "{\"id\":\"dep-alice-web-2\",\"app_id\":\"app-alice-web\",\"git_ref\":\"v1.4.0\",\"created_at\":\"2026-10-12T11:30:00+02:00\"}\n",
        )
        .await
        .unwrap();
        assert_eq!(tally(&r), (1, 0, 1, 0));
        let r = import_ndjson(
            &app,
            ImportKind::Certificates,
            "certificates.ndjson",
            "{\"id\":\"cert-clara-shop\",\"domain_id\":\"dom-clara-shop\",\"issuer\":\"Sectigo\",\"expires_at\":\"2027-03-01T00:00:00Z\"}\n\
             {\"id\":\"cert-alice-www\",\"domain_id\":\"dom-alice-www\",\"issuer\":\"Let's Encrypt\",\"expires_at\":\"2026-12-20T10:00:00Z\"}\n",
        )
        .await
        .unwrap();
        assert_eq!(tally(&r), (2, 0, 2, 0));
        let r = import_ndjson(
            &app,
            ImportKind::Domains,
            "domains.ndjson",
            "{\"id\":\"dom-bob-api\",\"app_id\":\"app-bob-api\",\"name\":\"api.durand-sas.fr\"}\n",
        )
        .await
        .unwrap();
        assert_eq!(tally(&r), (1, 0, 1, 0));
        let r = import_ndjson(
            &app,
            ImportKind::Aliases,
            "aliases.ndjson",
            "{\"id\":\"alias-clara\",\"account_id\":\"acc-de-business\",\"name\":\"schmidt-gmbh\"}\n",
        )
        .await
        .unwrap();
        assert_eq!(tally(&r), (1, 0, 1, 0));
        assert_eq!(app.dump().await, before);
    }
);

both_stores!(
    unknown_apps_accounts_and_domains_are_named_and_nothing_is_imported,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.seed_platform_fixtures().await;
        let before = app.dump().await;

        let errors = rejected(
            app.import_csv(
                ImportKind::Deployments,
                "deployments-bad.csv",
                "id,app_id,git_ref,created_at
dep-new,app-alice-web,main,2026-10-20T00:00:00Z
dep-x,app-nope,main,2026-10-20T00:00:00Z
",
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(
            errors,
            vec!["deployments-bad.csv:3: app_id: unknown app `app-nope`"]
        );

        let errors = rejected(
            app.import_csv(
                ImportKind::Aliases,
                "aliases-bad.csv",
                "id,account_id,name
alias-new,acc-idle,gina
alias-x,acc-ghost,ghost
",
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(
            errors,
            vec!["aliases-bad.csv:3: account_id: unknown account `acc-ghost`"]
        );

        let errors = rejected(
            app.import_csv(
                ImportKind::Domains,
                "domains-bad.csv",
                "id,app_id,name
dom-x,app-nope,x.example.com
dom-new,app-gina-idle,gina.example.it
",
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(
            errors,
            vec!["domains-bad.csv:2: app_id: unknown app `app-nope`"]
        );

        // The domain must be stored already: one only in a domains file not imported (dom-new
        // above) is as unknown as one that never existed.
        let errors = rejected(
            app.import_csv(
                ImportKind::Certificates,
                "certificates-bad.csv",
                "id,domain_id,issuer,expires_at
cert-new,dom-alice-apex,Let's Encrypt,2027-01-01T00:00:00Z
cert-x,dom-ghost,Let's Encrypt,2027-01-01T00:00:00Z
cert-y,dom-new,Let's Encrypt,2027-01-01T00:00:00Z
",
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(
            errors,
            vec![
                "certificates-bad.csv:3: domain_id: unknown domain `dom-ghost`",
                "certificates-bad.csv:4: domain_id: unknown domain `dom-new`",
            ]
        );
        assert_eq!(
            app.dump().await,
            before,
            "a file with any error imports nothing"
        );
    }
);

both_stores!(
    bad_times_names_and_changed_records_are_named,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.seed_platform_fixtures().await;
        let before = app.dump().await;

        let errors = rejected(
            app.import_csv(
                ImportKind::Deployments,
                "deployments-bad.csv",
                "id,app_id,git_ref,created_at
dep-t1,app-alice-web,main,yesterday
dep-t2,app-alice-web,,2026-10-20T00:00:00Z
dep-alice-web-1,app-alice-web,develop,2026-09-28T14:02:11Z
dep t3,app-alice-web,main,2026-10-20T00:00:00Z
dep-t4,app-alice-web,main,
",
            )
            .await
            .unwrap_err(),
        );
        assert_has(
            &errors,
            "deployments-bad.csv:2: created_at: `yesterday` is not an RFC 3339 time",
        );
        assert_has(&errors, "deployments-bad.csv:3: git_ref: is empty");
        assert_has(
            &errors,
            "deployments-bad.csv:4: id: `dep-alice-web-1` was already imported with different content (git_ref: \"main\" → \"develop\")",
        );
        assert_has(&errors, "deployments-bad.csv:5: id: `dep t3` is not an id");
        assert_has(&errors, "deployments-bad.csv:6: created_at: is empty");
        assert_eq!(errors.len(), 5, "{errors:#?}");

        let errors = rejected(
            app.import_csv(
                ImportKind::Certificates,
                "certificates-bad.csv",
                "id,domain_id,issuer,expires_at
cert-t1,dom-bob-api,Let's Encrypt,2027-02-30T00:00:00Z
cert-t2,dom-bob-api,Let's Encrypt,2027-01-28
cert-t3,dom-bob-api,,2027-01-28T00:00:00Z
cert-bob-api-2,dom-bob-api,Let's Encrypt,2027-01-29T08:00:00Z
",
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(
            errors.len(),
            4,
            "one error a line, each naming its field: {errors:#?}"
        );
        assert_has(
            &errors,
            "certificates-bad.csv:2: expires_at: `2027-02-30T00:00:00Z` is not an RFC 3339 time",
        );
        assert_has(
            &errors,
            "certificates-bad.csv:3: expires_at: `2027-01-28` is not an RFC 3339 time",
        );
        assert_has(&errors, "certificates-bad.csv:4: issuer: is empty");
        assert_has(
            &errors,
            "certificates-bad.csv:5: id: `cert-bob-api-2` was already imported with different content (expires_at: \"2027-01-28T08:00:00+00:00\" → \"2027-01-29T08:00:00+00:00\")",
        );

        let errors = rejected(
            app.import_csv(
                ImportKind::Domains,
                "domains-bad.csv",
                "id,app_id,name
dom-t1,app-alice-web,Shop.Alice-Martin.fr
dom-t2,app-alice-web,.alice-martin.fr
dom-t3,app-alice-web,alice-martin.fr.
dom-t4,app-alice-web,
dom-t5,app-alice-web,shop..alice-martin.fr
dom-t6,app-alice-web,*.alice-martin.fr
dom-alice-www,app-bob-api,www.alice-martin.fr
",
            )
            .await
            .unwrap_err(),
        );
        assert_has(
            &errors,
            "domains-bad.csv:2: name: `Shop.Alice-Martin.fr` is not a DNS name: only lowercase letters, digits, `-` and `.` are allowed",
        );
        assert_has(
            &errors,
            "domains-bad.csv:3: name: `.alice-martin.fr` is not a DNS name: it starts or ends with a dot",
        );
        assert_has(
            &errors,
            "domains-bad.csv:4: name: `alice-martin.fr.` is not a DNS name: it starts or ends with a dot",
        );
        assert_has(&errors, "domains-bad.csv:5: name: is empty");
        assert_has(
            &errors,
            "domains-bad.csv:6: name: `shop..alice-martin.fr` is not a DNS name",
        );
        assert_has(
            &errors,
            "domains-bad.csv:7: name: `*.alice-martin.fr` is not a DNS name",
        );
        assert_has(
            &errors,
            "domains-bad.csv:8: id: `dom-alice-www` was already imported with different content (app_id: \"app-alice-web\" → \"app-bob-api\")",
        );
        assert_eq!(errors.len(), 7, "{errors:#?}");

        let errors = rejected(
            app.import_csv(
                ImportKind::Aliases,
                "aliases-bad.csv",
                "id,account_id,name
alias-t1,acc-fr-consumer,
alias-alice,acc-fr-consumer,alice-m
",
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(
            errors,
            vec![
                "aliases-bad.csv:2: name: is empty".to_string(),
                "aliases-bad.csv:3: id: `alias-alice` was already imported with different content (name: \"alice\" → \"alice-m\")".to_string(),
            ]
        );

        // Wrong columns are named by the header's line.
        let error = refused_file(
            app.import_csv(
                ImportKind::Certificates,
                "certificates-cols.csv",
                "id,domain,issuer,expires_at\ncert-z,dom-bob-api,X,2027-01-01T00:00:00Z\n",
            )
            .await
            .unwrap_err(),
        );
        assert!(
            error.starts_with("certificates-cols.csv:1: header: `domain` unknown field")
                && error.contains("`domain_id` missing field"),
            "{error}"
        );
        assert_eq!(
            app.dump().await,
            before,
            "a file with any error imports nothing"
        );
    }
);

both_stores!(
    skip_invalid_imports_the_valid_records_of_each_kind,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let deployments = "id,app_id,git_ref,created_at
dep-1,app-eeva-site,main,2026-10-02T10:00:00Z
dep-2,app-eeva-site,main,2026-10-32T10:00:00Z
dep-3,app-ghost,main,2026-10-02T10:00:00Z
";
        let r = import_skipping(&app, ImportKind::Deployments, "d.csv", deployments).await;
        assert_eq!(tally(&r), (3, 1, 0, 2));
        assert_eq!(
            rejected_lines(&r),
            vec![(3, "created_at".into()), (4, "app_id".into())]
        );
        assert!(r.committed);

        let aliases = "id,account_id,name
alias-1,acc-fi-consumer,eeva
alias-2,acc-ghost,ghost
";
        let r = import_skipping(&app, ImportKind::Aliases, "a.csv", aliases).await;
        assert_eq!(tally(&r), (2, 1, 0, 1));
        assert_eq!(rejected_lines(&r), vec![(3, "account_id".into())]);

        let domains = "id,app_id,name
dom-1,app-eeva-site,Eeva.fi
dom-2,app-eeva-site,eeva.fi
dom-3,app-ghost,ghost.fi
";
        let r = import_skipping(&app, ImportKind::Domains, "dm.csv", domains).await;
        assert_eq!(tally(&r), (3, 1, 0, 2));
        assert_eq!(
            rejected_lines(&r),
            vec![(2, "name".into()), (4, "app_id".into())]
        );

        // dom-2 is stored now; dom-1 was rejected, so its certificate is too.
        let certificates = "id,domain_id,issuer,expires_at
cert-1,dom-1,Let's Encrypt,2027-01-01T00:00:00Z
cert-2,dom-2,Let's Encrypt,2027-01-01T00:00:00Z
cert-3,dom-2,Let's Encrypt,next year
";
        let r = import_skipping(&app, ImportKind::Certificates, "c.csv", certificates).await;
        assert_eq!(tally(&r), (3, 1, 0, 2));
        assert_eq!(
            rejected_lines(&r),
            vec![(2, "domain_id".into()), (4, "expires_at".into())]
        );

        let stored: Vec<(String, String)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT 'deployment ' || id, app_id FROM deployments
             UNION ALL SELECT 'alias ' || id, account_id FROM aliases
             UNION ALL SELECT 'domain ' || id, name FROM domains
             UNION ALL SELECT 'certificate ' || id, domain_id FROM certificates
             ORDER BY 1")
            .fetch_all(p).await.unwrap());
        assert_eq!(
            stored,
            vec![
                ("alias alias-1".to_string(), "acc-fi-consumer".to_string()),
                ("certificate cert-2".to_string(), "dom-2".to_string()),
                ("deployment dep-1".to_string(), "app-eeva-site".to_string()),
                ("domain dom-2".to_string(), "eeva.fi".to_string()),
            ]
        );

        // Again: the valid records are unchanged and the same lines are rejected.
        let before = app.dump().await;
        let r = import_skipping(&app, ImportKind::Certificates, "c.csv", certificates).await;
        assert_eq!(tally(&r), (3, 0, 1, 2));
        let r = import_skipping(&app, ImportKind::Domains, "dm.csv", domains).await;
        assert_eq!(tally(&r), (3, 0, 1, 2));
        assert_eq!(app.dump().await, before);
    }
);

both_stores!(
    the_cli_imports_deployments_aliases_domains_and_certificates,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        for (kind, file, n) in [
            ("deployments", "deployments.csv", 6),
            ("aliases", "aliases.csv", 4),
            ("domains", "domains.csv", 5),
            ("certificates", "certificates.csv", 5),
        ] {
            let path = crate::common::fixture(file);
            let out = app.cli(&["import", kind, path.to_str().unwrap()]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{kind}: {stdout} {out:?}");
            assert!(
                stdout.contains(&format!(
                    "{n} record(s): {n} imported, 0 updated, 0 unchanged, 0 rejected"
                )),
                "{kind}: {stdout}"
            );
            assert_eq!(app.count(kind).await, n as i64, "{kind}");
        }

        let bad = app.dir.path().join("certificates-bad.csv");
        std::fs::write(
            &bad,
            "id,domain_id,issuer,expires_at
cert-new,dom-alice-apex,Let's Encrypt,2027-01-01T00:00:00Z
cert-x,dom-ghost,Let's Encrypt,2027-01-01T00:00:00Z
",
        )
        .unwrap();
        let out = app.cli(&["import", "certificates", bad.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("certificates-bad.csv:3: domain_id: unknown domain `dom-ghost`"),
            "{stderr}"
        );
        assert_eq!(app.count("certificates").await, 5);

        let out = app.cli(&[
            "import",
            "certificates",
            bad.to_str().unwrap(),
            "--skip-invalid",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("rejected ") && stderr.contains("certificates-bad.csv:3: domain_id"),
            "{stderr}"
        );
        assert_eq!(app.count("certificates").await, 6);
    }
);

both_stores!(
    references_are_looked_up_across_many_lookups,
    |app: TestApp| async move {
        // An import looks up only the ids its file names, 500 to a statement: 1,201 apps
        // make three lookups, and a reference in each must be found.
        app.seed_fixtures().await;
        let mut apps = String::from("id,name,account_id\n");
        for i in 0..1201 {
            apps.push_str(&format!("app-many-{i:04},many-{i},acc-fr-consumer\n"));
        }
        let r = app
            .import_csv(ImportKind::Apps, "apps-many.csv", &apps)
            .await
            .unwrap();
        assert_eq!(r.inserted, 1201);
        let mut usage = String::from("id,app_id,kind,item,quantity,started_at,ended_at\n");
        for i in (0..1201).step_by(100) {
            usage.push_str(&format!(
                "u-many-{i},app-many-{i:04},container,S,1,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z\n"
            ));
        }
        // Unknown ids sorted among known ones, a padded known one, and a fixture's app.
        usage.push_str("u-many-x1,app-many-0000x,container,S,1,2026-10-01T00:00:00Z,\n");
        usage.push_str("u-many-x2,app-many-1201,container,S,1,2026-10-01T00:00:00Z,\n");
        usage.push_str("u-many-p, app-many-0777 ,container,S,1,2026-10-01T00:00:00Z,\n");
        usage.push_str("u-many-f,app-alice-web,container,S,1,2026-10-01T00:00:00Z,\n");
        let r = import_skipping(&app, ImportKind::Usage, "usage-many.csv", &usage).await;
        assert_eq!(
            rejected_lines(&r),
            vec![(15, "app_id".to_string()), (16, "app_id".to_string())],
            "{:#?}",
            r.rejected
        );
        assert_eq!(r.inserted, 15);
        assert_eq!(
            r.rejected[0].to_string(),
            "usage-many.csv:15: app_id: unknown app `app-many-0000x`"
        );
    }
);

both_stores!(
    unbillable_quantities_and_prices_are_refused_at_import_issue_25,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let before = app.dump().await;
        let header = "id,app_id,kind,item,quantity,started_at,ended_at\n";
        let text = format!(
            "{header}u-big,app-alice-web,container,S,9223372036854775807,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z\n\
             u-many,app-alice-web,container,S,10001,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z\n\
             u-old,app-alice-web,container,S,1,1969-12-31T00:00:00Z,2026-10-02T00:00:00Z\n"
        );
        let errors = rejected(
            app.import_csv(ImportKind::Usage, "usage.csv", &text)
                .await
                .unwrap_err(),
        );
        assert_has(
            &errors,
            "usage.csv:2: quantity: `9223372036854775807` is above the maximum of 10000",
        );
        assert_has(
            &errors,
            "usage.csv:3: quantity: `10001` is above the maximum",
        );
        assert_has(
            &errors,
            "usage.csv:4: started_at: `1969-12-31T00:00:00Z` is outside the years 2000 to 2999",
        );
        let catalog = "kind,item,hourly_price,monthly_cap,currency,effective_from\n\
                       container,XL,79228162514264337593543950335,,EUR,2024-01-01\n\
                       container,XXL,0.0000001,,EUR,2024-01-01\n\
                       container,XXXL,1,1000000.5,EUR,2024-01-01\n";
        let errors = rejected(
            app.import_csv(ImportKind::Catalog, "catalog.csv", catalog)
                .await
                .unwrap_err(),
        );
        assert_has(
            &errors,
            "catalog.csv:2: hourly_price: `79228162514264337593543950335` is above the maximum of 1000000 EUR",
        );
        assert_has(
            &errors,
            "catalog.csv:3: hourly_price: `0.0000001` has more than 6 decimal places",
        );
        assert_has(
            &errors,
            "catalog.csv:4: monthly_cap: `1000000.5` is above the maximum",
        );
        assert_eq!(app.dump().await, before, "nothing imported");
        // What the bounds accept is billed.
        let text = format!(
            "{header}u-max,app-alice-web,container,S,10000,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z\n"
        );
        app.import_csv(ImportKind::Usage, "usage.csv", &text)
            .await
            .unwrap();
        let r = app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        assert!(r.failures.is_empty(), "{:?}", r.failures);
    }
);

both_stores!(
    emails_line_breaks_and_lengths_are_checked_at_import,
    |app: TestApp| async move {
        let header =
            "id,email,name,company,address,country,vat_number,language,created_at,referred_by\n";
        let ok = "FR,,fr,2025-01-10T09:00:00Z,";
        let huge = "N".repeat(10_000_000);
        let text = format!(
            "{header}\
             a-1,a@@example.com,A,,1 rue X,{ok}\n\
             a-2,\"\"\"a,b\"\"@example.com\",A,,1 rue X,{ok}\n\
             a-3,x<y>@example.com,A,,1 rue X,{ok}\n\
             a-4,d@example.com,\"Alice\nMartin\",,1 rue X,{ok}\n\
             a-5,e@example.com,E,,\"1 rue X\r\n75002 Paris\",{ok}\n\
             a-6,f@example.com,{huge},,1 rue X,{ok}\n\
             a-7,g@example.com,G,,1 rue X,{ok}\n"
        );
        let err = app
            .import_csv(ImportKind::Accounts, "accounts.csv", &text)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "accounts.csv: 6 invalid record(s); nothing imported (use --skip-invalid to import the rest)"
        );
        let errors = rejected(err);
        assert_has(
            &errors,
            "accounts.csv:2: email: `a@@example.com` is not an email address",
        );
        assert_has(
            &errors,
            "accounts.csv:3: email: `\"a,b\"@example.com` is not an email address",
        );
        assert_has(
            &errors,
            "accounts.csv:4: email: `x<y>@example.com` is not an email address",
        );
        assert_has(
            &errors,
            "accounts.csv:5: name: `Alice\\nMartin` contains a line break (CR or LF)",
        );
        assert_has(
            &errors,
            "accounts.csv:7: address: `1 rue X\\r\\n75002 Paris` contains a line break",
        );
        assert_has(&errors, "accounts.csv:9: name: `NNNN");
        assert_has(
            &errors,
            "… (10000000 characters)` is longer than 200 characters",
        );
        for e in &errors {
            assert!(
                e.len() < 300,
                "a bad value is quoted in part: {} bytes",
                e.len()
            );
        }
        assert_eq!(app.count("accounts").await, 0);
    }
);

both_stores!(
    import_counts_records_not_errors_issue_25,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        // One record, two bad fields: one invalid record.
        let text = "id,app_id,kind,item,quantity,started_at,ended_at\n\
                    u-x,app-alice-web,container,S,-1,yesterday,\n\
                    u-y,app-alice-web,container,S,1,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z\n";
        let err = app
            .import_csv(ImportKind::Usage, "two.csv", text)
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with("two.csv: 1 invalid record(s);"),
            "{err}"
        );
        assert_eq!(rejected(err).len(), 2, "each bad field is still named");
        let r = import_skipping(&app, ImportKind::Usage, "two.csv", text).await;
        assert_eq!(
            (r.records, r.inserted, r.rejected_records, r.rejected.len()),
            (2, 1, 1, 2)
        );
    }
);

both_stores!(
    crlf_files_name_each_records_own_line_issue_19,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let text = "id,app_id,kind,item,quantity,started_at,ended_at\r\n\
                    u-ok,app-alice-web,container,S,1,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z\r\n\
                    u-bad,app-alice-web,container,S,-2,2026-10-01T00:00:00Z,\r\n";
        let errors = rejected(
            app.import_csv(ImportKind::Usage, "crlf.csv", text)
                .await
                .unwrap_err(),
        );
        assert_eq!(errors, vec!["crlf.csv:3: quantity: `-2` is negative"]);
    }
);

both_stores!(
    ndjson_objects_with_a_duplicate_key_are_refused,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let before = app.dump().await;
        let text = "{\"id\":\"u-dup\",\"app_id\":\"app-alice-web\",\"kind\":\"container\",\"item\":\"S\",\"quantity\":1,\"started_at\":\"2026-10-01T00:00:00Z\",\"quantity\":5}\n";
        let errors = rejected(
            import_ndjson(&app, ImportKind::Usage, "dup.ndjson", text)
                .await
                .unwrap_err(),
        );
        assert_eq!(errors, vec!["dup.ndjson:1: quantity: given twice"]);
        assert_eq!(app.dump().await, before);
    }
);

/// Tokens for the store-level fuzz: the fixtures' real ids (so that some records import and
/// re-imports conflict), separators, quotes, line breaks, huge numbers and long text.
fn fuzz_token() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        prop::sample::select(vec![
            "",
            ",",
            "\"",
            "\r\n",
            "\n",
            "{",
            "}",
            "null",
            "-1",
            "0",
            "3",
            "9223372036854775807",
            "79228162514264337593543950335",
            "0.0000001",
            "2026-10-01T00:00:00Z",
            "2026-10-02T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "2024-01-01",
            "container",
            "addon",
            "S",
            "EUR",
            "FR",
            "fr",
            "acc-fr-consumer",
            "acc-new",
            "app-alice-web",
            "app-new",
            "dom-bob-api",
            "u-a1",
            "a@example.com",
            "a@@example.com",
            "x.example.com",
            "é🙂",
        ])
        .prop_map(str::to_string),
        "[a-z0-9@.\\-]{0,10}",
        (1usize..400).prop_map(|n| "x".repeat(n)),
    ]
}

/// Each kind's columns and one valid record of it (after the fixtures).
fn fuzz_sample(kind: ImportKind) -> (Vec<&'static str>, Vec<&'static str>) {
    match kind {
        ImportKind::Accounts => (
            vec![
                "id",
                "email",
                "name",
                "company",
                "address",
                "country",
                "vat_number",
                "language",
                "created_at",
                "referred_by",
            ],
            vec![
                "acc-fz",
                "fz@example.com",
                "Fz Name",
                "",
                "1 rue X",
                "FR",
                "",
                "fr",
                "2025-01-01T00:00:00Z",
                "",
            ],
        ),
        ImportKind::Apps => (
            vec!["id", "name", "account_id"],
            vec!["app-fz", "Fz", "acc-fr-consumer"],
        ),
        ImportKind::Catalog => (
            vec![
                "kind",
                "item",
                "hourly_price",
                "monthly_cap",
                "currency",
                "effective_from",
            ],
            vec!["container", "FZ", "0.01", "", "EUR", "2024-01-01"],
        ),
        ImportKind::Usage => (
            vec![
                "id",
                "app_id",
                "kind",
                "item",
                "quantity",
                "started_at",
                "ended_at",
            ],
            vec![
                "u-fz",
                "app-alice-web",
                "container",
                "S",
                "1",
                "2026-10-01T00:00:00Z",
                "2026-10-02T00:00:00Z",
            ],
        ),
        ImportKind::Deployments => (
            vec!["id", "app_id", "git_ref", "created_at"],
            vec!["dep-fz", "app-alice-web", "main", "2026-10-01T00:00:00Z"],
        ),
        ImportKind::Aliases => (
            vec!["id", "account_id", "name"],
            vec!["al-fz", "acc-fr-consumer", "fz"],
        ),
        ImportKind::Domains => (
            vec!["id", "app_id", "name"],
            vec!["dom-fz", "app-alice-web", "fz.example.com"],
        ),
        ImportKind::Certificates => (
            vec!["id", "domain_id", "issuer", "expires_at"],
            vec!["cert-fz", "dom-alice-www", "R3", "2027-01-01T00:00:00Z"],
        ),
    }
}

/// A file of one kind: its header (or none), and records that are the kind's valid sample
/// with up to three fields replaced by fuzz tokens (a CSV token may add fields or lines).
fn fuzz_file() -> impl proptest::strategy::Strategy<Value = (usize, bool, bool, String)> {
    use proptest::prelude::*;
    let edits = prop::collection::vec((0usize..10, fuzz_token()), 0..4);
    let lines = prop::collection::vec(edits, 0..5);
    (
        0usize..8,
        prop::bool::weighted(0.9),
        any::<bool>(),
        any::<bool>(),
        lines,
    )
        .prop_map(|(k, header, ndjson, skip, lines)| {
            let (columns, sample) = fuzz_sample(FUZZ_KINDS[k]);
            let records: Vec<Vec<String>> = lines
                .into_iter()
                .map(|edits| {
                    let mut r: Vec<String> = sample.iter().map(|v| v.to_string()).collect();
                    for (i, token) in edits {
                        let i = i % r.len();
                        r[i] = token;
                    }
                    r
                })
                .collect();
            let text = if ndjson {
                records
                    .iter()
                    .map(|r| {
                        let members: Vec<String> = columns
                            .iter()
                            .zip(r)
                            .map(|(k, v)| format!("{k:?}:{}", serde_json::to_string(v).unwrap()))
                            .collect();
                        format!("{{{}}}\r\n", members.join(","))
                    })
                    .collect()
            } else {
                let mut text = if header {
                    columns.join(",")
                } else {
                    String::new()
                };
                for r in &records {
                    text.push('\n');
                    text.push_str(&r.join(","));
                }
                text
            };
            (k, ndjson, skip, text)
        })
}

const FUZZ_KINDS: [ImportKind; 8] = [
    ImportKind::Accounts,
    ImportKind::Apps,
    ImportKind::Catalog,
    ImportKind::Usage,
    ImportKind::Deployments,
    ImportKind::Aliases,
    ImportKind::Domains,
    ImportKind::Certificates,
];

/// Issue 25 "Done when": fuzzed files through the whole import (reader, validation, store) on
/// both stores, a bounded run: no panic, and every refusal is a rejection naming `file:line`
/// or a refused file (exit 2), never a store error.
#[test]
fn fuzzed_files_import_or_are_refused_naming_file_and_line_on_both_stores() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Runtime::new().unwrap();
    for store in [crate::common::Store::Sqlite, crate::common::Store::Postgres] {
        let app = rt.block_on(async {
            let app = TestApp::new(store).await;
            app.seed_fixtures().await;
            app.seed_platform_fixtures().await;
            app
        });
        let mut runner = TestRunner::new(Config {
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&fuzz_file(), |(k, ndjson, skip, text)| {
                let (file, format) = if ndjson {
                    ("fuzz.ndjson", Format::Ndjson)
                } else {
                    ("fuzz.csv", Format::Csv)
                };
                let lines = text.split('\n').count();
                let names_a_line = |e: &billrun::import::LineError| {
                    assert_eq!(e.file, file);
                    assert!((1..=lines).contains(&e.line), "{e} ({lines} lines)");
                    assert!(e.to_string().len() < 1500);
                };
                let r = rt.block_on(billrun::import::import_text(
                    app.db(),
                    FUZZ_KINDS[k],
                    file,
                    &text,
                    format,
                    skip,
                ));
                match r {
                    Ok(report) => report.rejected.iter().for_each(names_a_line),
                    Err(e) => {
                        if let Some(rej) = e.downcast_ref::<Rejected>() {
                            assert!(!skip && !rej.errors.is_empty());
                            rej.errors.iter().for_each(names_a_line);
                        } else if let Some(bad) = e.downcast_ref::<billrun::config::BadInput>() {
                            assert!(bad.0.starts_with(&format!("{file}:")), "{bad}");
                        } else {
                            panic!("{store:?}: not a refusal: {e:#}\n{text:?}");
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}

both_stores!(
    en_16931_bt_47_siren_and_bt_49_electronic_address_are_checked_stored_and_shown,
    |app: TestApp| async move {
        // Refused: a wrong Luhn key (INSEE's check), not 9 digits, a SIREN outside France or
        // on a consumer, a SIREN that is not the French VAT number's, an address without its
        // scheme (BR-63), a 0225 address that does not begin with the SIREN (BR-FR-21),
        // characters BR-FR-23 refuses, an unknown scheme.
        let text = "id,email,name,company,address,country,vat_number,language,created_at,referred_by,siren,electronic_address,electronic_address_scheme
acc-s1,s1@example.fr,S,S SARL,1 rue,FR,,fr,2025-01-01T00:00:00Z,,404833049,,
acc-s2,s2@example.fr,S,S SARL,1 rue,FR,,fr,2025-01-01T00:00:00Z,,40483304,,
acc-s3,s3@example.de,S,S GmbH,1 Str,DE,,en,2025-01-01T00:00:00Z,,404833048,,
acc-s4,s4@example.fr,S,,1 rue,FR,,fr,2025-01-01T00:00:00Z,,404833048,,
acc-s5,s5@example.fr,S,S SARL,1 rue,FR,FR83404833048,fr,2025-01-01T00:00:00Z,,120027016,,
acc-s6,s6@example.fr,S,S SARL,1 rue,FR,,fr,2025-01-01T00:00:00Z,,404833048,404833048,
acc-s7,s7@example.fr,S,S SARL,1 rue,FR,,fr,2025-01-01T00:00:00Z,,404833048,120027016,0225
acc-s8,s8@example.fr,S,S SARL,1 rue,FR,,fr,2025-01-01T00:00:00Z,,404833048,404 833 048,0009
acc-s9,s9@example.fr,S,S SARL,1 rue,FR,,fr,2025-01-01T00:00:00Z,,404833048,x@example.fr,EM
";
        let errors = rejected(
            app.import_csv(ImportKind::Accounts, "accounts-siren.csv", text)
                .await
                .unwrap_err(),
        );
        for needle in [
            "accounts-siren.csv:2: siren: `404833049` is not a SIREN: its check digit is wrong",
            "accounts-siren.csv:3: siren: a SIREN has 9 digits",
            "accounts-siren.csv:4: siren: a SIREN identifies a French company; this account's country is `DE`",
            "accounts-siren.csv:5: siren: a SIREN identifies a company",
            "accounts-siren.csv:6: siren: `120027016` is not the SIREN of the VAT number `FR83404833048`",
            "accounts-siren.csv:7: electronic_address_scheme: is empty",
            "accounts-siren.csv:8: electronic_address: electronic address `120027016` (scheme 0225) must begin with the SIREN `404833048`",
            "accounts-siren.csv:9: electronic_address: electronic address `404 833 048`: letters, digits",
            "accounts-siren.csv:10: electronic_address: electronic address scheme `EM`",
        ] {
            assert_has(&errors, needle);
        }
        assert_eq!(errors.len(), 9, "{errors:#?}");

        // Accepted, stored without spaces, and shown by `account show` (text and JSON).
        app.import_csv(
            ImportKind::Accounts,
            "accounts-siren-ok.csv",
            "id,email,name,company,address,country,vat_number,language,created_at,referred_by,siren,electronic_address,electronic_address_scheme
acc-siren,siren@example.fr,Sophie Siren,Siren SARL,\"5 quai Kléber, 67000 Strasbourg\",FR,FR83404833048,fr,2025-01-01T00:00:00Z,,404 833 048,404833048_FACT,0225
",
        )
        .await
        .unwrap();
        let row = billrun::store::accounts::get_account(app.db(), "acc-siren")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.siren.as_deref(), Some("404833048"));
        assert_eq!(row.electronic_address.as_deref(), Some("404833048_FACT"));
        assert_eq!(row.electronic_address_scheme.as_deref(), Some("0225"));
        let out = app.cli(&["account", "show", "acc-siren"]);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("SIREN 404833048, e-invoice address 404833048_FACT (scheme 0225)"),
            "{text}"
        );
        let out = app.cli(&["account", "show", "acc-siren", "--format", "json"]);
        assert!(out.status.success(), "{out:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["siren"], "404833048");
        assert_eq!(json["electronic_address"]["scheme"], "0225");
        assert_eq!(json["electronic_address"]["id"], "404833048_FACT");
    }
);
