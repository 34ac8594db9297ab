//! The documents step: invoices are committed first, their PDFs rendered after (chained by
//! `jobs::run`), and a PDF lost between the two (a process that died) is rendered later, the
//! same bytes, by the next invoice run, by the deliver job before the email, or on demand.

use base64::Engine as _;
use billrun::jobs::{Count, JobName};

use crate::common::smtp::SmtpServer;
use crate::common::{TestApp, opts};

/// (invoice number, SHA-256 of its stored PDF), by number.
async fn stored(app: &TestApp) -> Vec<(String, String)> {
    billrun::with_db!(app.db(), p => sqlx::query_as(
        "SELECT i.number, d.sha256 FROM invoices i JOIN invoice_documents d ON d.invoice_id = i.id
         ORDER BY i.number")
        .fetch_all(p).await.unwrap())
}

/// Removes the stored PDFs of the first `n` invoices (by id), as a process that died after the
/// invoices' commit and before its documents step leaves them; their ids and numbers.
async fn lose_pdfs(app: &TestApp, n: i64) -> Vec<(i64, String)> {
    let lost: Vec<(i64, String)> = billrun::with_db!(app.db(), p => sqlx::query_as(
        "SELECT id, number FROM invoices ORDER BY id LIMIT $1").bind(n).fetch_all(p).await.unwrap());
    for (id, _) in &lost {
        billrun::with_db!(app.db(), p => sqlx::query("DELETE FROM invoice_documents WHERE invoice_id = $1")
            .bind(id).execute(p).await.unwrap().rows_affected());
    }
    lost
}

both_stores!(
    every_issued_invoice_has_its_pdf_once_the_invoice_job_ends,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        let report = app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        let invoiced = report.counts[&Count::Invoiced];
        assert!(invoiced >= 3, "{:?}", report.counts);
        assert_eq!(app.count("invoice_documents").await as u64, invoiced);
        // A normal run says nothing of its PDFs: they are its invoices'.
        assert!(report.notes.is_empty(), "{:?}", report.notes);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
    }
);

both_stores!(
    a_pdf_lost_before_the_documents_step_is_rendered_by_the_next_invoice_run_with_the_same_bytes,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        let before = stored(&app).await;
        lose_pdfs(&app, 2).await;
        assert_eq!(stored(&app).await.len(), before.len() - 2);

        // A dry-run says so and writes nothing.
        let mut dry = opts("2026-11-02T06:00:00Z");
        dry.dry_run = true;
        let plan = app.run_with(JobName::Invoice, dry).await.unwrap();
        assert!(
            plan.notes
                .iter()
                .any(|n| n.starts_with("2 issued invoice(s) have no PDF yet")),
            "{:?}",
            plan.notes
        );
        assert_eq!(stored(&app).await.len(), before.len() - 2);

        // The next run (nothing left to bill) renders them: the bytes issued the first time.
        let report = app.run(JobName::Invoice, "2026-11-02T06:00:00Z").await;
        assert_eq!(
            report.counts.get(&Count::Invoiced),
            None,
            "{:?}",
            report.counts
        );
        assert!(
            report.notes.iter().any(|n| n
                == "rendered the PDFs of 2 invoice(s) issued before this run (a run stopped before rendering them)"),
            "{:?}",
            report.notes
        );
        assert_eq!(stored(&app).await, before);
        // And once only.
        let again = app.run(JobName::Invoice, "2026-11-02T07:00:00Z").await;
        assert!(again.notes.is_empty(), "{:?}", again.notes);
    }
);

both_stores!(
    a_scale_out_range_renders_the_pdfs_of_its_own_accounts_only,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        let before = stored(&app).await;
        let lost = lose_pdfs(&app, 100).await;
        assert_eq!(stored(&app).await, Vec::<(String, String)>::new());
        let mut o = opts("2026-11-02T06:00:00Z");
        o.range = Some(("acc-de".into(), "acc-de~".into()));
        let report = app.run_with(JobName::Invoice, o).await.unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let after = stored(&app).await;
        let de: Vec<String> = billrun::with_db!(app.db(), p => sqlx::query_scalar(
            "SELECT number FROM invoices WHERE account_id LIKE 'acc-de%' ORDER BY number")
            .fetch_all(p).await.unwrap());
        assert!(!de.is_empty() && de.len() < lost.len(), "{de:?}");
        assert_eq!(after.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), de);
        assert!(after.iter().all(|d| before.contains(d)));
    }
);

both_stores!(
    an_invoice_email_due_before_its_pdf_is_stored_carries_the_pdf_rendered_then,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        app.seed_fixtures().await;
        // The invoice job alone, as a process that died before its documents step.
        let billed = billrun::jobs::invoice::run(&app.env, &opts("2026-11-01T06:00:00Z"))
            .await
            .unwrap();
        let invoiced = billed.counts[&Count::Invoiced];
        assert_eq!(app.count("invoice_documents").await, 0);

        let sent = app.run(JobName::Deliver, "2026-11-01T07:00:00Z").await;
        assert_eq!(sent.counts.get(&Count::Sent), Some(&invoiced), "{sent:#?}");
        assert_eq!(app.count("invoice_documents").await as u64, invoiced);
        let messages = smtp.messages();
        assert_eq!(messages.len() as u64, invoiced);
        for m in &messages {
            let pdf = m["parts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["content_type"] == "application/pdf")
                .unwrap_or_else(|| panic!("no PDF attached: {}", m["Subject"]));
            let number = pdf["filename"]
                .as_str()
                .unwrap()
                .strip_prefix("invoice-")
                .and_then(|f| f.strip_suffix(".pdf"))
                .unwrap()
                .to_string();
            let attached = base64::engine::general_purpose::STANDARD
                .decode(pdf["base64"].as_str().unwrap())
                .unwrap();
            let sha: String = billrun::with_db!(app.db(), p => sqlx::query_scalar(
                "SELECT d.sha256 FROM invoice_documents d JOIN invoices i ON i.id = d.invoice_id
                 WHERE i.number = $1").bind(&number).fetch_one(p).await.unwrap());
            assert_eq!(billrun::store::documents::sha256_hex(&attached), sha);
        }
        // The documents step finds nothing left to render.
        let rendered = billrun::jobs::documents::run(&app.env, &opts("2026-11-01T08:00:00Z"))
            .await
            .unwrap();
        assert_eq!(rendered.pdfs, 0);
    }
);

both_stores!(
    invoices_pdf_renders_and_stores_a_pdf_lost_before_the_documents_step,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        let before = stored(&app).await;
        let lost = lose_pdfs(&app, 1).await;
        let (_, number) = &lost[0];
        let out = app.cli(&["invoices", "pdf", number, "-o", "lost.pdf"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let written = std::fs::read(app.dir.path().join("lost.pdf")).unwrap();
        let sha = billrun::store::documents::sha256_hex(&written);
        assert!(before.contains(&(number.clone(), sha)), "the bytes issued");
        assert_eq!(stored(&app).await, before, "stored again");
    }
);
