//! What the invoices say agrees with the law and with what billrun does, on both stores: the
//! VAT mention per case (CGI articles), the late-payment mentions for businesses only
//! (article L441-10 of the Code de commerce), the payment terms (charged at issue), the seller's
//! RCS, a capped line, and characters the PDF font lacks.

use crate::common::TestApp;
use billrun::import::ImportKind;
use billrun::jobs::JobName;

/// A consumer in Switzerland (outside the EU) with an emoji in her name, and her usage.
async fn seed_swiss_consumer(app: &TestApp) {
    app.import_csv(
        ImportKind::Accounts,
        "ch.csv",
        "id,email,name,company,address,country,vat_number,language,created_at,referred_by\n\
         acc-ch-consumer,zoe@example.ch,Zoé 🚀 Keller,,\"Bahnhofstrasse 1, 8001 Zürich\",CH,,fr,2025-01-01T00:00:00Z,\n",
    )
    .await
    .unwrap();
    app.import_csv(
        ImportKind::Apps,
        "ch-apps.csv",
        "id,name,account_id\napp-zoe,zoe-site,acc-ch-consumer\n",
    )
    .await
    .unwrap();
    app.import_csv(
        ImportKind::Usage,
        "ch-usage.csv",
        "id,app_id,kind,item,quantity,started_at,ended_at\n\
         u-zoe,app-zoe,container,M,1,2026-10-01T00:00:00Z,2026-10-11T00:00:00Z\n",
    )
    .await
    .unwrap();
}

/// The stored PDF of the account's October invoice, as `pdftotext` reads it (whitespace
/// collapsed), after `qpdf --check`.
async fn pdf_text(app: &TestApp, account: &str) -> String {
    let inv = app.invoice(account, "2026-10").await;
    let (pdf, _) = billrun::store::documents::get(app.db(), inv.id.unwrap())
        .await
        .unwrap()
        .unwrap();
    let path = app.dir.path().join(format!("{account}.pdf"));
    std::fs::write(&path, &pdf).unwrap();
    let check = std::process::Command::new("qpdf")
        .arg("--check")
        .arg(&path)
        .output()
        .expect("qpdf is installed");
    assert!(check.status.success(), "qpdf --check {account}");
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext is installed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn has(text: &str, what: &str, account: &str) {
    assert!(
        text.contains(what),
        "{account}: `{what}` missing in:\n{text}"
    );
}

fn lacks(text: &str, what: &str, account: &str) {
    assert!(
        !text.contains(what),
        "{account}: `{what}` printed in:\n{text}"
    );
}

both_stores!(
    vat_mentions_art_259_1_and_259_b_cgi_and_l441_10_penalties_for_businesses_only,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        seed_swiss_consumer(&app).await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;

        // Consumer outside the EU: article 259 B of the CGI, never 259-1; no L441-10 penalties
        // or 40 € indemnity, which bind businesses only.
        let ch = app.invoice("acc-ch-consumer", "2026-10").await;
        assert_eq!(ch.tax_case, "out_of_scope");
        let mention = ch.tax_mention.as_deref().unwrap();
        assert!(mention.contains("article 259 B du CGI"), "{mention}");
        let text = pdf_text(&app, "acc-ch-consumer").await;
        has(&text, "TVA non applicable, article 259 B du CGI", "ch");
        lacks(&text, "259-1", "ch");
        lacks(&text, "40 €", "ch");
        lacks(&text, "pénalités", "ch");
        has(
            &text,
            "Paiement prélevé automatiquement à l'émission de la facture",
            "ch",
        );
        has(&text, "Date d'échéance : 16 novembre 2026", "ch");
        lacks(&text, "réception", "ch");
        has(&text, "RCS Strasbourg 812 345 676", "ch");

        // Business outside the EU: article 259-1; penalties and the indemnity from the day
        // after the due date.
        let us = app.invoice("acc-us-business", "2026-10").await;
        assert!(
            us.tax_mention.as_deref().unwrap().contains("article 259-1"),
            "{us:?}"
        );
        let text = pdf_text(&app, "acc-us-business").await;
        has(&text, "article 259-1 of the French CGI", "us");
        lacks(&text, "259 B", "us");
        has(&text, "from 17 November 2026", "us");
        has(
            &text,
            "recovery costs of €40 (articles L441-10 and D441-5",
            "us",
        );
        has(
            &text,
            "Payment is collected automatically when the invoice is issued",
            "us",
        );
        lacks(&text, "on receipt", "us");

        // French consumer: French VAT, no mention, no business penalties.
        let fr = app.invoice("acc-fr-consumer", "2026-10").await;
        assert_eq!(
            (fr.tax_case.as_str(), fr.tax_mention.as_deref()),
            ("domestic", None)
        );
        let text = pdf_text(&app, "acc-fr-consumer").await;
        lacks(&text, "indemnité forfaitaire", "fr consumer");
        lacks(&text, "TVA non applicable", "fr consumer");

        // French business: the penalties and the 40 € indemnity.
        let text = pdf_text(&app, "acc-fr-business").await;
        has(
            &text,
            "indemnité forfaitaire pour frais de recouvrement de 40 €",
            "fr business",
        );
        has(&text, "à compter du 17 novembre 2026", "fr business");

        // EU business: reverse charge.
        let text = pdf_text(&app, "acc-de-business").await;
        has(&text, "Autoliquidation", "de business");
    }
);

