//! Credit notes (*avoirs*, issue 22) on both stores: the only way to correct an issued invoice
//! (article 272-1 of the CGI), numbered in their own gapless series (article 242 nonies A,
//! I-7° of annex II to the CGI), never more than the invoice, refunded once whatever crashes
//! (Stripe API "Idempotent requests").

use crate::common::fake_stripe::FakeStripe;
use crate::common::{TestApp, t};
use billrun::closing::Refused;
use billrun::core::credit_note::{CreditRequest, RefundMethod};
use billrun::core::document::{CreditNote, RefundStatus};
use billrun::jobs::JobName;

const INVOICED: &str = "2026-11-01T06:00:00Z";
const COLLECT: &str = "2026-11-01T07:00:00Z";
const CREDITED: &str = "2026-11-10T09:00:00Z";

/// The fixtures invoiced for October, every account paying by card.
async fn invoiced(app: &TestApp) {
    app.seed_fixtures().await;
    for acc in [
        "acc-fr-consumer",
        "acc-fr-business",
        "acc-de-business",
        "acc-de-consumer",
        "acc-fi-consumer",
        "acc-us-business",
    ] {
        app.set_pm(acc, "card", "pm_card_visa", "2026-10-01T00:00:00Z")
            .await;
    }
    app.run(JobName::Invoice, INVOICED).await;
}

fn request(
    invoice: &str,
    what: CreditRequest,
    method: RefundMethod,
) -> billrun::credit_notes::Request {
    billrun::credit_notes::Request {
        invoice: invoice.into(),
        reason: "Incident de plateforme du 12 octobre".into(),
        what,
        method,
        now: t(CREDITED),
        dry_run: false,
    }
}

async fn issue(app: &TestApp, r: &billrun::credit_notes::Request) -> CreditNote {
    billrun::credit_notes::issue(&app.env, r)
        .await
        .expect("the credit note is issued")
}

async fn number_of(app: &TestApp, account: &str) -> String {
    app.invoice(account, "2026-10").await.number.unwrap()
}

/// Σ credit ledger rows = the account's balance, and each row's balance follows the last.
async fn ledger_balances(app: &TestApp, account: &str) {
    let rows = billrun::store::collection::ledger(app.db(), account)
        .await
        .unwrap();
    let mut running = 0;
    for r in &rows {
        running += r.amount_minor;
        assert_eq!(r.balance_after_minor, running, "{rows:#?}");
    }
    let balance = billrun::store::collection::credit_balance(app.db(), account)
        .await
        .unwrap();
    assert_eq!(balance, running);
}

