//! `billrun report oss|vat` and `billrun export fec` (issue 24 §2, §3), on both stores, through
//! the binary: the OSS and VAT returns against a hand-computed quarter, the FEC's layout and
//! bookkeeping against the store.

use std::collections::{BTreeMap, HashMap};

use crate::common::TestApp;
use billrun::core::fec::COLUMNS;
use billrun::import::ImportKind;
use billrun::jobs::JobName;
use serde_json::{Value, json};

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Accounts in several member states, each with usage in chosen months of 2025, on the
/// uncapped `L` container (0.04 EUR an hour, so amounts are easy to compute by hand).
async fn seed_quarter(app: &TestApp) {
    app.import_fixture(ImportKind::Catalog, "catalog.csv").await;
    app.import_csv(
        ImportKind::Accounts,
        "accounts.csv",
        "id,email,name,company,address,country,vat_number,language,created_at,referred_by
acc-ee,ee@example.ee,Kadri Tamm,,Tallinn,EE,,en,2025-01-01T00:00:00Z,
acc-de,de@example.de,Dieter Braun,,Berlin,DE,,en,2025-01-01T00:00:00Z,
acc-at,at@example.at,Anna Huber,,Wien,AT,,en,2025-01-01T00:00:00Z,
acc-fi,fi@example.fi,Eeva Virtanen,,Helsinki,FI,,en,2025-01-01T00:00:00Z,
acc-fr,fr@example.fr,Alice Martin,,Paris,FR,,fr,2025-01-01T00:00:00Z,
acc-deb,deb@example.de,Clara Schmidt,Schmidt GmbH,Berlin,DE,DE123456788,en,2025-01-01T00:00:00Z,
acc-us,us@example.com,Frank Miller,Miller Inc,San Francisco,US,,en,2025-01-01T00:00:00Z,
",
    )
    .await
    .unwrap();
    app.import_csv(
        ImportKind::Apps,
        "apps.csv",
        "id,name,account_id
app-ee,ee,acc-ee
app-de,de,acc-de
app-at,at,acc-at
app-fi,fi,acc-fi
app-fr,fr,acc-fr
app-deb,deb,acc-deb
app-us,us,acc-us
",
    )
    .await
    .unwrap();
    // Hours × 0.04 EUR: 100 h = 4.00.
    app.import_csv(
        ImportKind::Usage,
        "usage.csv",
        "id,app_id,kind,item,quantity,started_at,ended_at
u-at-may,app-at,container,L,1,2025-05-01T00:00:00Z,2025-05-02T01:00:00Z
u-ee-jun,app-ee,container,L,1,2025-06-01T00:00:00Z,2025-06-05T04:00:00Z
u-ee-jul,app-ee,container,L,1,2025-07-01T00:00:00Z,2025-07-03T02:00:00Z
u-de-jul,app-de,container,L,10,2025-07-01T00:00:00Z,2025-07-05T04:00:00Z
u-fr-jul,app-fr,container,L,1,2025-07-01T00:00:00Z,2025-07-11T10:00:00Z
u-deb-jul,app-deb,container,L,5,2025-07-01T00:00:00Z,2025-07-05T04:00:00Z
u-us-jul,app-us,container,L,1,2025-07-01T00:00:00Z,2025-07-06T05:00:00Z
u-at-aug,app-at,container,L,1,2025-08-01T00:00:00Z,2025-08-02T01:00:00Z
u-fi-aug,app-fi,container,L,1,2025-08-01T00:00:00Z,2025-08-14T21:00:00Z
u-de-sep,app-de,container,L,1,2025-09-01T00:00:00Z,2025-09-01T10:00:00Z
",
    )
    .await
    .unwrap();
    // The DE business's number is confirmed by VIES before July's invoice (reverse charge
    // needs it: article 18 of Regulation (EU) 282/2011), as the daily vat-check would have.
    let mut tx = app.db().begin().await.unwrap();
    billrun::store::vies::record(
        &mut tx,
        &billrun::store::vies::NewViesCheck {
            account_id: "acc-deb",
            vat_number: "DE123456788",
            checked_at: crate::common::t("2025-07-25T00:00:00Z"),
            outcome: billrun::store::vies::ViesOutcome::Valid,
            request_date: None,
            consultation_number: Some("WAPIQUARTER"),
            name: Some("Schmidt GmbH"),
            address: None,
            detail: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Invoices issued on 1 June (May), 1 July (June), 1 August (July), 1 September (August)
    // and 1 October (September).
    for now in [
        "2025-06-01T06:00:00Z",
        "2025-07-01T06:00:00Z",
        "2025-08-01T06:00:00Z",
        "2025-09-01T06:00:00Z",
        "2025-10-01T06:00:00Z",
    ] {
        let report = app.run(JobName::Invoice, now).await;
        assert!(report.failures.is_empty(), "{now}: {:?}", report.failures);
    }
}

// The quarter 2025-Q3 holds the invoices issued on 1 July, 1 August and 1 September (article 369
// sexies of Directive 2006/112/EC: the supplies whose VAT became chargeable in the quarter; the
// seller pays VAT on invoicing, article 269-2 c of the CGI). By hand:
//   EE, June, 22% (Estonia's rate until 30 June 2025): 100 h = 4.00, VAT 0.88
//   EE, July, 24% (from 1 July 2025):                    50 h = 2.00, VAT 0.48
//   DE, July, 19%: 10 × 100 h = 40.00, VAT 7.60
//   AT, August, 20%: 25 h = 1.00, VAT 0.20 (AT's May invoice, issued 1 June, is Q2's)
//   FI, August, 25.5%: 333 h = 13.32, VAT 3.3966 → 3.40
//   DE's September invoice is issued on 1 October: Q4's.
// Not in the OSS return: FR (domestic), DE business (reverse charge), US (outside the EU).
both_stores!(
    oss_art_369_sexies_directive_2006_112_and_ca3_against_a_hand_computed_quarter,
    |app: TestApp| async move {
        seed_quarter(&app).await;
        let out = ok(&app.cli(&["report", "oss", "--quarter", "2025-Q3", "--format", "json"]));
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            got,
            json!({
                "quarter": "2025-Q3",
                "countries": [
                    {"country": "AT", "rate": "20", "taxable": "1.00", "vat": "0.20"},
                    {"country": "DE", "rate": "19", "taxable": "40.00", "vat": "7.60"},
                    {"country": "EE", "rate": "22", "taxable": "4.00", "vat": "0.88"},
                    {"country": "EE", "rate": "24", "taxable": "2.00", "vat": "0.48"},
                    {"country": "FI", "rate": "25.5", "taxable": "13.32", "vat": "3.40"},
                ],
                "taxable": "60.32",
                "vat": "12.56",
            })
        );

        // Reconciles with the invoices to the cent: Σ of the EU consumers' invoices issued in
        // the quarter.
        let (taxable, vat): (i64, i64) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT CAST(SUM(subtotal_minor - discount_minor) AS BIGINT), CAST(SUM(tax_minor) AS BIGINT) FROM invoices
             WHERE tax_case = 'eu_consumer' AND issued_at >= $1 AND issued_at < $2")
            .bind(crate::common::t("2025-07-01T00:00:00Z")).bind(crate::common::t("2025-10-01T00:00:00Z"))
            .fetch_one(p).await.unwrap());
        assert_eq!((taxable, vat), (6032, 1256));

        let csv = ok(&app.cli(&["report", "oss", "--quarter", "2025-Q3", "--format", "csv"]));
        assert_eq!(
            csv,
            "quarter,country,rate,taxable,vat\n\
             2025-Q3,AT,20,1.00,0.20\n\
             2025-Q3,DE,19,40.00,7.60\n\
             2025-Q3,EE,22,4.00,0.88\n\
             2025-Q3,EE,24,2.00,0.48\n\
             2025-Q3,FI,25.5,13.32,3.40\n"
        );
        let table = ok(&app.cli(&["report", "oss", "--quarter", "2025-Q3"]));
        assert!(table.contains("article 369 sexies"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("FI") && l.contains("25.5%") && l.ends_with("3.40")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("Total") && l.ends_with("12.56")),
            "{table}"
        );

        // The CA3 of August 2025: the invoices issued on 1 August (July's usage).
        //   FR 20%: 250 h = 10.00, VAT 2.00 (lines A1 and 08; line 16 = 2.00)
        //   EU consumers: EE 2.00 + DE 40.00 = 42.00, VAT 0.48 + 7.60 = 8.08 (E2; OSS)
        //   reverse charge: DE business 5 × 100 h = 20.00 (E2)
        //   outside the EU: US 125 h = 5.00 (E2)
        let out = ok(&app.cli(&["report", "vat", "--period", "2025-08", "--format", "json"]));
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            got,
            json!({
                "period": "2025-08",
                "domestic": [{"rate": "20", "taxable": "10.00", "vat": "2.00"}],
                "eu_consumers": {"taxable": "42.00", "vat": "8.08"},
                "eu_reverse_charge": {"taxable": "20.00"},
                "outside_eu": {"taxable": "5.00"},
                "vat_collected": "2.00",
            })
        );
        // A month with nothing issued: zeros, not an error.
        let out = ok(&app.cli(&["report", "vat", "--period", "2025-11", "--format", "json"]));
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["domestic"], json!([]));
        assert_eq!(got["vat_collected"], "0.00");
        let table = ok(&app.cli(&["report", "vat", "--period", "2025-08"]));
        assert!(table.contains("3310-CA3"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("VAT collected (line 16)") && l.ends_with("2.00")),
            "{table}"
        );

        // A bad quarter is bad input (exit 2).
        let bad = app.cli(&["report", "oss", "--quarter", "2025-Q5"]);
        assert_eq!(bad.status.code(), Some(2));
    }
);

