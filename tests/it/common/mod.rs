//! The test harness: the app built against its real stores, a fresh database per test
//! (PostgreSQL at 127.0.0.1:5432, cloned from a template migrated once, and an SQLite file),
//! a driver that runs jobs at a given time, and a dump of every table to prove that a run
//! changed nothing.
#![allow(dead_code)]

pub mod fake_stripe;
pub mod fake_vies;
pub mod http;
pub mod smtp;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use billrun::config::JobsConfig;
use billrun::import::read::Format;
use billrun::import::{ImportKind, ImportReport};
use billrun::jobs::{self, Env, JobName, JobReport, RunOptions};
use billrun::store::Db;
use chrono::{DateTime, Utc};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Postgres,
    Sqlite,
}

/// Where the PostgreSQL server is; tests create and drop their own databases on it.
pub fn pg_admin_url() -> String {
    std::env::var("BILLRUN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn pg_base_url() -> String {
    let admin = pg_admin_url();
    admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The migrated, empty database every PostgreSQL test database is a copy of, by name.
static PG_TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// The advisory lock under which a process builds the template: test binaries of other
/// checkouts may share the server and start at the same time.
const PG_TEMPLATE_LOCK: i64 = 0x6269_6c6c_7275_6e00; // "billrun\0"

/// `billrun_template_<hash>`: the hash covers every PostgreSQL migration (version,
/// description, checksum of its SQL) the app embeds, so a changed or added migration gets a
/// template of its own and a stale one is never used.
fn pg_template_name() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for m in billrun::store::PG_MIGRATOR.iter() {
        h.update(m.version.to_le_bytes());
        h.update(m.description.as_bytes());
        h.update([0]);
        h.update(&m.checksum);
    }
    let hash: String = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("billrun_template_{hash}")
}

/// The template's name, made once per test process: created and migrated if no process made
/// it before (`IS_TEMPLATE` marks a finished one), then closed to connections, which
/// `CREATE DATABASE … TEMPLATE` needs.
async fn pg_template() -> &'static str {
    PG_TEMPLATE
        .get_or_init(|| async {
            let name = pg_template_name();
            let mut admin = pg_admin().await;
            let admin_sql = async |admin: &mut sqlx::PgConnection, sql: String| {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(admin)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            };
            admin_sql(
                &mut admin,
                format!("SELECT pg_advisory_lock({PG_TEMPLATE_LOCK})"),
            )
            .await;
            let ready: Option<(bool,)> =
                sqlx::query_as("SELECT datistemplate FROM pg_database WHERE datname = $1")
                    .bind(&name)
                    .fetch_optional(&mut admin)
                    .await
                    .expect("look for the template");
            if ready != Some((true,)) {
                // Absent, or left half-made by a process that died: (re)build it.
                admin_sql(
                    &mut admin,
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await;
                admin_sql(&mut admin, format!("CREATE DATABASE {name}")).await;
                let db = Db::connect_and_migrate(&format!("{}/{name}", pg_base_url()))
                    .await
                    .expect("migrate the template database");
                db.close().await;
                admin_sql(
                    &mut admin,
                    format!("ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
                )
                .await;
            }
            admin_sql(
                &mut admin,
                format!("SELECT pg_advisory_unlock({PG_TEMPLATE_LOCK})"),
            )
            .await;
            admin.close().await.ok();
            name
        })
        .await
}

async fn pg_admin() -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&pg_admin_url())
        .await
        .expect("PostgreSQL must run at 127.0.0.1:5432 (user postgres, trust auth)")
}

/// Waits until `check` holds, polling every 20 ms; fails naming `what` after `within`.
pub async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub struct TestApp {
    pub store: Store,
    pub url: String,
    pub env: Env,
    pub dir: tempfile::TempDir,
    pg_db: Option<String>,
}