both_stores!(
    cgi_272_a_full_credit_note_voids_an_unpaid_invoice_and_stops_its_collection,
    |app: TestApp| async move {
        invoiced(&app).await;
        let number = number_of(&app, "acc-fr-business").await;
        let before = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(before.status, "open");
        let cn = issue(
            &app,
            &request(&number, CreditRequest::Full, RefundMethod::Auto),
        )
        .await;
        assert_eq!(cn.number.as_deref(), Some("AV-2026-000001"));
        assert_eq!(cn.invoice_number, number);
        // Everything the invoice charged comes back: net, VAT, total, to the cent.
        assert_eq!(format!("{}", cn.total.minor), before.total.replace('.', ""));
        assert_eq!(
            cn.subtotal.minor + cn.tax.minor,
            cn.total.minor,
            "lines = totals"
        );
        assert_eq!(
            cn.lines.iter().map(|l| l.amount.minor).sum::<i64>(),
            cn.subtotal.minor
        );
        // Nothing was paid: the amount due falls, nothing is refunded.
        assert_eq!(cn.refund.reduce_due, cn.total);
        assert_eq!(cn.refund.amount().minor, 0);
        assert_eq!(cn.refund.status, RefundStatus::NotNeeded);

        let after = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(
            (
                after.status.as_str(),
                after.amount_due.as_str(),
                after.amount_credited.as_str()
            ),
            ("void", "0.00", before.total.as_str())
        );
        assert_eq!(after.credit_notes.len(), 1);
        assert_eq!(after.credit_notes[0].number, "AV-2026-000001");
        assert_eq!(after.next_attempt_at, None);

        // Its dunning has stopped: collect charges every other invoice, not this one.
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        app.run(JobName::Collect, COLLECT).await;
        assert!(
            fake.requests_to("POST", "/v1/payment_intents")
                .iter()
                .all(|q| q.param("metadata[invoice_number]") != Some(number.as_str())),
            "the voided invoice is never charged"
        );
        assert_eq!(fake.charges_created(), 5);

        // The timeline and the email say so, once.
        let kinds: Vec<String> = billrun::store::events::timeline(app.db(), "acc-fr-business")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind.to_string())
            .collect();
        assert!(
            kinds.contains(&"credit_note.issued".to_string()),
            "{kinds:?}"
        );
        assert!(kinds.contains(&"invoice.voided".to_string()), "{kinds:?}");
        let emails: Vec<_> = app
            .outbox()
            .await
            .into_iter()
            .filter(|e| e.1 == "credit_note_issued")
            .collect();
        assert_eq!(
            emails,
            vec![(
                "acc-fr-business".to_string(),
                "credit_note_issued".to_string(),
                "credit_note_issued:AV-2026-000001".to_string()
            )]
        );
        // Its PDF is stored with its SHA-256, and sent once over SMTP, attached, byte for byte.
        let (pdf, sha) = billrun::store::credit_notes::document(app.db(), cn.id.unwrap().0)
            .await
            .unwrap()
            .expect("a stored PDF");
        assert_eq!(sha, billrun::store::documents::sha256_hex(&pdf));
        let smtp = crate::common::smtp::SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        app.run(JobName::Deliver, "2026-11-10T10:00:00Z").await;
        app.run(JobName::Deliver, "2026-11-10T11:00:00Z").await;
        let sent: Vec<serde_json::Value> = smtp
            .messages()
            .into_iter()
            .filter(|m| {
                m["Subject"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Votre avoir AV-2026-000001")
            })
            .collect();
        assert_eq!(sent.len(), 1, "one email, whatever runs again");
        let part = sent[0]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["content_type"] == "application/pdf")
            .expect("the credit note's PDF is attached")
            .clone();
        assert_eq!(part["filename"], "credit-note-AV-2026-000001.pdf");
        use base64::Engine as _;
        let attached = base64::engine::general_purpose::STANDARD
            .decode(part["base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(attached, pdf);
    }
);

both_stores!(
    cgi_272_partial_credit_notes_never_exceed_the_invoice_and_say_what_is_left,
    |app: TestApp| async move {
        invoiced(&app).await;
        let number = number_of(&app, "acc-fr-consumer").await;
        let inv = app.invoice("acc-fr-consumer", "2026-10").await;
        let first_line = billrun::core::money::parse_major(&inv.lines[0].amount).unwrap();
        // Part of line 1, then a gesture.
        let a = issue(
            &app,
            &request(
                &number,
                CreditRequest::Lines(vec![(0, 100)]),
                RefundMethod::Auto,
            ),
        )
        .await;
        assert_eq!(a.subtotal.minor, 100);
        assert_eq!(a.lines[0].invoice_line, Some(1));
        assert_eq!(a.lines[0].description, inv.lines[0].description);
        let b = issue(
            &app,
            &request(&number, CreditRequest::Amount(50), RefundMethod::Auto),
        )
        .await;
        assert_eq!(b.number.as_deref(), Some("AV-2026-000002"));
        // More than the line has left is refused, naming what is left.
        let err = billrun::credit_notes::issue(
            &app.env,
            &request(
                &number,
                CreditRequest::Lines(vec![(0, first_line)]),
                RefundMethod::Auto,
            ),
        )
        .await
        .expect_err("more than the line has left");
        assert!(err.downcast_ref::<Refused>().is_some(), "{err:#}");
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!(
                "{} left to credit on it",
                billrun::core::money::format_minor(first_line - 100)
            )),
            "{msg}"
        );
        // The rest, in full: the VAT credited in all is the invoice's VAT to the cent.
        let c = issue(
            &app,
            &request(&number, CreditRequest::Full, RefundMethod::Auto),
        )
        .await;
        let tax_total = a.tax.minor + b.tax.minor + c.tax.minor;
        assert_eq!(
            billrun::core::money::format_minor(tax_total),
            inv.tax,
            "Σ VAT credited = the invoice's VAT"
        );
        let after = app.invoice("acc-fr-consumer", "2026-10").await;
        assert_eq!(after.status, "void");
        assert_eq!(after.amount_credited, inv.total);
        assert_eq!(after.credit_notes.len(), 3);
        // Nothing is left: refused, exit 4 from the CLI, naming it.
        let out = app.cli(&[
            "invoices",
            "credit-note",
            &number,
            "--reason",
            "again",
            "--amount",
            "1.00",
        ]);
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("0.00 left to credit in all"), "{stderr}");
    }
);