/// A year of billing with every kind of accounting event: card, SEPA, declined card, prepaid
/// credit bought and used (wholly and in part), a referral discount, an account paying nothing.
async fn seed_year(app: &TestApp) {
    app.seed_fixtures().await;
    app.import_csv(
        ImportKind::Accounts,
        "accounts.csv",
        "id,email,name,company,address,country,vat_number,language,created_at,referred_by
acc-nl-ref,nl@example.nl,Sanne de Vries,,Amsterdam,NL,,en,2026-06-01T00:00:00Z,acc-fr-consumer
",
    )
    .await
    .unwrap();
    app.import_csv(
        ImportKind::Apps,
        "apps.csv",
        "id,name,account_id\napp-nl,nl,acc-nl-ref\n",
    )
    .await
    .unwrap();
    app.import_csv(
        ImportKind::Usage,
        "usage.csv",
        "id,app_id,kind,item,quantity,started_at,ended_at
u-nl-oct,app-nl,container,L,1,2026-10-01T00:00:00Z,2026-10-05T04:00:00Z
u-a-nov,app-alice-web,container,L,1,2026-11-02T00:00:00Z,2026-11-12T00:00:00Z
",
    )
    .await
    .unwrap();
    app.set_pm(
        "acc-fr-consumer",
        "card",
        "pm_card_visa",
        "2026-09-01T00:00:00Z",
    )
    .await;
    app.set_pm("acc-nl-ref", "card", "pm_card_visa", "2026-09-01T00:00:00Z")
        .await;
    app.set_pm(
        "acc-fr-business",
        "sepa_debit",
        "pm_sepa_debit_ok",
        "2026-09-01T00:00:00Z",
    )
    .await;
    app.set_pm(
        "acc-de-business",
        "card",
        "pm_card_visa",
        "2026-09-01T00:00:00Z",
    )
    .await;
    app.set_pm(
        "acc-fi-consumer",
        "card",
        "pm_card_visa_chargeDeclined",
        "2026-09-01T00:00:00Z",
    )
    .await;
    // Clara pays in part with credit, Dieter wholly; Frank has no payment method.
    assert!(
        app.add_credit(
            "acc-de-business",
            500,
            "PAYPAL-CLARA",
            "2026-09-10T10:00:00Z"
        )
        .await
    );
    assert!(
        app.add_credit(
            "acc-de-consumer",
            10_000,
            "PAYPAL-DIETER",
            "2026-09-12T10:00:00Z"
        )
        .await
    );
    for (job, now) in [
        (JobName::Invoice, "2026-10-01T06:00:00Z"),
        (JobName::Collect, "2026-10-01T07:00:00Z"),
        (JobName::Collect, "2026-10-04T07:00:00Z"),
        (JobName::Invoice, "2026-11-01T06:00:00Z"),
        (JobName::Collect, "2026-11-01T07:00:00Z"),
        (JobName::Collect, "2026-11-04T07:00:00Z"),
        (JobName::Invoice, "2026-12-01T06:00:00Z"),
        (JobName::Collect, "2026-12-01T07:00:00Z"),
    ] {
        let r = app.run(job, now).await;
        assert!(r.failures.is_empty(), "{job:?} {now}: {:?}", r.failures);
    }
}

