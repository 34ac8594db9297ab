//! Email delivery from the outbox to a real SMTP server (aiosmtpd), on both stores.

use crate::common::smtp::SmtpServer;
use crate::common::{TestApp, opts};
use base64::Engine as _;
use billrun::jobs::{Count, JobName, JobReport};

async fn billed_and_collected(app: &TestApp) {
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
    app.set_pm(
        "acc-de-business",
        "card",
        "pm_card_visa_chargeDeclinedInsufficientFunds",
        "2026-10-02T00:00:00Z",
    )
    .await;
    app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
    app.run(JobName::Collect, "2026-11-01T07:00:00Z").await;
}

async fn deliver(app: &TestApp, now: &str) -> JobReport {
    app.run(JobName::Deliver, now).await
}

async fn statuses(app: &TestApp) -> Vec<(String, i64)> {
    billrun::store::delivery::counts(app.db()).await.unwrap()
}

both_stores!(
    sends_each_email_with_its_parts_and_the_stored_pdf,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        billed_and_collected(&app).await;
        let queued = app.count("outbox").await;
        assert_eq!(
            queued,
            6 + 5 + 1,
            "6 invoices, 5 receipts, 1 payment failure"
        );
        let r = deliver(&app, "2026-11-01T08:00:00Z").await;
        assert_eq!(
            r.counts.get(&Count::Sent),
            Some(&(queued as u64)),
            "{:#?}",
            r
        );
        assert_eq!(statuses(&app).await, vec![("sent".to_string(), queued)]);
        let messages = smtp.messages();
        assert_eq!(messages.len(), queued as usize);

        let bob = app.invoice("acc-fr-business", "2026-10").await;
        let number = bob.number.clone().unwrap();
        let issued = messages
            .iter()
            .find(|m| {
                m["To"].as_str().unwrap().contains("bob@example.com")
                    && m["Subject"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("Votre facture {number}"))
            })
            .expect("bob's invoice email");
        assert!(
            issued["From"]
                .as_str()
                .unwrap()
                .contains("billing@nuage.example")
        );
        let parts = issued["parts"].as_array().unwrap();
        let text = parts
            .iter()
            .find(|p| p["content_type"] == "text/plain")
            .unwrap()["text"]
            .as_str()
            .unwrap();
        let html = parts
            .iter()
            .find(|p| p["content_type"] == "text/html")
            .unwrap()["text"]
            .as_str()
            .unwrap();
        assert!(
            text.contains(&number) && text.contains("35,65"),
            "French, with the amount: {text}"
        );
        assert!(html.contains(&number), "{html}");
        let pdf = parts
            .iter()
            .find(|p| p["content_type"] == "application/pdf")
            .expect("the PDF is attached");
        assert_eq!(pdf["filename"], format!("invoice-{number}.pdf"));
        let attached = base64::engine::general_purpose::STANDARD
            .decode(pdf["base64"].as_str().unwrap())
            .unwrap();
        let (stored, sha) = billrun::store::documents::get(app.db(), bob.id.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(attached, stored, "byte-identical to the stored document");
        assert_eq!(billrun::store::documents::sha256_hex(&attached), sha);

        // The Message-ID is the one stored on the row, stable across retries.
        let ids: Vec<(String,)> = billrun::with_db!(app.db(), p => sqlx::query_as("SELECT message_id FROM outbox ORDER BY id").fetch_all(p).await.unwrap());
        for m in &messages {
            assert!(
                ids.iter()
                    .any(|(id,)| Some(id.as_str()) == m["Message-ID"].as_str()),
                "{}",
                m["Message-ID"]
            );
        }
        // The failed payment email says why and when the next try is.
        let failed = messages
            .iter()
            .find(|m| {
                m["To"].as_str().unwrap().contains("clara@example.de")
                    && m["Subject"].as_str().unwrap().starts_with("Payment failed")
            })
            .expect("clara's payment failure email");
        let text = failed["parts"][0]["text"].as_str().unwrap();
        assert!(
            text.contains("Reason: insufficient funds")
                || text.to_lowercase().contains("insufficient funds"),
            "{text}"
        );
        assert!(
            text.contains("2026") && text.contains("try again on"),
            "the retry date: {text}"
        );
        // Nothing is sent twice.
        let again = deliver(&app, "2026-11-01T09:00:00Z").await;
        assert_eq!(again.counts.get(&Count::Sent), None);
        assert_eq!(smtp.messages().len(), queued as usize);
    }
);