impl TestApp {
    pub async fn new(store: Store) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, pg_db) = match store {
            Store::Sqlite => (
                format!("sqlite://{}", dir.path().join("billrun.db").display()),
                None,
            ),
            Store::Postgres => {
                let name = format!(
                    "billrun_t_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    Utc::now().timestamp_micros()
                );
                let template = pg_template().await;
                let mut admin = pg_admin().await;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE DATABASE {name} TEMPLATE {template}"
                )))
                .execute(&mut admin)
                .await
                .expect("create the test database from the template");
                admin.close().await.ok();
                (format!("{}/{name}", pg_base_url()), Some(name))
            }
        };
        // On PostgreSQL the copy is migrated already: this only checks it, as the app does.
        let db = Db::connect_and_migrate(&url)
            .await
            .expect("connect and migrate");
        let mut jobs = JobsConfig::defaults();
        // Tests do not wait: short backoff and timeouts against the fake Stripe.
        jobs.collect.settings.transient_backoff_ms = 5;
        jobs.collect.settings.request_timeout_seconds = 2;
        // No test reaches the real VIES: a port nothing listens on, unless a test starts the
        // fake (`use_vies`).
        jobs.vat_check.settings.vies_base_url = "http://127.0.0.1:9/vies".into();
        jobs.vat_check.settings.request_timeout_seconds = 2;
        TestApp {
            store,
            url,
            env: Env::new(db, jobs),
            dir,
            pg_db,
        }
    }

    /// Points the collect job at a fake Stripe.
    pub fn use_stripe(&mut self, fake: &fake_stripe::FakeStripe) {
        self.env.stripe_key = Some(billrun::jobs::Secret("sk_test_billrun".into()));
        self.env.jobs.collect.settings.gateway = billrun::config::GatewayChoice::Stripe;
        self.env.jobs.collect.settings.stripe_base_url = fake.base_url();
    }

    /// Sets an account's default payment method at `at`.
    pub async fn set_pm(&self, account: &str, kind: &str, pm: &str, at: &str) {
        let mut tx = self.db().begin().await.unwrap();
        billrun::store::collection::set_payment_method(
            &mut tx,
            account,
            kind,
            &format!("cus_{account}"),
            pm,
            t(at),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    /// Records a credit purchase.
    pub async fn add_credit(&self, account: &str, minor: i64, reference: &str, at: &str) -> bool {
        let mut tx = self.db().begin().await.unwrap();
        let added =
            billrun::store::collection::add_credit(&mut tx, account, minor, reference, t(at))
                .await
                .unwrap();
        tx.commit().await.unwrap();
        added
    }

    /// An invoice as the CLI shows it (lines, discounts, attempts), by account and period.
    pub async fn invoice(&self, account: &str, period: &str) -> billrun::views::InvoiceView {
        let rows = billrun::store::invoices::list(
            self.db(),
            &billrun::store::invoices::ListFilter {
                account: Some(account.into()),
                period: Some(period.parse().unwrap()),
                status: None,
            },
        )
        .await
        .unwrap();
        let row = rows
            .first()
            .unwrap_or_else(|| panic!("no invoice for {account} {period}"));
        billrun::views::load_invoice(self.db(), row).await.unwrap()
    }

    /// Rows of the outbox: (account, kind, dedupe key).
    pub async fn outbox(&self) -> Vec<(String, String, String)> {
        billrun::with_db!(self.db(), p => sqlx::query_as("SELECT account_id, kind, dedupe_key FROM outbox ORDER BY id").fetch_all(p).await.unwrap())
    }

    pub fn db(&self) -> &Db {
        &self.env.db
    }

    /// Imports CSV text as if from a file named `name`.
    pub async fn import_csv(
        &self,
        kind: ImportKind,
        name: &str,
        text: &str,
    ) -> anyhow::Result<ImportReport> {
        billrun::import::import_text(self.db(), kind, name, text, Format::Csv, false).await
    }

    pub async fn import_fixture(&self, kind: ImportKind, file: &str) -> ImportReport {
        let path = fixture(file);
        billrun::import::import_file(self.db(), kind, &path, false)
            .await
            .expect("fixture imports")
    }

    /// The standard small platform of `tests/fixtures/`.
    pub async fn seed_fixtures(&self) {
        self.import_fixture(ImportKind::Catalog, "catalog.csv")
            .await;
        self.import_fixture(ImportKind::Accounts, "accounts.csv")
            .await;
        self.import_fixture(ImportKind::Apps, "apps.csv").await;
        self.import_fixture(ImportKind::Usage, "usage.csv").await;
        self.confirm_fixture_vat_numbers().await;
    }

    /// The fixtures' EU business outside France (acc-de-business) has its VAT number confirmed
    /// by VIES on the 1st of each month from September 2026 to December 2027, as the daily
    /// vat-check job would have: reverse charge needs a confirmation at most `max_age_days`
    /// old (article 18 of Regulation (EU) 282/2011), at whatever date a test bills.
    pub async fn confirm_fixture_vat_numbers(&self) {
        let mut tx = self.db().begin().await.unwrap();
        for month in 0..16 {
            let (y, m) = (2026 + (8 + month) / 12, (8 + month) % 12 + 1);
            let at = t(&format!("{y}-{m:02}-01T00:00:00Z"));
            let consultation = format!("WAPIFIXTURE{y}{m:02}");
            billrun::store::vies::record(
                &mut tx,
                &billrun::store::vies::NewViesCheck {
                    account_id: "acc-de-business",
                    vat_number: "DE123456788",
                    checked_at: at,
                    outcome: billrun::store::vies::ViesOutcome::Valid,
                    request_date: None,
                    consultation_number: Some(&consultation),
                    name: Some("Schmidt GmbH"),
                    address: None,
                    detail: None,
                },
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }

    /// What the standard accounts own beyond apps (`tests/fixtures/`: deployments, aliases,
    /// domains, certificates), after [`TestApp::seed_fixtures`]; the reports in that order.
    pub async fn seed_platform_fixtures(&self) -> [ImportReport; 4] {
        [
            self.import_fixture(ImportKind::Deployments, "deployments.csv")
                .await,
            self.import_fixture(ImportKind::Aliases, "aliases.csv")
                .await,
            self.import_fixture(ImportKind::Domains, "domains.csv")
                .await,
            self.import_fixture(ImportKind::Certificates, "certificates.csv")
                .await,
        ]
    }

    pub async fn run(&self, job: JobName, now: &str) -> JobReport {
        self.run_with(job, opts(now)).await.expect("job runs")
    }

    pub async fn run_with(&self, job: JobName, o: RunOptions) -> anyhow::Result<JobReport> {
        jobs::run(&self.env, job, &o).await
    }

    /// Every row of every table, as text, sorted: equal dumps mean nothing changed.
    pub async fn dump(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        match self.db() {
            Db::Postgres(p) => {
                let tables: Vec<(String,)> = sqlx::query_as(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
                )
                .fetch_all(p)
                .await
                .unwrap();
                for (t,) in tables {
                    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT t::text FROM \"{t}\" t ORDER BY 1"
                    )))
                    .fetch_all(p)
                    .await
                    .unwrap();
                    out.insert(t, rows.into_iter().map(|r| r.0).collect());
                }
                let seqs: Vec<(String, Option<i64>)> = sqlx::query_as(
                    "SELECT sequencename::text, last_value FROM pg_sequences ORDER BY 1",
                )
                .fetch_all(p)
                .await
                .unwrap();
                out.insert(
                    "(sequences)".into(),
                    seqs.into_iter().map(|s| format!("{s:?}")).collect(),
                );
            }
            Db::Sqlite(p) => {
                let tables: Vec<(String,)> = sqlx::query_as(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1",
                )
                .fetch_all(p)
                .await
                .unwrap();
                for (t,) in tables {
                    let cols: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT name FROM pragma_table_info('{t}')"
                    )))
                    .fetch_all(p)
                    .await
                    .unwrap();
                    let expr = cols
                        .iter()
                        .map(|(c,)| format!("quote(\"{c}\")"))
                        .collect::<Vec<_>>()
                        .join(" || '|' || ");
                    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT {expr} FROM \"{t}\" ORDER BY 1"
                    )))
                    .fetch_all(p)
                    .await
                    .unwrap();
                    out.insert(t, rows.into_iter().map(|r| r.0).collect());
                }
            }
        }
        out
    }

    /// Runs the `billrun` binary against this app's store.
    pub fn cli(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
            .args(args)
            .env("BILLRUN_DATABASE_URL", &self.url)
            .env_remove("BILLRUN_JOBS_DIR")
            .current_dir(self.dir.path())
            .output()
            .expect("run billrun")
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        let (n,): (i64,) =
            billrun::with_db!(self.db(), p => sqlx::query_as(sql).fetch_one(p).await.unwrap());
        n
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let Some(name) = self.pg_db.take() else {
            return;
        };
        let db = self.env.db.clone();
        // Drop the database from a thread with its own runtime: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                db.close().await;
                if let Ok(mut admin) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            })
        })
        .join();
    }
}

/// The repository's top: the suite belongs to `crates/billrun-cli` (the binary's package, so
/// that `CARGO_BIN_EXE_billrun` is set) but reads the repository's `jobs/`, `tests/fixtures`,
/// `tests/support` and `docs/`.
pub fn repo_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        root.canonicalize()
            .unwrap_or_else(|e| panic!("the repository's top {}: {e}", root.display()))
    })
}

pub fn fixture(name: &str) -> PathBuf {
    crate::common::repo_root().join("tests/fixtures").join(name)
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

pub fn opts(now: &str) -> RunOptions {
    RunOptions::at(t(now))
}

/// Runs the same scenario on both stores: `both_stores!(name, |app| async move { … });`
#[macro_export]
macro_rules! both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::common::TestApp::new($crate::common::Store::Postgres).await;
                ($body)(app).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::common::TestApp::new($crate::common::Store::Sqlite).await;
                ($body)(app).await
            }
        }
    };
}