fn cents(amount: &str) -> i64 {
    let (units, cents) = amount.split_once(',').expect("a comma decimal");
    assert_eq!(cents.len(), 2, "{amount}");
    units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

/// Exports the year's FEC (and its CSV) and checks it against the store: the layout of article
/// A47 A-1 of the LPF, every entry balanced, gapless numbering in date order, 411 per account =
/// what the account owes, 4191 per account = its prepaid credit left, revenue, discounts and VAT
/// = the invoices'. Returns Σ(debit − credit) per account number.
async fn check_fec(app: &TestApp) -> HashMap<String, i64> {
    let dir = app.dir.path().join("fec");
    let out = ok(&app.cli(&[
        "export",
        "fec",
        "--year",
        "2026",
        "-o",
        dir.to_str().unwrap(),
    ]));
    // `<SIREN>FEC<closing date>.txt`, the SIREN of jobs/invoice.toml's seller.
    let path = dir.join("812345674FEC20261231.txt");
    assert!(out.starts_with(&path.display().to_string()), "{out}");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    // The header: the 18 columns of article A47 A-1, in their order, tab-separated.
    assert_eq!(
        lines.next().unwrap(),
        "JournalCode\tJournalLib\tEcritureNum\tEcritureDate\tCompteNum\tCompteLib\tCompAuxNum\tCompAuxLib\tPieceRef\tPieceDate\tEcritureLib\tDebit\tCredit\tEcritureLet\tDateLet\tValidDate\tMontantdevise\tIdevise"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert!(rows.len() > 20, "{text}");
    let col = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
    let (num, date, compte, aux, debit, credit, let_, date_let, valid) = (
        col("EcritureNum"),
        col("EcritureDate"),
        col("CompteNum"),
        col("CompAuxNum"),
        col("Debit"),
        col("Credit"),
        col("EcritureLet"),
        col("DateLet"),
        col("ValidDate"),
    );
    let mut by_entry: BTreeMap<u64, (i64, i64)> = BTreeMap::new();
    let mut last = (0u64, String::new());
    for r in &rows {
        assert_eq!(r.len(), 18, "{r:?}");
        let n: u64 = r[num].parse().unwrap();
        // Numbered without gaps, in date order.
        assert!(n == last.0 || n == last.0 + 1, "{r:?} after {last:?}");
        assert!(r[date] >= last.1.as_str(), "{r:?} after {last:?}");
        assert!(r[date].len() == 8 && r[date].starts_with("2026"), "{r:?}");
        assert!(!r[valid].is_empty(), "{r:?}");
        last = (n, r[date].to_string());
        let e = by_entry.entry(n).or_default();
        e.0 += cents(r[debit]);
        e.1 += cents(r[credit]);
    }
    assert_eq!(*by_entry.keys().next().unwrap(), 1);
    // Every entry balanced: Σ debit = Σ credit per EcritureNum.
    for (n, (d, c)) in &by_entry {
        assert_eq!(d, c, "entry {n}");
    }

    // Σ per account number (debit − credit), and per auxiliary account of 411 and 4191.
    let mut by_account: HashMap<String, i64> = HashMap::new();
    let mut customers: BTreeMap<String, i64> = BTreeMap::new();
    let mut advances: BTreeMap<String, i64> = BTreeMap::new();
    let mut letters: BTreeMap<String, i64> = BTreeMap::new();
    for r in &rows {
        let net = cents(r[debit]) - cents(r[credit]);
        *by_account.entry(r[compte].to_string()).or_default() += net;
        if r[compte] == "411000" {
            *customers.entry(r[aux].to_string()).or_default() += net;
            if !r[let_].is_empty() {
                assert!(!r[date_let].is_empty(), "{r:?}");
                *letters.entry(r[let_].to_string()).or_default() += net;
            }
        } else {
            assert!(r[let_].is_empty(), "{r:?}");
        }
        if r[compte] == "419100" {
            *advances.entry(r[aux].to_string()).or_default() += net;
        }
    }
    // A lettered group nets to zero, and some invoices were lettered.
    assert!(!letters.is_empty());
    for (code, net) in &letters {
        assert_eq!(*net, 0, "letter {code}");
    }

    // 411 per account = what the account owes (amounts due, and balances waiting for its
    // next invoice).
    let owed: Vec<(String, i64)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT a.id, CAST(COALESCE((SELECT SUM(i.amount_due_minor) FROM invoices i WHERE i.account_id = a.id), 0)
                + COALESCE((SELECT SUM(t.amount_minor) FROM balance_transfers t
                            WHERE t.account_id = a.id AND t.to_invoice_id IS NULL AND t.waived_at IS NULL), 0) AS BIGINT)
             FROM accounts a ORDER BY a.id")
            .fetch_all(p).await.unwrap());
    for (account, due) in &owed {
        assert_eq!(
            customers.get(account).copied().unwrap_or(0),
            *due,
            "411 of {account}"
        );
    }
    assert!(
        owed.iter().any(|(_, d)| *d > 0),
        "someone still owes: {owed:?}"
    );
    // 4191 per account = the prepaid credit left (a credit balance).
    let credit: Vec<(String, i64)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT id, credit_balance_minor FROM accounts ORDER BY id").fetch_all(p).await.unwrap());
    for (account, left) in &credit {
        assert_eq!(
            -advances.get(account).copied().unwrap_or(0),
            *left,
            "4191 of {account}"
        );
    }

    // Revenue, discounts and VAT equal the invoices'.
    let (subtotal, discount, tax, domestic_tax): (i64, i64, i64, i64) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT CAST(SUM(subtotal_minor) AS BIGINT), CAST(SUM(discount_minor) AS BIGINT), CAST(SUM(tax_minor) AS BIGINT),
                    CAST(SUM(CASE WHEN tax_case = 'domestic' THEN tax_minor ELSE 0 END) AS BIGINT) FROM invoices")
            .fetch_one(p).await.unwrap());
    let sum_of = |prefix: &str| -> i64 {
        by_account
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| *v)
            .sum()
    };
    assert_eq!(-sum_of("706"), subtotal);
    assert_eq!(sum_of("709"), discount);
    assert_eq!(-sum_of("4457"), tax);
    assert_eq!(
        -by_account.get("445710").copied().unwrap_or(0),
        domestic_tax
    );
    // What card and SEPA brought in.
    let (paid,): (i64,) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT CAST(SUM(amount_minor) AS BIGINT) FROM payment_attempts WHERE outcome = 'succeeded'")
            .fetch_one(p).await.unwrap());
    assert_eq!(by_account.get("511100").copied().unwrap_or(0), paid);

    // The CSV of the same entries.
    let out = ok(&app.cli(&[
        "export",
        "fec",
        "--year",
        "2026",
        "-o",
        dir.to_str().unwrap(),
        "--format",
        "csv",
    ]));
    assert!(out.contains("812345674FEC20261231.csv"), "{out}");
    let csv_text = std::fs::read_to_string(dir.join("812345674FEC20261231.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        COLUMNS
    );
    let csv_rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let txt_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(csv_rows, txt_rows);

    // A year with nothing: the header alone.
    let out = ok(&app.cli(&[
        "export",
        "fec",
        "--year",
        "2024",
        "-o",
        dir.to_str().unwrap(),
    ]));
    assert!(out.contains("0 entries"), "{out}");
    let empty = std::fs::read_to_string(dir.join("812345674FEC20241231.txt")).unwrap();
    assert_eq!(empty.lines().count(), 1);
    by_account
}