both_stores!(
    accounts_are_served_at_once_each_accounts_emails_in_queue_order,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        // Wider than the queue: every email the run may send at once is in flight together.
        app.env.jobs.deliver.settings.concurrency = 16;
        billed_and_collected(&app).await;
        let ids: Vec<(i64,)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT id FROM outbox ORDER BY id").fetch_all(p).await.unwrap());
        let ids: Vec<i64> = ids.into_iter().map(|(id,)| id).collect();
        let r = deliver(&app, "2026-11-01T08:00:00Z").await;
        assert_eq!(r.counts.get(&Count::Sent), Some(&(ids.len() as u64)));
        // The report lists the emails in queue order, whichever account finished first.
        let reported: Vec<i64> = r.deliveries.iter().map(|d| d.outbox_id).collect();
        assert_eq!(reported, ids);
        // The server got each account's emails in the order they were queued: the invoice
        // (with its PDF, the longest to send) before the receipt or the payment failure.
        let claimed: Vec<(i64, String, String)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT id, account_id, message_id FROM outbox ORDER BY id").fetch_all(p).await.unwrap());
        let mut arrived: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for m in smtp.messages() {
            let (id, account, _) = claimed
                .iter()
                .find(|(_, _, mid)| Some(mid.as_str()) == m["Message-ID"].as_str())
                .expect("every message is a queued email");
            arrived.entry(account.clone()).or_default().push(*id);
        }
        let several = arrived.values().filter(|ids| ids.len() > 1).count();
        assert!(several >= 5, "accounts with several emails: {arrived:?}");
        for (account, ids) in &arrived {
            assert!(ids.is_sorted(), "{account}: received {ids:?}");
        }
    }
);

both_stores!(
    a_down_smtp_server_loses_nothing,
    |app: TestApp| async move {
        let mut app = app;
        let port = crate::common::smtp::free_port();
        app.env.smtp_url = Some(billrun::jobs::Secret(format!("smtp://127.0.0.1:{port}")));
        app.env.jobs.deliver.settings.smtp_timeout_seconds = 2;
        billed_and_collected(&app).await;
        let queued = app.count("outbox").await;
        let r = deliver(&app, "2026-11-01T08:00:00Z").await;
        assert_eq!(r.counts.get(&Count::ToRetry), Some(&(queued as u64)));
        assert_eq!(statuses(&app).await, vec![("pending".to_string(), queued)]);
        // Too early for the retry: nothing is tried.
        let smtp = SmtpServer::start_on(port);
        let r = deliver(&app, "2026-11-01T08:00:30Z").await;
        assert!(r.counts.is_empty(), "{:?}", r.counts);
        let r = deliver(&app, "2026-11-01T08:01:00Z").await;
        assert_eq!(r.counts.get(&Count::Sent), Some(&(queued as u64)));
        assert_eq!(smtp.messages().len(), queued as usize);
    }
);

both_stores!(
    a_permanent_rejection_is_marked_failed_with_its_reason,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        app.seed_fixtures().await;
        app.import_csv(billrun::import::ImportKind::Accounts, "a.csv", "id,email,name,company,address,country,vat_number,language,created_at,referred_by\nacc-reject,reject-me@example.com,Rex Reject,,\"1 rue C, Nantes\",FR,,fr,2025-01-01T00:00:00Z,\n").await.unwrap();
        app.import_csv(
            billrun::import::ImportKind::Apps,
            "b.csv",
            "id,name,account_id\napp-rex,rex,acc-reject\n",
        )
        .await
        .unwrap();
        app.import_csv(billrun::import::ImportKind::Usage, "c.csv", "id,app_id,kind,item,quantity,started_at,ended_at\nu-rex,app-rex,container,M,1,2026-10-01T00:00:00Z,2026-10-05T00:00:00Z\n").await.unwrap();
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        let r = deliver(&app, "2026-11-01T08:00:00Z").await;
        assert_eq!(r.counts.get(&Count::Rejected), Some(&1));
        assert_eq!(r.counts.get(&Count::Sent), Some(&6));
        assert_eq!(r.failures.len(), 1);
        let (status, error): (String, Option<String>) = billrun::with_db!(app.db(), p => sqlx::query_as(
        "SELECT status, last_error FROM outbox WHERE to_address = 'reject-me@example.com'").fetch_one(p).await.unwrap());
        assert_eq!(status, "failed");
        assert!(error.as_deref().unwrap().contains("550"), "{error:?}");
    }
);

both_stores!(
    two_deliverers_at_once_send_each_email_once,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        billed_and_collected(&app).await;
        let queued = app.count("outbox").await;
        let (a, b) = tokio::join!(
            app.run_with(JobName::Deliver, opts("2026-11-01T08:00:00Z")),
            app.run_with(JobName::Deliver, opts("2026-11-01T08:00:00Z")),
        );
        let sent = a.unwrap().counts.get(&Count::Sent).copied().unwrap_or(0)
            + b.unwrap().counts.get(&Count::Sent).copied().unwrap_or(0);
        assert_eq!(sent, queued as u64);
        let messages = smtp.messages();
        assert_eq!(messages.len(), queued as usize, "each email once");
        let mut ids: Vec<&str> = messages
            .iter()
            .map(|m| m["Message-ID"].as_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), queued as usize);
    }
);

both_stores!(
    a_dry_run_sends_and_writes_nothing,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        billed_and_collected(&app).await;
        let before = app.dump().await;
        let mut o = opts("2026-11-01T08:00:00Z");
        o.dry_run = true;
        let r = app.run_with(JobName::Deliver, o).await.unwrap();
        assert_eq!(
            r.counts.get(&Count::WouldSend),
            Some(&(app.count("outbox").await as u64))
        );
        assert!(
            r.deliveries.iter().all(|d| !d.subject.is_empty()),
            "{:#?}",
            r.deliveries
        );
        assert_eq!(app.dump().await, before);
        assert!(smtp.messages().is_empty());
    }
);

