//! `billrun bench`: the shape of its JSON and the consistency of its counts (never its timings),
//! and the deferred PDFs it renders being the very documents `finalize` would have stored.

use billrun::jobs::{Count, JobName};
use serde_json::Value;

use crate::common::{Store, TestApp};

const STEPS: [&str; 5] = ["import", "invoice", "collect", "pdf", "deliver"];

/// Runs `billrun bench --accounts 50 --format json` (plus `extra`) in `dir`; its JSON report.
fn bench(dir: &std::path::Path, extra: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
        .args(["bench", "--accounts", "50", "--format", "json"])
        .args(extra)
        .env("BILLRUN_DATABASE_URL", "postgres://must-not-be-used")
        .env_remove("BILLRUN_SMTP_URL")
        .current_dir(dir)
        .output()
        .expect("run billrun bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn check_report(r: &Value) {
    let steps = r["steps"].as_array().expect("steps");
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, STEPS);
    // Timings are never compared with a figure, only with each other: every step took time,
    // and its rate is its items over its time.
    let seconds = |s: &Value| -> f64 {
        let seconds = s["seconds"].as_f64().unwrap();
        assert!(seconds > 0.0, "{s}");
        seconds
    };
    for s in steps {
        let rate = s["items"].as_f64().unwrap() / seconds(s);
        assert!(
            (s["items_per_second"].as_f64().unwrap() - rate).abs() <= rate * 1e-9,
            "{s}"
        );
    }
    let items = |name: &str| -> u64 {
        let s = steps.iter().find(|s| s["name"] == name).unwrap();
        s["items"].as_u64().unwrap()
    };
    // The floor statement took time; the ratio is the invoice step's time over it.
    let floor = r["floor_seconds"].as_f64().unwrap();
    assert!(floor > 0.0, "{r}");
    let invoice = steps.iter().find(|s| s["name"] == "invoice").unwrap();
    let ratio = seconds(invoice) / floor;
    assert!(
        (r["invoice_to_floor_ratio"].as_f64().unwrap() - ratio).abs() <= ratio * 1e-9,
        "{r}"
    );
    assert!(r["peak_rss_bytes"].as_u64().unwrap() > 0, "{r}");
    // The commands whose output grows with the platform, each its own process (issue 25 §4).
    let commands: Vec<(&str, i64, u64)> = r["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| {
            (
                c["command"].as_str().unwrap(),
                c["exit_code"].as_i64().unwrap(),
                c["peak_rss_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(commands.len(), 4, "{r}");
    assert!(
        commands[0]
            .0
            .starts_with("run invoice --dry-run --format json")
    );
    assert!(
        commands[1]
            .0
            .starts_with("run invoice --dry-run --format table")
    );
    assert_eq!(commands[2].0, "invoices list --format json");
    assert!(
        commands[3]
            .0
            .starts_with("run collect --dry-run --format json")
    );
    for (command, exit, peak) in &commands {
        assert_eq!(*exit, 0, "{command}");
        assert!(*peak > 1_000_000, "{command}: {peak} bytes");
    }
    // The tests' stores let the bench settle them between steps (a number, not `null`).
    assert!(r["flush_seconds"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(r["accounts"], 50);

    // 50 accounts and their apps and usage, plus the catalog, credits and payment methods.
    assert!(items("import") > 50 * 3, "{r}");
    // Nearly every account has usage to bill; each invoice gets its PDF and its email.
    let invoices = items("invoice");
    assert!((40..=50).contains(&invoices), "{invoices} invoices: {r}");
    assert_eq!(items("pdf"), invoices, "{r}");
    // Every invoice with something due is collected once (one with nothing due is paid at issue).
    assert!(items("collect") <= invoices && items("collect") > 0, "{r}");
    // One "invoice issued" email per invoice, and payment emails on top.
    assert!(items("deliver") >= invoices, "{r}");
    // The floor finds the same invoices, with the same totals.
    assert_eq!(r["floor_invoices"].as_u64().unwrap(), invoices, "{r}");
    assert_eq!(r["floor_matching"].as_u64().unwrap(), invoices, "{r}");
}

#[test]
fn bench_on_a_fresh_embedded_file() {
    let dir = tempfile::tempdir().unwrap();
    let r = bench(dir.path(), &[]);
    assert_eq!(r["store"], "sqlite");
    assert!(dir.path().join("billrun-bench.db").exists());
    check_report(&r);
    // A fresh file each time: the same platform and counts again.
    let again = bench(dir.path(), &[]);
    let counts = |r: &Value| -> Vec<u64> {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["items"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(counts(&again), counts(&r));
}

#[test]
fn until_stops_after_the_step_named() {
    let dir = tempfile::tempdir().unwrap();
    let r = bench(dir.path(), &["--until", "invoice"]);
    let names: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["import", "invoice"]);
    // The floor runs with the invoice step and finds the same invoices.
    let invoices = r["steps"][1]["items"].as_u64().unwrap();
    assert!(invoices >= 40, "{r}");
    assert_eq!(r["floor_matching"].as_u64().unwrap(), invoices, "{r}");
    let r = bench(dir.path(), &["--until", "import"]);
    assert_eq!(r["steps"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(
        r["floor_invoices"], 0,
        "no floor without the invoice step: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_on_postgres_and_refusing_a_store_in_use() {
    let app = TestApp::new(Store::Postgres).await;
    let r = bench(app.dir.path(), &["--database-url", &app.url]);
    assert_eq!(r["store"], "postgres");
    check_report(&r);
    // The store now holds a platform: a second run refuses it (bad usage, exit code 2).
    let out = app.cli(&["bench", "--accounts", "50", "--database-url", &app.url]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_without_the_right_to_checkpoint_times_the_steps_unsettled() {
    use sqlx::Connection;
    // A role that is no superuser and lacks `pg_checkpoint`, owning a database of its own.
    let role = format!(
        "billrun_plain_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let mut admin = sqlx::PgConnection::connect(&crate::common::pg_admin_url())
        .await
        .unwrap();
    let admin_sql = async |admin: &mut sqlx::PgConnection, statements: [String; 2]| {
        for sql in statements {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *admin)
                .await
                .unwrap();
        }
    };
    admin_sql(
        &mut admin,
        [
            format!("CREATE ROLE {role} LOGIN"),
            format!("CREATE DATABASE {role} OWNER {role}"),
        ],
    )
    .await;
    let mut url = url::Url::parse(&crate::common::pg_admin_url()).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(None).unwrap();
    url.set_path(&role);
    let dir = tempfile::tempdir().unwrap();
    let r = bench(
        dir.path(),
        &["--database-url", url.as_str(), "--until", "invoice"],
    );
    admin_sql(
        &mut admin,
        [
            format!("DROP DATABASE {role} WITH (FORCE)"),
            format!("DROP ROLE {role}"),
        ],
    )
    .await;
    // CHECKPOINT was refused: the run went on, and says its steps were not settled.
    assert_eq!(r["flush_seconds"], Value::Null, "{r}");
    assert_eq!(r["floor_matching"], r["floor_invoices"], "{r}");
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["import", "invoice"]);
}

both_stores!(
    pdfs_rendered_after_collection_are_the_invoices_as_issued,
    |app: TestApp| async move {
        // The same platform billed twice: the invoice job with its documents step (as
        // `jobs::run` chains them), and the invoice job alone, its PDFs rendered by the
        // documents step only after collection changed the invoices (credit applied, payments).
        let deferred = TestApp::new(app.store).await;
        for a in [&app, &deferred] {
            a.seed_fixtures().await;
            a.set_pm(
                "acc-fr-consumer",
                "card",
                "pm_card_visa",
                "2026-10-01T00:00:00Z",
            )
            .await;
            a.set_pm(
                "acc-de-business",
                "sepa_debit",
                "pm_sepa_debit_ok",
                "2026-10-01T00:00:00Z",
            )
            .await;
            a.add_credit(
                "acc-fr-business",
                500_000,
                "PAYPAL-1",
                "2026-10-20T00:00:00Z",
            )
            .await;
        }
        let env = deferred.env.clone();
        let opts = crate::common::opts("2026-11-01T06:00:00Z");
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        let report = billrun::jobs::invoice::run(&env, &opts).await.unwrap();
        assert!(report.counts[&Count::Invoiced] >= 3, "{:?}", report.counts);
        assert_eq!(deferred.count("invoice_documents").await, 0);
        deferred.run(JobName::Collect, "2026-11-01T07:00:00Z").await;
        let rendered = billrun::jobs::documents::run(&env, &opts).await.unwrap();
        assert!(rendered.failures.is_empty(), "{:?}", rendered.failures);
        assert_eq!(rendered.pdfs, report.counts[&Count::Invoiced]);
        let again = billrun::jobs::documents::run(&env, &opts).await.unwrap();
        assert_eq!(again.pdfs, 0, "every PDF stored once");
        let rendered = rendered.pdfs;

        let docs = |a: &TestApp| {
            let db = a.db().clone();
            async move {
                let rows: Vec<(String, String)> = billrun::with_db!(&db, p => sqlx::query_as(
                    "SELECT i.number, d.sha256 FROM invoices i JOIN invoice_documents d ON d.invoice_id = i.id ORDER BY i.number")
                    .fetch_all(p).await.unwrap());
                rows
            }
        };
        let (inline, later) = (docs(&app).await, docs(&deferred).await);
        assert_eq!(inline.len() as u64, rendered);
        assert_eq!(inline, later);
    }
);

both_stores!(
    issued_views_read_a_page_as_each_invoice_alone,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        // The invoice job alone: its invoices without their PDFs yet.
        billrun::jobs::invoice::run(&app.env, &crate::common::opts("2026-11-01T06:00:00Z"))
            .await
            .unwrap();
        let db = app.db().clone();
        let ids: Vec<(i64, String)> = billrun::with_db!(&db, p => sqlx::query_as(
            "SELECT id, account_id FROM invoices ORDER BY id").fetch_all(p).await.unwrap());
        assert!(ids.len() >= 3, "{ids:?}");
        // A referral discount on the second invoice; the first's balance brought to the third.
        let at: chrono::DateTime<chrono::Utc> = "2026-11-01T06:00:00Z".parse().unwrap();
        billrun::with_db!(&db, p => {
            sqlx::query("INSERT INTO invoice_discounts (invoice_id, position, description, amount_minor)
                VALUES ($1, 1, 'Referral reward', 123)").bind(ids[1].0).execute(p.reborrow()).await.unwrap();
            sqlx::query("INSERT INTO balance_transfers (from_invoice_id, account_id, amount_minor, to_invoice_id, at)
                VALUES ($1, $2, 45, $3, $4)").bind(ids[0].0).bind(&ids[0].1).bind(ids[2].0).bind(at)
                .execute(p).await.unwrap();
        });
        let rows = billrun::store::documents::missing(&db, None, 0, 1000)
            .await
            .unwrap();
        assert_eq!(rows.len(), ids.len());
        let page = billrun::store::invoice_document::load_issued_page(&db, &rows)
            .await
            .unwrap();
        let mut alone = Vec::new();
        for row in &rows {
            let mut one =
                billrun::store::invoice_document::load_issued_page(&db, std::slice::from_ref(row))
                    .await
                    .unwrap();
            assert_eq!(one.len(), 1);
            alone.push(one.remove(0));
        }
        assert_eq!(page, alone);
        for (view, row) in page.iter().zip(&rows) {
            let (lines,): (i64,) = billrun::with_db!(&db, p => sqlx::query_as(
                "SELECT COUNT(*) FROM invoice_lines WHERE invoice_id = $1").bind(row.id).fetch_one(p).await.unwrap());
            assert_eq!(view.lines.len() as i64, lines, "{}", row.number);
            assert!(lines > 0);
            assert_eq!(view.number.as_deref(), Some(row.number.as_str()));
        }
        assert_eq!(page[1].discounts.len(), 1);
        assert_eq!(page[1].discounts[0].description, "Referral reward");
        assert_eq!(page[2].brought_forward.len(), 1);
        assert_eq!(page[2].brought_forward[0].invoice_number, rows[0].number);
        assert!(page[0].discounts.is_empty() && page[0].brought_forward.is_empty());
        assert!(
            page[3..]
                .iter()
                .all(|v| v.discounts.is_empty() && v.brought_forward.is_empty())
        );
    }
);