both_stores!(
    fec_article_a47_a_1_lpf_columns_balance_numbering_and_totals,
    |app: TestApp| async move {
        seed_year(&app).await;
        let by_account = check_fec(&app).await;
        // The referral discount used in December is on 709.
        assert!(by_account["709000"] > 0, "{by_account:?}");
        // Card and SEPA, prepaid credit bought and used: every journal has entries.
        for account in [
            "511100", "467100", "419100", "706100", "706200", "706300", "706400",
        ] {
            assert!(
                by_account.contains_key(account),
                "{account}: {by_account:?}"
            );
        }
    }
);

both_stores!(
    fec_article_a47_a_1_lpf_of_the_demo_year,
    |app: TestApp| async move {
        ok(&app.cli(&[
            "demo",
            "--seed",
            "7",
            "--accounts",
            "80",
            "--database-url",
            &app.url,
        ]));
        let by_account = check_fec(&app).await;
        assert!(
            by_account["706100"] < 0 && by_account["445720"] < 0,
            "{by_account:?}"
        );
    }
);

both_stores!(
    fec_article_a47_a_1_lpf_chart_of_accounts_from_the_jobs_dir_or_named_in_errors,
    |app: TestApp| async move {
        seed_year(&app).await;
        // A jobs directory with every job's file and an edited accounting.toml.
        let jobs = app.dir.path().join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        let repo_jobs = crate::common::repo_root().join("jobs");
        for f in std::fs::read_dir(&repo_jobs).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, jobs.join(f.file_name().unwrap())).unwrap();
        }
        let chart = std::fs::read_to_string(jobs.join("accounting.toml"))
            .unwrap()
            .replace("\"411000\"", "\"411100\"");
        std::fs::write(jobs.join("accounting.toml"), chart).unwrap();
        let dir = app.dir.path().join("fec");
        let jobs_arg = jobs.to_str().unwrap();
        let out = ok(&app.cli(&[
            "export",
            "fec",
            "--year",
            "2026",
            "-o",
            dir.to_str().unwrap(),
            "--jobs-dir",
            jobs_arg,
        ]));
        assert!(out.contains("accounting.toml"), "{out}");
        let text = std::fs::read_to_string(dir.join("812345674FEC20261231.txt")).unwrap();
        assert!(text.contains("\t411100\t"));
        assert!(!text.contains("\t411000\t"));

        // A jobs directory without one: the built-in chart (it is not a job's file).
        std::fs::remove_file(jobs.join("accounting.toml")).unwrap();
        let out = ok(&app.cli(&[
            "export",
            "fec",
            "--year",
            "2026",
            "-o",
            dir.to_str().unwrap(),
            "--jobs-dir",
            jobs_arg,
        ]));
        assert!(out.contains("accounting.toml (built-in)"), "{out}");

        // A bad chart: exit 2, naming the file and line.
        let bad = app.dir.path().join("bad.toml");
        std::fs::write(&bad, "[journals]\nsales = 3\n").unwrap();
        let out = app.cli(&[
            "export",
            "fec",
            "--year",
            "2026",
            "-o",
            dir.to_str().unwrap(),
            "--accounting",
            bad.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{}:2", bad.display())), "{err}");
    }
);