both_stores!(every_invoice_has_its_document, |app: TestApp| async move {
    app.seed_fixtures().await;
    app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
    assert_eq!(
        app.count("invoice_documents").await,
        app.count("invoices").await
    );
    let out = app.cli(&["invoices", "pdf", "2026-000004", "-o", "bob.pdf"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read(app.dir.path().join("bob.pdf")).unwrap();
    let id = app.invoice("acc-fr-business", "2026-10").await.id.unwrap();
    assert_eq!(
        written,
        billrun::store::documents::get(app.db(), id)
            .await
            .unwrap()
            .unwrap()
            .0
    );
    assert!(written.starts_with(b"%PDF-"));
});

// The stored invoice documents, as text: every line, total and mention, in both languages.
// One snapshot for both stores: the same invoice gives the same document.
both_stores!(
    stored_documents_read_back_as_text,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        for (account, name) in [
            ("acc-fr-business", "document_text_fr"),
            ("acc-de-business", "document_text_en"),
        ] {
            let inv = app.invoice(account, "2026-10").await;
            let (pdf, _) = billrun::store::documents::get(app.db(), inv.id.unwrap())
                .await
                .unwrap()
                .unwrap();
            let path = app.dir.path().join(format!("{name}.pdf"));
            std::fs::write(&path, &pdf).unwrap();
            let check = std::process::Command::new("qpdf")
                .arg("--check")
                .arg(&path)
                .output()
                .expect("qpdf is installed");
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stdout)
            );
            let out = std::process::Command::new("pdftotext")
                .args(["-layout"])
                .arg(&path)
                .arg("-")
                .output()
                .expect("pdftotext is installed");
            let text: String = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| l.trim_end())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n");
            for line in &inv.lines {
                let shown = line.description.split(" (").next().unwrap();
                assert!(text.contains(shown), "{shown} in {text}");
            }
            insta::assert_snapshot!(name, text);
        }
    }
);

/// Sets an outbox row as a deliverer's claim would, held until `until`.
async fn claimed(app: &TestApp, id: i64, until: &str) {
    let until: chrono::DateTime<chrono::Utc> = until.parse().unwrap();
    let n = billrun::with_db!(app.db(), p => sqlx::query(
        "UPDATE outbox SET status = 'sending', claimed_by = 'a-crashed-run', claimed_until = $2 WHERE id = $1")
        .bind(id).bind(until).execute(p).await.unwrap().rows_affected());
    assert_eq!(n, 1);
}

both_stores!(
    a_claim_left_by_a_crashed_run_is_sent_once_it_expires,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        // Pages of two, so that pending and expired claims meet across pages.
        app.env.jobs.deliver.settings.batch_size = 2;
        billed_and_collected(&app).await;
        let queued = app.count("outbox").await;
        let ids: Vec<(i64,)> = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT id FROM outbox ORDER BY id").fetch_all(p).await.unwrap());
        let (expired, held) = (ids[ids.len() / 2].0, ids[ids.len() - 1].0);
        claimed(&app, expired, "2026-11-01T07:59:00Z").await;
        claimed(&app, ids[1].0, "2026-11-01T07:30:00Z").await;
        claimed(&app, held, "2026-11-01T09:00:00Z").await;
        let r = deliver(&app, "2026-11-01T08:00:00Z").await;
        assert_eq!(r.counts.get(&Count::Sent), Some(&(queued as u64 - 1)));
        assert_eq!(
            statuses(&app).await,
            vec![("sending".to_string(), 1), ("sent".to_string(), queued - 1)],
            "the claim still held is left to its holder"
        );
        let r = deliver(&app, "2026-11-01T09:00:01Z").await;
        assert_eq!(r.counts.get(&Count::Sent), Some(&1));
        assert_eq!(smtp.messages().len(), queued as usize, "each email once");
    }
);

both_stores!(
    an_email_kind_billrun_never_wrote_stops_the_run_naming_its_row,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        billed_and_collected(&app).await;
        let (id, account): (i64, String) = billrun::with_db!(app.db(), p => sqlx::query_as(
            "SELECT id, account_id FROM outbox ORDER BY id DESC LIMIT 1").fetch_one(p).await.unwrap());
        billrun::with_db!(app.db(), p => sqlx::query(
            "UPDATE outbox SET kind = 'invoice_lost' WHERE id = (SELECT MAX(id) FROM outbox)")
            .execute(p).await.unwrap().rows_affected());
        let err = app
            .run_with(
                JobName::Deliver,
                crate::common::opts("2026-11-01T08:00:00Z"),
            )
            .await
            .unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains(&format!(
                "outbox row {id} (account {account}): unknown email kind `invoice_lost` in store"
            )),
            "{err}"
        );
        // Read before anything is claimed: no email of that page went out, none is lost.
        assert!(smtp.messages().is_empty());
        let queued = app.count("outbox").await;
        assert_eq!(statuses(&app).await, vec![("pending".to_string(), queued)]);
    }
);