both_stores!(
    stripe_refunds_a_card_paid_invoice_once_under_a_key_derived_from_the_credit_note,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app).await;
        app.run(JobName::Collect, COLLECT).await;
        let number = number_of(&app, "acc-fr-business").await;
        let inv = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(inv.status, "paid");
        let cn = issue(
            &app,
            &request(&number, CreditRequest::Amount(1000), RefundMethod::Auto),
        )
        .await;
        // Paid by card: the whole credit goes back to the card, through Stripe Refunds on
        // the PaymentIntent that paid it.
        assert_eq!(cn.refund.to_payment_method, cn.total);
        assert_eq!(cn.refund.status, RefundStatus::Succeeded);
        let refunds = fake.refunds();
        assert_eq!(refunds.len(), 1, "{refunds:#?}");
        assert_eq!(refunds[0]["amount"], serde_json::json!(cn.total.minor));
        assert_eq!(
            refunds[0]["payment_intent"].as_str(),
            inv.attempts[0].payment_intent.as_deref()
        );
        let req = fake.requests_to("POST", "/v1/refunds");
        let key = req[0].header("idempotency-key").unwrap().to_string();
        assert!(
            key.starts_with(&format!("billrun-cn-{}-", cn.id.unwrap().0)),
            "{key}"
        );
        // The invoice stays paid; what it owes does not move; the credit is shown.
        let after = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(
            (after.status.as_str(), after.amount_due.as_str()),
            ("paid", "0.00")
        );
        assert_eq!(
            after.amount_credited,
            billrun::core::money::format_minor(cn.total.minor)
        );
        // A later collect run asks nothing again.
        app.run(JobName::Collect, "2026-11-11T07:00:00Z").await;
        assert_eq!(fake.refunds().len(), 1);
        assert_eq!(fake.requests_to("POST", "/v1/refunds").len(), 1);
        // Refunding past what the card paid is refused (exit 4), nothing refunded.
        let err = billrun::credit_notes::issue(
            &app.env,
            &request(&number, CreditRequest::Full, RefundMethod::Gateway),
        )
        .await;
        // The rest of the invoice was paid by card too: this one is accepted.
        let rest = err.expect("the rest of the card payment can be refunded");
        assert_eq!(rest.refund.to_payment_method, rest.total);
        assert_eq!(fake.refunds().len(), 2);
        let refunded: i64 = fake
            .refunds()
            .iter()
            .map(|r| r["amount"].as_i64().unwrap())
            .sum();
        assert_eq!(
            billrun::core::money::format_minor(refunded),
            inv.amount_paid,
            "never more than was paid"
        );
    }
);

both_stores!(
    stripe_idempotent_requests_a_refund_whose_answer_was_lost_is_made_once_by_the_next_collect,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        // One request per ask: the client gives up on the first lost answer.
        app.env.jobs.collect.settings.transient_tries = 1;
        invoiced(&app).await;
        app.run(JobName::Collect, COLLECT).await;
        let number = number_of(&app, "acc-de-consumer").await;
        // Stripe makes the refund but its answer is lost (as if billrun had crashed after
        // committing the credit note): the refund stays open, outcome unknown.
        fake.lose_next_response(1);
        let cn = issue(
            &app,
            &request(&number, CreditRequest::Full, RefundMethod::Gateway),
        )
        .await;
        assert_eq!(cn.refund.status, RefundStatus::Unknown);
        assert_eq!(fake.refunds().len(), 1, "Stripe made it once");
        // The next collect asks again under the same key: Stripe answers with the refund
        // it made; nothing is refunded twice.
        let r = app.run(JobName::Collect, "2026-11-11T07:00:00Z").await;
        assert!(r.failures.is_empty(), "{:#?}", r.failures);
        assert_eq!(fake.refunds().len(), 1);
        let keys: Vec<String> = fake
            .requests_to("POST", "/v1/refunds")
            .iter()
            .map(|q| q.header("idempotency-key").unwrap().to_string())
            .collect();
        assert!(keys.len() == 2 && keys[0] == keys[1], "{keys:?}");
        let row = billrun::store::credit_notes::find(app.db(), cn.number.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
        let doc = billrun::store::credit_notes::load_document(app.db(), &row)
            .await
            .unwrap();
        assert_eq!(doc.refund.status, RefundStatus::Succeeded);
    }
);

both_stores!(
    a_credit_paid_invoice_is_credited_back_to_the_prepaid_credit_and_the_ledger_balances,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        // 5.00 of credit, no card: the invoice is partly paid by credit and the rest owed.
        app.add_credit("acc-fi-consumer", 500, "PAYPAL-1", "2026-10-15T00:00:00Z")
            .await;
        app.run(JobName::Invoice, INVOICED).await;
        app.run(JobName::Collect, COLLECT).await;
        let number = number_of(&app, "acc-fi-consumer").await;
        let inv = app.invoice("acc-fi-consumer", "2026-10").await;
        assert_eq!(inv.credit_applied, "5.00");
        assert!(inv.amount_due != "0.00");
        let total = billrun::core::money::parse_major(&inv.total).unwrap();
        let due = billrun::core::money::parse_major(&inv.amount_due).unwrap();
        let cn = issue(
            &app,
            &request(&number, CreditRequest::Full, RefundMethod::Auto),
        )
        .await;
        // What was owed falls first; what the credit paid goes back to the credit.
        assert_eq!(cn.refund.reduce_due.minor, due);
        assert_eq!(cn.refund.to_credit.minor, total - due);
        assert_eq!(cn.refund.to_payment_method.minor, 0);
        let after = app.invoice("acc-fi-consumer", "2026-10").await;
        assert_eq!(after.status, "void");
        assert_eq!(
            billrun::store::collection::credit_balance(app.db(), "acc-fi-consumer")
                .await
                .unwrap(),
            500
        );
        ledger_balances(&app, "acc-fi-consumer").await;
    }
);