both_stores!(
    a_character_the_pdf_font_lacks_is_drawn_as_u_fffd_and_stored_exactly,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        seed_swiss_consumer(&app).await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        let inv = app.invoice("acc-ch-consumer", "2026-10").await;
        // The stored invoice keeps the exact name.
        assert_eq!(inv.buyer.name, "Zoé 🚀 Keller");
        let stored: (String,) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT buyer_name FROM invoices WHERE account_id = 'acc-ch-consumer'")
            .fetch_one(p).await.unwrap());
        assert_eq!(stored.0, "Zoé 🚀 Keller");
        // The PDF draws the replacement character where DejaVu Sans has no glyph.
        let text = pdf_text(&app, "acc-ch-consumer").await;
        has(&text, "Zoé \u{FFFD} Keller", "ch");
        lacks(&text, "🚀", "ch");
    }
);

both_stores!(
    request_deletion_prints_what_is_due_after_credit,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.set_pm(
            "acc-fr-consumer",
            "card",
            "pm_card_visa",
            "2026-10-01T00:00:00Z",
        )
        .await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        app.run(JobName::Collect, "2026-11-01T07:00:00Z").await;
        assert_eq!(
            app.invoice("acc-fr-consumer", "2026-10").await.status,
            "paid"
        );
        // Some November usage, then the app is deleted and credit bought: the final invoice
        // is paid from the credit at once.
        app.import_csv(
            ImportKind::Usage,
            "nov.csv",
            "id,app_id,kind,item,quantity,started_at,ended_at\n\
             u-a-nov,app-alice-web,container,L,4,2026-11-01T00:00:00Z,2026-11-05T00:00:00Z\n",
        )
        .await
        .unwrap();
        let out = app.cli(&[
            "app",
            "delete",
            "app-alice-web",
            "--at",
            "2026-11-10T10:00:00Z",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            app.add_credit(
                "acc-fr-consumer",
                50_000,
                "paypal-1",
                "2026-11-10T10:30:00Z"
            )
            .await
        );
        let out = app.cli(&[
            "account",
            "request-deletion",
            "acc-fr-consumer",
            "--now",
            "2026-11-10T12:00:00Z",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let november = app.invoice("acc-fr-consumer", "2026-11").await;
        assert_eq!(november.status, "paid");
        assert_ne!(november.credit_applied, "0.00", "{november:?}");
        assert_eq!(november.amount_due, "0.00");
        // The table shows the invoice as it stands after the credit: paid, nothing due.
        let row = stdout
            .lines()
            .find(|l| l.starts_with(november.number.as_deref().unwrap()))
            .unwrap_or_else(|| panic!("no row for the final invoice in:\n{stdout}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[3], "paid", "{row}");
        assert_eq!(cells.last(), Some(&"0.00"), "DUE after credit: {row}");
        assert!(stdout.contains("nothing is due"), "{stdout}");
    }
);

both_stores!(
    a_capped_line_says_plafond_mensuel_atteint_with_the_cap_on_the_pdf_and_in_json,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        // bob-api runs 2 × M all month: 1,488 h × €0.02 = €29.76, capped at 2 × €14.40.
        let bob = app.invoice("acc-fr-business", "2026-10").await;
        let capped = bob
            .lines
            .iter()
            .find(|l| l.app_id.as_deref() == Some("app-bob-api") && l.item == "M")
            .unwrap();
        assert_eq!(capped.amount, "28.80");
        assert!(
            capped
                .description
                .ends_with(", plafond mensuel atteint : 28,80 €)"),
            "{}",
            capped.description
        );
        let json = app.cli(&[
            "invoices",
            "show",
            bob.number.as_deref().unwrap(),
            "--format",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert!(
            v["lines"][0]["description"]
                .as_str()
                .unwrap()
                .contains("plafond mensuel atteint : 28,80 €"),
            "{v:#}"
        );
        let text = pdf_text(&app, "acc-fr-business").await;
        has(&text, "plafond mensuel atteint : 28,80 €", "fr business");
        // An uncapped line says nothing of a cap.
        let worker = bob
            .lines
            .iter()
            .find(|l| l.app_id.as_deref() == Some("app-bob-worker"))
            .unwrap();
        assert!(
            !worker.description.contains("plafond"),
            "{}",
            worker.description
        );
    }
);
