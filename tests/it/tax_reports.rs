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
u-fr-aug,app-fr,container,L,1,2025-08-01T00:00:00Z,2025-08-06T05:00:00Z
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
        // No credit note: nothing credited, no correction; what is declared is what was
        // invoiced.
        let row = |country: &str, rate: &str, taxable: &str, vat: &str| {
            json!({"country": country, "rate": rate,
                   "invoiced_taxable": taxable, "invoiced_vat": vat,
                   "credited_taxable": "0.00", "credited_vat": "0.00",
                   "taxable": taxable, "vat": vat})
        };
        assert_eq!(
            got,
            json!({
                "quarter": "2025-Q3",
                "countries": [
                    row("AT", "20", "1.00", "0.20"),
                    row("DE", "19", "40.00", "7.60"),
                    row("EE", "22", "4.00", "0.88"),
                    row("EE", "24", "2.00", "0.48"),
                    row("FI", "25.5", "13.32", "3.40"),
                ],
                "invoiced_taxable": "60.32",
                "invoiced_vat": "12.56",
                "credited_taxable": "0.00",
                "credited_vat": "0.00",
                "taxable": "60.32",
                "vat": "12.56",
                "corrections": [],
                "corrections_taxable": "0.00",
                "corrections_vat": "0.00",
                "by_country": [
                    {"country": "AT", "vat": "0.20"},
                    {"country": "DE", "vat": "7.60"},
                    {"country": "EE", "vat": "1.36"},
                    {"country": "FI", "vat": "3.40"},
                ],
                "vat_due": "12.56",
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
            "quarter,country,rate,taxable,vat,invoiced_taxable,invoiced_vat,credited_taxable,credited_vat,corrects_quarter\n\
             2025-Q3,AT,20,1.00,0.20,1.00,0.20,0.00,0.00,\n\
             2025-Q3,DE,19,40.00,7.60,40.00,7.60,0.00,0.00,\n\
             2025-Q3,EE,22,4.00,0.88,4.00,0.88,0.00,0.00,\n\
             2025-Q3,EE,24,2.00,0.48,2.00,0.48,0.00,0.00,\n\
             2025-Q3,FI,25.5,13.32,3.40,13.32,3.40,0.00,0.00,\n"
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
                "domestic": [{"rate": "20",
                    "invoiced_taxable": "10.00", "invoiced_vat": "2.00",
                    "credited_taxable": "0.00", "credited_vat": "0.00",
                    "taxable": "10.00", "vat": "2.00"}],
                "eu_consumers": {
                    "invoiced_taxable": "42.00", "invoiced_vat": "8.08",
                    "credited_taxable": "0.00", "credited_vat": "0.00",
                    "taxable": "42.00", "vat": "8.08"},
                "eu_reverse_charge": {"invoiced_taxable": "20.00", "credited_taxable": "0.00", "taxable": "20.00"},
                "outside_eu": {"invoiced_taxable": "5.00", "credited_taxable": "0.00", "taxable": "5.00"},
                "vat_invoiced": "2.00",
                "vat_credited": "0.00",
                "vat_collected": "2.00",
                "credit_notes": [],
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

/// Issues a credit note through the CLI (`billrun invoices credit-note`), as an operator does;
/// returns its JSON.
fn credit_note(app: &TestApp, invoice: &str, what: &[&str], refund: &str, now: &str) -> Value {
    let mut args = vec![
        "invoices",
        "credit-note",
        invoice,
        "--reason",
        "Incident de plateforme",
        "--refund",
        refund,
        "--now",
        now,
        "--format",
        "json",
    ];
    args.extend_from_slice(what);
    serde_json::from_str(&ok(&app.cli(&args))).unwrap()
}

fn json_of(app: &TestApp, args: &[&str]) -> Value {
    serde_json::from_str(&ok(&app.cli(args))).unwrap()
}

fn minor(v: &Value) -> i64 {
    billrun::core::money::parse_major(v.as_str().unwrap_or_else(|| panic!("{v}"))).unwrap()
}

// Article 272-1 of the CGI: the VAT of a sale cancelled or reduced is recovered by a credit
// note, in the return of the month the credit note is issued (whatever the invoice's month),
// in the box of the invoice's own VAT case.
both_stores!(
    vat_return_deducts_credit_notes_cgi_272_1,
    |app: TestApp| async move {
        seed_quarter(&app).await;
        let fr_july = app.invoice("acc-fr", "2025-07").await.number.unwrap();
        let fr_aug = app.invoice("acc-fr", "2025-08").await.number.unwrap();
        let deb_july = app.invoice("acc-deb", "2025-07").await.number.unwrap();
        let before_oct = json_of(
            &app,
            &["report", "vat", "--period", "2025-10", "--format", "json"],
        );
        let before_sep = json_of(
            &app,
            &["report", "vat", "--period", "2025-09", "--format", "json"],
        );

        // A full credit note in August on the invoice issued on 1 August: August's domestic
        // VAT is back to zero, the invoice still shown as invoiced and as credited.
        let full = credit_note(&app, &fr_july, &["--full"], "auto", "2025-08-20T10:00:00Z");
        assert_eq!(full["total"], "12.00");
        // A part of the DE business's reverse-charge invoice: its own box (E2), no VAT.
        let rc = credit_note(
            &app,
            &deb_july,
            &["--amount", "5.00"],
            "auto",
            "2025-08-21T10:00:00Z",
        );
        assert_eq!(rc["tax"], "0.00");
        let aug = json_of(
            &app,
            &["report", "vat", "--period", "2025-08", "--format", "json"],
        );
        assert_eq!(
            aug["domestic"],
            json!([{"rate": "20",
                "invoiced_taxable": "10.00", "invoiced_vat": "2.00",
                "credited_taxable": "10.00", "credited_vat": "2.00",
                "taxable": "0.00", "vat": "0.00"}])
        );
        assert_eq!(
            (
                &aug["vat_invoiced"],
                &aug["vat_credited"],
                &aug["vat_collected"]
            ),
            (&json!("2.00"), &json!("2.00"), &json!("0.00"))
        );
        assert_eq!(
            aug["eu_reverse_charge"],
            json!({"invoiced_taxable": "20.00", "credited_taxable": "5.00", "taxable": "15.00"})
        );
        // The EU consumers' and outside-EU boxes had no credit note: unchanged.
        assert_eq!(aug["eu_consumers"]["taxable"], "42.00");
        assert_eq!(aug["outside_eu"]["credited_taxable"], "0.00");
        // The trace: each credit note of the month, its invoice and case.
        assert_eq!(
            aug["credit_notes"],
            json!([
                {"number": "AV-2025-000001", "invoice": fr_july, "case": "domestic", "country": "FR",
                 "rate": "20", "taxable": "10.00", "vat": "2.00"},
                {"number": "AV-2025-000002", "invoice": deb_july, "case": "reverse_charge", "country": "DE",
                 "rate": "0", "taxable": "5.00", "vat": "0.00"},
            ])
        );
        let table = ok(&app.cli(&["report", "vat", "--period", "2025-08"]));
        assert!(table.contains("article 272-1"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("Domestic sales at 20% (A1, line 08)")
                    && l.split_whitespace().rev().take(3).collect::<Vec<_>>()
                        == ["0.00", "2.00", "2.00"]),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("AV-2025-000001") && l.contains(&fr_july)),
            "{table}"
        );

        // A partial credit note in October on the invoice issued on 1 September: October's
        // VAT falls by exactly the credit note's VAT; September's return does not change.
        let part = credit_note(
            &app,
            &fr_aug,
            &["--amount", "2.00"],
            "auto",
            "2025-10-10T10:00:00Z",
        );
        assert_eq!(part["tax"], "0.40");
        let oct = json_of(
            &app,
            &["report", "vat", "--period", "2025-10", "--format", "json"],
        );
        assert_eq!(
            minor(&before_oct["vat_collected"]) - minor(&oct["vat_collected"]),
            minor(&part["tax"])
        );
        assert_eq!(oct["vat_credited"], "0.40");
        assert_eq!(
            oct["domestic"],
            json!([{"rate": "20",
                "invoiced_taxable": "0.00", "invoiced_vat": "0.00",
                "credited_taxable": "2.00", "credited_vat": "0.40",
                "taxable": "-2.00", "vat": "-0.40"}])
        );
        let sep = json_of(
            &app,
            &["report", "vat", "--period", "2025-09", "--format", "json"],
        );
        assert_eq!(sep, before_sep);
        assert_eq!(sep["vat_collected"], "1.00");
    }
);

// The OSS return (article 369 sexies of Directive 2006/112/EC): a credit note of the quarter on
// the quarter's own invoice lowers its row; one on an earlier quarter's invoice is a correction
// of that earlier return, declared in this one naming the period (article 61 of Regulation
// (EU) 282/2011, article 369k of the Directive), not in this quarter's rows.
both_stores!(
    oss_return_corrections_name_the_original_quarter_reg_282_2011_art_61,
    |app: TestApp| async move {
        seed_quarter(&app).await;
        let q3_before = json_of(
            &app,
            &["report", "oss", "--quarter", "2025-Q3", "--format", "json"],
        );
        // DE's July invoice (issued 1 August: Q3, 40.00 + 7.60) and September invoice (issued
        // 1 October: Q4, 10 h = 0.40 + 0.08).
        let de_july = app.invoice("acc-de", "2025-07").await.number.unwrap();
        let de_sep = app.invoice("acc-de", "2025-09").await.number.unwrap();
        let earlier = credit_note(
            &app,
            &de_july,
            &["--amount", "10.00"],
            "auto",
            "2025-10-15T10:00:00Z",
        );
        assert_eq!(earlier["tax"], "1.90");
        credit_note(&app, &de_sep, &["--full"], "auto", "2025-10-16T10:00:00Z");

        let q4 = json_of(
            &app,
            &["report", "oss", "--quarter", "2025-Q4", "--format", "json"],
        );
        assert_eq!(
            q4["countries"],
            json!([{"country": "DE", "rate": "19",
                "invoiced_taxable": "0.40", "invoiced_vat": "0.08",
                "credited_taxable": "0.40", "credited_vat": "0.08",
                "taxable": "0.00", "vat": "0.00"}])
        );
        assert_eq!(
            q4["corrections"],
            json!([{"country": "DE", "period": "2025-Q3", "taxable": "-10.00", "vat": "-1.90",
                    "credit_notes": ["AV-2025-000001"]}])
        );
        assert_eq!(q4["vat"], "0.00");
        assert_eq!(q4["corrections_vat"], "-1.90");
        // Germany's total on this return is negative: representable, not clamped.
        assert_eq!(q4["by_country"], json!([{"country": "DE", "vat": "-1.90"}]));
        assert_eq!(q4["vat_due"], "-1.90");
        // The earlier return itself is not rewritten: Q3 reads as it did.
        assert_eq!(
            json_of(
                &app,
                &["report", "oss", "--quarter", "2025-Q3", "--format", "json"]
            ),
            q3_before
        );
        let csv = ok(&app.cli(&["report", "oss", "--quarter", "2025-Q4", "--format", "csv"]));
        assert_eq!(
            csv.lines().skip(1).collect::<Vec<_>>(),
            [
                "2025-Q4,DE,19,0.00,0.00,0.40,0.08,0.40,0.08,",
                "2025-Q4,DE,,-10.00,-1.90,,,,,2025-Q3"
            ]
        );
        let table = ok(&app.cli(&["report", "oss", "--quarter", "2025-Q4"]));
        assert!(
            table.contains("article 61 of Regulation (EU) 282/2011"),
            "{table}"
        );
        assert!(
            table.lines().any(|l| l.starts_with("DE")
                && l.contains("2025-Q3")
                && l.contains("-1.90")
                && l.ends_with("AV-2025-000001")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("Total due") && l.ends_with("-1.90")),
            "{table}"
        );
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
/// what the account owes (less what its credit notes refunded outside billrun or through
/// Stripe without an answer yet: no entry for those), 4191 per account = its prepaid credit
/// left, revenue, discounts and VAT = the invoices' less the credit notes' (article 272-1 of the
/// CGI), Stripe's clearing account = payments less refunds that succeeded. Returns Σ(debit −
/// credit) per account number.
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
    let path = dir.join("812345676FEC20261231.txt");
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
    // Refunded outside billrun (`--refund none`, or a failed refund re-routed `--to none`), or
    // through Stripe without success yet: owed no more, but not booked (the bank's statement, or Stripe's answer, will say when).
    let unbooked_rows: Vec<(String, i64, i64)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT c.account_id, c.refund_outside_minor,
                    CAST(COALESCE((SELECT SUM(r.amount_minor) FROM refunds r
                                   WHERE r.credit_note_id = c.id AND r.status <> 'succeeded'
                                     AND NOT (r.status = 'rerouted' AND r.rerouted_to = 'credit')), 0) AS BIGINT)
             FROM credit_notes c")
            .fetch_all(p).await.unwrap());
    let mut unbooked: HashMap<String, i64> = HashMap::new();
    for (account, outside, unsettled) in unbooked_rows {
        *unbooked.entry(account).or_default() += outside + unsettled;
    }
    for (account, due) in &owed {
        assert_eq!(
            customers.get(account).copied().unwrap_or(0),
            *due - unbooked.get(account).copied().unwrap_or(0),
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
    // The credit notes': net credited, VAT, and the discount a full one gives back (its
    // deduction, never more than its invoice's discount).
    let notes: Vec<(i64, i64, String, i64, i64)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT c.subtotal_minor, c.tax_minor, c.tax_case,
                    CAST(COALESCE((SELECT -SUM(l.amount_minor) FROM credit_note_lines l
                                   WHERE l.credit_note_id = c.id AND l.kind = 'deduction'), 0) AS BIGINT),
                    i.discount_minor
             FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id")
            .fetch_all(p).await.unwrap());
    let credited: i64 = notes.iter().map(|n| n.0).sum();
    let credited_tax: i64 = notes.iter().map(|n| n.1).sum();
    let credited_domestic_tax: i64 = notes
        .iter()
        .filter(|n| n.2 == "domestic")
        .map(|n| n.1)
        .sum();
    let discount_back: i64 = notes.iter().map(|n| n.3.min(n.4)).sum();
    assert_eq!(-sum_of("706"), subtotal - credited - discount_back);
    assert_eq!(sum_of("709"), discount - discount_back);
    assert_eq!(-sum_of("4457"), tax - credited_tax);
    assert_eq!(
        -by_account.get("445710").copied().unwrap_or(0),
        domestic_tax - credited_domestic_tax
    );
    // What card and SEPA brought in, less what Stripe refunded.
    let (paid, refunded): (i64, i64) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT CAST(COALESCE((SELECT SUM(amount_minor) FROM payment_attempts WHERE outcome = 'succeeded'), 0) AS BIGINT),
                    CAST(COALESCE((SELECT SUM(amount_minor) FROM refunds WHERE status = 'succeeded'), 0) AS BIGINT)")
            .fetch_one(p).await.unwrap());
    assert_eq!(
        by_account.get("511100").copied().unwrap_or(0),
        paid - refunded
    );

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
    assert!(out.contains("812345676FEC20261231.csv"), "{out}");
    let csv_text = std::fs::read_to_string(dir.join("812345676FEC20261231.csv")).unwrap();
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
    let empty = std::fs::read_to_string(dir.join("812345676FEC20241231.txt")).unwrap();
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

// Each credit note is a sales-journal entry reversing its invoice's on the same accounts
// (article 272-1 of the CGI; the FEC of article A47 A-1 of the LPF), its refunds a Stripe or
// prepaid-credit entry; an unpaid invoice fully credited is lettered with its credit note.
both_stores!(
    fec_article_a47_a_1_lpf_credit_notes_and_refunds_reverse_the_invoice_cgi_272_1,
    |app: TestApp| async move {
        seed_year(&app).await;
        // The December invoice with the referral discount, paid by card: all of it, back to
        // the card (the deduction line gives the discount back).
        let fr = app
            .invoice("acc-fr-consumer", "2026-11")
            .await
            .number
            .unwrap();
        let fr_inv = app.invoice("acc-fr-consumer", "2026-11").await;
        assert_ne!(fr_inv.discount, "0.00", "{fr_inv:?}");
        assert_eq!(fr_inv.status, "paid");
        let full_card = credit_note(&app, &fr, &["--full"], "card", "2026-12-10T10:00:00Z");
        assert_eq!(full_card["refund"]["status"], "succeeded", "{full_card}");
        // Paid wholly by prepaid credit: a part, back to the credit.
        let de = app
            .invoice("acc-de-consumer", "2026-10")
            .await
            .number
            .unwrap();
        let to_credit = credit_note(
            &app,
            &de,
            &["--amount", "0.50"],
            "auto",
            "2026-11-20T10:00:00Z",
        );
        assert_eq!(
            to_credit["refund"]["to_credit"], to_credit["total"],
            "{to_credit}"
        );
        // Unpaid (no payment method): all of it; nothing to refund, the invoice is void.
        let us = app
            .invoice("acc-us-business", "2026-10")
            .await
            .number
            .unwrap();
        let void = credit_note(&app, &us, &["--full"], "auto", "2026-11-20T11:00:00Z");
        assert_eq!(
            app.invoice("acc-us-business", "2026-10").await.status,
            "void"
        );
        // Paid by SEPA, refunded outside billrun: recorded, no refund entry.
        let fb = app
            .invoice("acc-fr-business", "2026-10")
            .await
            .number
            .unwrap();
        credit_note(
            &app,
            &fb,
            &["--amount", "1.00"],
            "none",
            "2026-11-20T12:00:00Z",
        );

        let by_account = check_fec(&app).await;
        assert!(by_account.contains_key("709000"));

        let text =
            std::fs::read_to_string(app.dir.path().join("fec/812345676FEC20261231.txt")).unwrap();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .map(|l| l.split('\t').collect())
            .collect();
        let col = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
        let (journal, num, compte, aux, piece, piece_date, lib, debit, credit, let_) = (
            col("JournalCode"),
            col("EcritureNum"),
            col("CompteNum"),
            col("CompAuxNum"),
            col("PieceRef"),
            col("PieceDate"),
            col("EcritureLib"),
            col("Debit"),
            col("Credit"),
            col("EcritureLet"),
        );
        // An entry's lines as "journal account auxiliary debit credit" (cents).
        let entry = |piece_ref: &str| -> Vec<String> {
            rows.iter()
                .filter(|r| r[piece] == piece_ref)
                .map(|r| {
                    format!(
                        "{} {} {} {} {}",
                        r[journal],
                        r[compte],
                        r[aux],
                        cents(r[debit]),
                        cents(r[credit])
                    )
                })
                .collect()
        };
        let m = |v: &Value| minor(v);

        // The full credit note on the discounted domestic invoice reverses the invoice's entry
        // line for line, in its order: 411 credit of its total, 709 credit of the discount,
        // 706100 debit of the lines, 445710 debit of the VAT.
        let cn1 = full_card["number"].as_str().unwrap();
        let discount = billrun::core::money::parse_major(&fr_inv.discount).unwrap();
        assert_eq!(
            entry(cn1),
            [
                format!("VT 411000 acc-fr-consumer {} {}", 0, m(&full_card["total"])),
                format!("VT 709000  {} {}", 0, discount),
                format!("VT 706100  {} {}", m(&full_card["subtotal"]) + discount, 0),
                format!("VT 445710  {} {}", m(&full_card["tax"]), 0),
            ]
        );
        let first = rows.iter().find(|r| r[piece] == cn1).unwrap();
        assert_eq!(first[lib], format!("Avoir {cn1} sur facture {fr}"));
        assert_eq!(first[piece_date], "20261210");
        // Its refund through Stripe: 411 debit, Stripe's clearing account credit.
        let refund: Vec<&Vec<&str>> = rows
            .iter()
            .filter(|r| r[journal] == "BQS" && r[lib].contains(cn1))
            .collect();
        assert_eq!(refund.len(), 2, "{refund:?}");
        assert_eq!(
            (refund[0][compte], refund[0][aux], cents(refund[0][debit])),
            ("411000", "acc-fr-consumer", m(&full_card["total"]))
        );
        assert_eq!(
            (refund[1][compte], cents(refund[1][credit])),
            ("511100", m(&full_card["total"]))
        );
        // Paid, credited and refunded in full: the invoice's 411 lines are lettered together.
        let fr_letters: Vec<&str> = rows
            .iter()
            .filter(|r| {
                r[compte] == "411000" && (r[piece] == fr || r[piece] == cn1 || r[lib].contains(cn1))
            })
            .map(|r| r[let_])
            .collect();
        assert!(
            fr_letters.len() >= 3
                && !fr_letters[0].is_empty()
                && fr_letters.iter().all(|l| *l == fr_letters[0]),
            "{fr_letters:?}"
        );

        // The OSS credit note given back to the prepaid credit: 706200 and 445720 debit;
        // then 411 debit, 4191 credit.
        let cn2 = to_credit["number"].as_str().unwrap();
        assert_eq!(
            entry(cn2),
            [
                format!("VT 411000 acc-de-consumer {} {}", 0, m(&to_credit["total"])),
                format!("VT 706200  {} {}", 50, 0),
                format!("VT 445720  {} {}", m(&to_credit["tax"]), 0),
            ]
        );
        assert_eq!(
            entry(&format!("credit-note:{cn2}")),
            [
                format!("OD 411000 acc-de-consumer {} {}", m(&to_credit["total"]), 0),
                format!("OD 419100 acc-de-consumer {} {}", 0, m(&to_credit["total"])),
            ]
        );

        // The unpaid invoice fully credited: outside the EU, no VAT line; lettered with its
        // credit note alone.
        let cn3 = void["number"].as_str().unwrap();
        assert_eq!(
            entry(cn3),
            [
                format!("VT 411000 acc-us-business {} {}", 0, m(&void["total"])),
                format!("VT 706400  {} {}", m(&void["total"]), 0),
            ]
        );
        let us_letters: Vec<(&str, &str)> = rows
            .iter()
            .filter(|r| r[compte] == "411000" && (r[piece] == us || r[piece] == cn3))
            .map(|r| (r[piece], r[let_]))
            .collect();
        assert_eq!(us_letters.len(), 2, "{us_letters:?}");
        assert!(
            !us_letters[0].1.is_empty() && us_letters[0].1 == us_letters[1].1,
            "{us_letters:?}"
        );
        // Each credit note is its own entry.
        let nums: std::collections::BTreeSet<&str> = rows
            .iter()
            .filter(|r| r[piece].starts_with("AV-2026-"))
            .map(|r| r[num])
            .collect();
        assert_eq!(nums.len(), 4);
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
        let text = std::fs::read_to_string(dir.join("812345676FEC20261231.txt")).unwrap();
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