both_stores!(
    a_dry_run_credit_note_shows_what_would_be_issued_and_changes_nothing,
    |app: TestApp| async move {
        invoiced(&app).await;
        let number = number_of(&app, "acc-fr-business").await;
        let before = app.dump().await;
        let out = app.cli(&[
            "invoices",
            "credit-note",
            &number,
            "--reason",
            "Geste",
            "--full",
            "--now",
            CREDITED,
            "--dry-run",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["number"], serde_json::Value::Null);
        assert_eq!(v["invoice_number"], serde_json::json!(number));
        assert_eq!(v["refund"]["status"], "not_needed");
        assert_eq!(v["refund"]["amount_due_reduced"], v["total"]);
        assert_eq!(app.dump().await, before, "a dry-run changes nothing");
        // The same without --dry-run issues exactly what was shown.
        let out = app.cli(&[
            "invoices",
            "credit-note",
            &number,
            "--reason",
            "Geste",
            "--full",
            "--now",
            CREDITED,
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{out:?}");
        let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(w["number"], "AV-2026-000001");
        for k in [
            "lines",
            "subtotal",
            "tax_case",
            "tax_rate",
            "tax",
            "total",
            "issued_at",
        ] {
            assert_eq!(v[k], w[k], "{k}");
        }
        // And it is listed and shown.
        let out = app.cli(&["credit-notes", "list", "--format", "json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(list.as_array().map(Vec::len), Some(1));
        let out = app.cli(&["credit-notes", "show", "AV-2026-000001"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("for invoice {number}")), "{text}");
        let pdf = app.dir.path().join("av.pdf");
        let out = app.cli(&[
            "credit-notes",
            "pdf",
            "AV-2026-000001",
            "-o",
            pdf.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
        // Code de commerce L123-22: kept, as invoices are; the stores refuse deleting one.
        for table in ["credit_notes", "credit_note_lines", "credit_note_documents"] {
            let sql = sqlx::AssertSqlSafe(format!("DELETE FROM {table}"));
            let deleted =
                billrun::with_db!(app.db(), p => sqlx::query(sql).execute(p).await.map(|_| ()));
            let err = deleted.expect_err("a credit note is never deleted");
            assert!(err.to_string().contains("credit notes are kept"), "{err}");
        }
        assert_eq!(app.count("credit_notes").await, 1);
    }
);

both_stores!(
    cgi_242_nonies_a_credit_notes_issued_at_once_are_numbered_without_gap_or_twice,
    |app: TestApp| async move {
        invoiced(&app).await;
        let mut numbers = Vec::new();
        for acc in [
            "acc-fr-consumer",
            "acc-fr-business",
            "acc-de-business",
            "acc-de-consumer",
            "acc-fi-consumer",
            "acc-us-business",
        ] {
            numbers.push(number_of(&app, acc).await);
        }
        // Two gestures per invoice, all at once.
        let mut tasks = Vec::new();
        for n in numbers.iter().chain(numbers.iter()) {
            let env = app.env.clone();
            let r = request(n, CreditRequest::Amount(10), RefundMethod::Auto);
            tasks.push(tokio::spawn(async move {
                billrun::credit_notes::issue(&env, &r)
                    .await
                    .map(|c| c.number.unwrap())
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap().expect("each credit note is issued"));
        }
        got.sort();
        let want: Vec<String> = (1..=12)
            .map(|i| billrun::core::credit_note::format_number(2026, i))
            .collect();
        assert_eq!(got, want);
    }
);

both_stores!(
    a_lost_dispute_makes_the_amount_owed_again_and_a_won_one_changes_nothing,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app).await;
        app.run(JobName::Collect, COLLECT).await;
        let clara = number_of(&app, "acc-de-business").await;
        let bob = number_of(&app, "acc-fr-business").await;
        let dispute = |invoice: &str, dp: &str, status: &str| {
            app.cli(&[
                "payment",
                "dispute",
                "--invoice",
                invoice,
                "--amount",
                "5.00",
                "--stripe-dispute",
                dp,
                "--status",
                status,
                "--now",
                CREDITED,
                "--format",
                "json",
            ])
        };
        // Won: recorded, the invoice stays paid.
        assert!(dispute(&clara, "dp_won", "open").status.success());
        let out = dispute(&clara, "dp_won", "won");
        assert!(out.status.success(), "{out:?}");
        let clara_after = app.invoice("acc-de-business", "2026-10").await;
        assert_eq!(
            (clara_after.status.as_str(), clara_after.amount_due.as_str()),
            ("paid", "0.00")
        );
        // Lost: 5.00 owed again, collected from now; told twice, it counts once.
        let out = dispute(&bob, "dp_lost", "lost");
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["effect"], "reopen");
        assert_eq!(v["invoice_status"], "unpaid");
        assert_eq!(v["amount_due"], "5.00");
        // The account is told, once.
        let told: Vec<_> = app
            .outbox()
            .await
            .into_iter()
            .filter(|e| e.1 == "payment_disputed")
            .collect();
        assert_eq!(
            told,
            vec![(
                "acc-fr-business".to_string(),
                "payment_disputed".to_string(),
                "payment_disputed:dp_lost".to_string()
            )]
        );
        let again = dispute(&bob, "dp_lost", "lost");
        let w: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
        assert_eq!(w["effect"], "nothing");
        assert_eq!(w["amount_due"], "5.00");
        // A closed dispute does not change (exit 4); nor is it ever a credit note.
        assert_eq!(dispute(&bob, "dp_lost", "won").status.code(), Some(4));
        // Never more than the gateway collected on the invoice.
        let too_much = app.cli(&[
            "payment",
            "dispute",
            "--invoice",
            &clara,
            "--amount",
            "7.21",
            "--stripe-dispute",
            "dp_big",
            "--now",
            CREDITED,
        ]);
        assert_eq!(too_much.status.code(), Some(4), "{too_much:?}");
        assert_eq!(app.count("credit_notes").await, 0);
        assert_eq!(
            app.outbox()
                .await
                .iter()
                .filter(|e| e.1 == "payment_disputed")
                .count(),
            1,
            "told once, however often the dispute is recorded"
        );
        // The next collect charges the 5.00 again.
        let before = fake.charges_created();
        app.run(JobName::Collect, "2026-11-10T10:00:00Z").await;
        assert_eq!(fake.charges_created(), before + 1);
        let b = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!((b.status.as_str(), b.amount_due.as_str()), ("paid", "0.00"));
    }
);

both_stores!(
    a_referral_reward_shrinks_by_the_credited_share_never_below_zero,
    |app: TestApp| async move {
        app.import_fixture(billrun::import::ImportKind::Catalog, "catalog.csv")
            .await;
        app.import_csv(
            billrun::import::ImportKind::Accounts,
            "accounts.csv",
            "id,email,name,company,address,country,vat_number,language,created_at,referred_by
acc-r,rita@example.com,Rita Referrer,,\"1 rue A, Paris\",FR,,fr,2025-06-01T00:00:00Z,
acc-i,ines@example.com,Inès Invitée,,\"2 rue B, Lyon\",FR,,fr,2026-09-15T00:00:00Z,acc-r
",
        )
        .await
        .unwrap();
        app.import_csv(
            billrun::import::ImportKind::Apps,
            "apps.csv",
            "id,name,account_id\napp-i,ines-shop,acc-i\n",
        )
        .await
        .unwrap();
        app.import_csv(
            billrun::import::ImportKind::Usage,
            "usage.csv",
            "id,app_id,kind,item,quantity,started_at,ended_at\nu-i,app-i,container,M,1,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z\n",
        )
        .await
        .unwrap();
        app.set_pm("acc-i", "card", "pm_card_visa", "2026-09-15T00:00:00Z")
            .await;
        app.run(JobName::Invoice, INVOICED).await;
        app.run(JobName::Collect, COLLECT).await;
        let rewards = billrun::store::collection::rewards_of(app.db(), "acc-r")
            .await
            .unwrap();
        assert_eq!(rewards.len(), 1, "the invitee's payment earned a reward");
        let earned = rewards[0].amount_minor;
        let inv = app.invoice("acc-i", "2026-10").await;
        let base = billrun::core::money::parse_major(&inv.subtotal).unwrap();
        assert_eq!(
            earned,
            base / 5,
            "20 % of what the invitee paid, excluding VAT"
        );
        // Half the invoice credited: the reward is halved; nothing of it was used yet.
        issue(
            &app,
            &request(
                inv.number.as_deref().unwrap(),
                CreditRequest::Amount(base / 2),
                RefundMethod::Credit,
            ),
        )
        .await;
        let r = &billrun::store::collection::rewards_of(app.db(), "acc-r")
            .await
            .unwrap()[0];
        assert_eq!(r.amount_minor, earned, "what was earned is kept as history");
        assert_eq!(r.remaining_minor, earned - earned / 2);
        // The rest credited: nothing remains, never below zero.
        issue(
            &app,
            &request(
                inv.number.as_deref().unwrap(),
                CreditRequest::Full,
                RefundMethod::Credit,
            ),
        )
        .await;
        let r = &billrun::store::collection::rewards_of(app.db(), "acc-r")
            .await
            .unwrap()[0];
        assert_eq!(r.remaining_minor, 0);
        ledger_balances(&app, "acc-i").await;
    }
);

both_stores!(
    en_16931_a_mixed_paid_invoice_is_refunded_as_it_was_paid_and_its_stored_credit_note_passes_the_checker,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        app.seed_fixtures().await;
        // Bob (35.65) has 10.00 of credit and a card: the credit pays first, the card the rest.
        app.add_credit("acc-fr-business", 1000, "PAYPAL-B", "2026-10-15T00:00:00Z")
            .await;
        app.set_pm("acc-fr-business", "card", "pm_card_visa", "2026-10-01T00:00:00Z")
            .await;
        app.run(JobName::Invoice, INVOICED).await;
        app.run(JobName::Collect, COLLECT).await;
        let inv = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(
            (inv.status.as_str(), inv.credit_applied.as_str(), inv.amount_paid.as_str()),
            ("paid", "10.00", "25.65")
        );
        let cn = issue(
            &app,
            &request(
                inv.number.as_deref().unwrap(),
                CreditRequest::Full,
                RefundMethod::Auto,
            ),
        )
        .await;
        // `auto`: back as it was paid, in proportion, to the cent.
        assert_eq!(cn.total.minor, 3565);
        assert_eq!(
            (cn.refund.to_credit.minor, cn.refund.to_payment_method.minor),
            (1000, 2565)
        );
        assert_eq!(fake.refunds().len(), 1);
        assert_eq!(fake.refunds()[0]["amount"], serde_json::json!(2565));
        ledger_balances(&app, "acc-fr-business").await;
        assert_eq!(
            billrun::store::collection::credit_balance(app.db(), "acc-fr-business")
                .await
                .unwrap(),
            1000
        );
        // The PDF stored for it is a Factur-X credit note (type 381) the official checker
        // passes at EN 16931.
        let (pdf, _) = billrun::store::credit_notes::document(app.db(), cn.id.unwrap().0)
            .await
            .unwrap()
            .unwrap();
        let path = app.dir.path().join("credit-note.pdf");
        std::fs::write(&path, &pdf).unwrap();
        let results = crate::facturx::check(&[path], false);
        assert_eq!(results.len(), 1, "{results:#?}");
        assert!(results[0].1.is_empty(), "{results:#?}");
    }
);

both_stores!(
    stripe_refunds_a_refund_stripe_accepted_as_pending_is_settled_by_its_charge_refunded_event,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app).await;
        app.run(JobName::Collect, COLLECT).await;
        let inv = app.invoice("acc-fr-business", "2026-10").await;
        let pi = inv.attempts[0].payment_intent.clone().unwrap();
        let cn = issue(
            &app,
            &request(
                inv.number.as_deref().unwrap(),
                CreditRequest::Amount(1000),
                RefundMethod::Gateway,
            ),
        )
        .await;
        // As Stripe answers a refund it pays out later (a SEPA debit's, say): `pending`.
        billrun::with_db!(app.db(), p => sqlx::query("UPDATE refunds SET status = 'pending', settled_at = NULL")
            .execute(p).await.map(|_| ()))
        .unwrap();
        let status = |app: &TestApp| {
            let number = cn.number.clone().unwrap();
            let db = app.db().clone();
            async move {
                let row = billrun::store::credit_notes::find(&db, &number)
                    .await
                    .unwrap()
                    .unwrap();
                billrun::store::credit_notes::load_document(&db, &row)
                    .await
                    .unwrap()
                    .refund
                    .status
            }
        };
        assert_eq!(status(&app).await, RefundStatus::Pending);
        // Stripe's `charge.refunded` (exported from the dashboard and replayed) settles it.
        let file = app.dir.path().join("events.ndjson");
        let event = serde_json::json!({
            "id": "evt_refunded", "object": "event", "type": "charge.refunded",
            "created": 1_795_000_000, "livemode": false,
            "data": {"object": {"id": "ch_1", "object": "charge", "amount": 3565,
                "amount_refunded": cn.total.minor, "payment_intent": pi}},
        });
        std::fs::write(&file, format!("{event}\n")).unwrap();
        let out = app.cli(&[
            "webhooks",
            "replay",
            "--from",
            file.to_str().unwrap(),
            "--now",
            CREDITED,
        ]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(status(&app).await, RefundStatus::Succeeded);
    }
);

/// A credit note of 10.00 (excluding VAT) refunded to the card of acc-fr-business, whose refund
/// Stripe answers `failed` (Stripe API "The Refund object": `failure_reason`
/// `expired_or_canceled_card`) when the collect job asks it again: the collect run reports it.
/// Returns (credit note number, amount refunded in minor units).
async fn failed_refund(app: &mut TestApp, fake: &FakeStripe) -> (String, i64) {
    app.use_stripe(fake);
    app.env.jobs.collect.settings.transient_tries = 1;
    invoiced(app).await;
    app.run(JobName::Collect, COLLECT).await;
    let number = number_of(app, "acc-fr-business").await;
    // No answer when it is issued (a 500), then `failed` when collect asks again.
    fake.fail_next(1, 500);
    let cn = issue(
        app,
        &request(&number, CreditRequest::Amount(1000), RefundMethod::Gateway),
    )
    .await;
    assert_eq!(cn.refund.status, RefundStatus::Unknown);
    fake.fail_next_refunds(1, "expired_or_canceled_card");
    let r = app.run(JobName::Collect, "2026-11-11T07:00:00Z").await;
    assert_eq!(r.failures.len(), 1, "{:#?}", r.failures);
    assert!(
        r.failures[0].error.starts_with("failed"),
        "{:#?}",
        r.failures
    );
    let cn_number = cn.number.unwrap();
    assert_eq!(show(app, &cn_number)["refund"]["status"], "failed");
    (cn_number, cn.total.minor)
}

fn show(app: &TestApp, number: &str) -> serde_json::Value {
    let out = app.cli(&["credit-notes", "show", number, "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn reroute(app: &TestApp, number: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "credit-notes",
        "refund",
        number,
        "--now",
        "2026-11-12T10:00:00Z",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    app.cli(&args)
}

// A failed refund given to the prepaid credit: the balance rises by exactly its amount, the
// ledger balances, the credit note shows where it went, collect has nothing left to report,
// a second run is refused (exit 4), and the FEC (article A47 A-1 of the LPF) books it once,
// 411 debit / 4191 credit on the day it was re-routed, every entry balanced.
both_stores!(
    stripe_refund_failed_is_rerouted_to_credit_once_and_booked_in_the_fec_lpf_a47_a_1,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        let (number, amount) = failed_refund(&mut app, &fake).await;
        let before = billrun::store::collection::credit_balance(app.db(), "acc-fr-business")
            .await
            .unwrap();
        let out = reroute(
            &app,
            &number,
            &["--to", "credit", "--reason", "Carte clôturée"],
        );
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["refunds"][0]["status"], "rerouted", "{v}");
        let after = billrun::store::collection::credit_balance(app.db(), "acc-fr-business")
            .await
            .unwrap();
        assert_eq!(after - before, amount);
        assert_eq!(
            v["credit_balance"],
            serde_json::json!(billrun::core::money::format_minor(after))
        );
        ledger_balances(&app, "acc-fr-business").await;
        // The credit note shows it settled, and where it went.
        let cn = show(&app, &number);
        assert_eq!(cn["refund"]["status"], "succeeded", "{cn}");
        let r = &cn["refund"]["rerouted"][0];
        assert_eq!(r["to"], "credit", "{cn}");
        assert_eq!(r["reason"], "Carte clôturée");
        assert_eq!(
            r["amount"],
            serde_json::json!(billrun::core::money::format_minor(amount))
        );
        let text = app.cli(&["credit-notes", "show", &number]);
        assert!(
            String::from_utf8_lossy(&text.stdout).contains("Re-routed"),
            "{text:?}"
        );
        // The timeline says so.
        let (n,): (i64,) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT COUNT(*) FROM account_events WHERE account_id = 'acc-fr-business' AND kind = 'credit_note.refund_rerouted'")
            .fetch_one(p).await.unwrap());
        assert_eq!(n, 1);
        // Nothing left for collect to ask or report; Stripe is not asked again.
        let refunds_asked = fake.requests_to("POST", "/v1/refunds").len();
        let r = app.run(JobName::Collect, "2026-11-13T07:00:00Z").await;
        assert!(r.failures.is_empty(), "{:#?}", r.failures);
        assert_eq!(fake.requests_to("POST", "/v1/refunds").len(), refunds_asked);
        // Twice: refused, it is no longer failed; nothing changes.
        let dump = app.dump().await;
        let again = reroute(&app, &number, &["--to", "credit"]);
        assert_eq!(again.status.code(), Some(4), "{again:?}");
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("rerouted"),
            "{again:?}"
        );
        assert_eq!(app.dump().await, dump);

        // The FEC: balanced entries; the re-route booked once, as credit, on its day; no
        // refund through Stripe booked.
        let dir = app.dir.path().join("fec");
        let out = app.cli(&[
            "export",
            "fec",
            "--year",
            "2026",
            "-o",
            dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(dir.join("812345676FEC20261231.txt")).unwrap();
        let col = |name: &str| {
            billrun::core::fec::COLUMNS
                .iter()
                .position(|c| *c == name)
                .unwrap()
        };
        let cents = |s: &str| -> i64 {
            let (u, c) = s.split_once(',').unwrap();
            u.parse::<i64>().unwrap() * 100 + c.parse::<i64>().unwrap()
        };
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .map(|l| l.split('\t').collect())
            .collect();
        let mut entries: std::collections::BTreeMap<&str, i64> = Default::default();
        for r in &rows {
            *entries.entry(r[col("EcritureNum")]).or_default() +=
                cents(r[col("Debit")]) - cents(r[col("Credit")]);
        }
        assert!(entries.values().all(|net| *net == 0), "{entries:?}");
        let lib = format!("Avoir {number} rendu en crédit prépayé");
        let rerouted: Vec<&Vec<&str>> = rows
            .iter()
            .filter(|r| r[col("EcritureLib")].starts_with(&lib))
            .collect();
        assert_eq!(rerouted.len(), 2, "{text}");
        for r in &rerouted {
            assert_eq!(r[col("EcritureDate")], "20261112", "{r:?}");
            assert_eq!(r[col("CompAuxNum")], "acc-fr-business", "{r:?}");
        }
        let net = |account: &str| -> i64 {
            rerouted
                .iter()
                .filter(|r| r[col("CompteNum")] == account)
                .map(|r| cents(r[col("Debit")]) - cents(r[col("Credit")]))
                .sum()
        };
        assert_eq!(net("411000"), amount);
        assert_eq!(net("419100"), -amount);
        assert!(
            !rows
                .iter()
                .any(|r| r[col("EcritureLib")].contains(&number)
                    && r[col("CompteNum")] == "511100"),
            "{text}"
        );
    }
);

// A failed refund paid outside billrun (a bank transfer): recorded with its reason, no ledger
// row, no FEC entry (as `--refund none`); a dry-run first changes no table.
both_stores!(
    stripe_refund_failed_is_recorded_as_paid_outside_billrun_and_a_dry_run_changes_nothing,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        let (number, amount) = failed_refund(&mut app, &fake).await;
        // `--to none` says how it was paid.
        let out = reroute(&app, &number, &["--to", "none"]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let before = app.dump().await;
        let out = reroute(
            &app,
            &number,
            &["--to", "none", "--reason", "Virement du 12/11", "--dry-run"],
        );
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["dry_run"], true);
        assert_eq!(v["refunds"][0]["status"], "failed", "{v}");
        assert_eq!(app.dump().await, before, "a dry-run changes nothing");
        let ledger = app.count("credit_ledger").await;
        let out = reroute(
            &app,
            &number,
            &["--to", "none", "--reason", "Virement du 12/11"],
        );
        assert!(out.status.success(), "{out:?}");
        assert_eq!(app.count("credit_ledger").await, ledger);
        let cn = show(&app, &number);
        assert_eq!(cn["refund"]["status"], "succeeded", "{cn}");
        let r = &cn["refund"]["rerouted"][0];
        assert_eq!(
            (r["to"].as_str(), r["reason"].as_str()),
            (Some("none"), Some("Virement du 12/11"))
        );
        assert_eq!(
            r["amount"],
            serde_json::json!(billrun::core::money::format_minor(amount))
        );
        let again = reroute(&app, &number, &["--to", "credit"]);
        assert_eq!(again.status.code(), Some(4), "{again:?}");
    }
);

// A refund that succeeded is done: refused (exit 4), naming its status; nothing changes.
both_stores!(
    stripe_refund_a_succeeded_refund_cannot_be_rerouted,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        app.use_stripe(&fake);
        invoiced(&app).await;
        app.run(JobName::Collect, COLLECT).await;
        let number = number_of(&app, "acc-fr-business").await;
        let cn = issue(
            &app,
            &request(&number, CreditRequest::Amount(1000), RefundMethod::Gateway),
        )
        .await;
        assert_eq!(cn.refund.status, RefundStatus::Succeeded);
        let before = app.dump().await;
        let out = reroute(&app, cn.number.as_deref().unwrap(), &["--to", "credit"]);
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("succeeded"),
            "{out:?}"
        );
        assert_eq!(app.dump().await, before);
    }
);
