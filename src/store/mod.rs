//! The billing store: PostgreSQL in production, SQLite as the embedded default.
//!
//! Both stores run the same SQL text (`$1` placeholders, `ON CONFLICT`, `RETURNING` work on
//! both); [`with_db!`] expands one query for each backend so that each is typed for its driver.
//! A query function is written once and takes `impl Into<Conn>`: the pool (`&Db`) or the
//! caller's transaction (`&mut Tx`), whichever the caller has. Backend-specific SQL lives only
//! where the SQL must differ.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Database, PgPool, Pool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::config::BadInput;

pub mod accounts;
pub mod catalog;
pub mod collection;
pub mod credit_notes;
pub mod deletion;
pub mod delivery;
pub mod documents;
pub mod events;
pub mod hds;
pub mod invoice_document;
pub mod invoices;
pub mod lifecycle;
pub mod outbox;
pub(crate) mod pg_copy;
pub mod runs;
pub(crate) mod sqlite_bulk;
pub mod vies;
pub mod webhooks;

pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// PostgreSQL connections the pool keeps open (of at most 8).
const PG_WARM_CONNECTIONS: u32 = 6;

/// The default store: an SQLite file in the working directory, created when missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://billrun.db";

#[derive(Debug, Clone)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

pub enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// Runs a query body once per backend with `$c` bound to its executor: `$conn` is anything a
/// store function takes (`&Db`, `&mut Tx`, `&mut Conn`), and `$c` runs the query on the pool
/// or in the transaction. `$c` is one executor, spent by a statement: a body running several
/// passes `$c.reborrow()` to all but the last.
#[macro_export]
macro_rules! with_db {
    ($conn:expr, $c:ident => $body:expr) => {
        match $crate::store::Conn::of($conn).split() {
            #[allow(unused_mut)]
            $crate::store::Split::Postgres(mut $c) => $body,
            #[allow(unused_mut)]
            $crate::store::Split::Sqlite(mut $c) => $body,
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Db {
    /// Connects to `url` (`postgres://…` or `sqlite://…`); an SQLite file is created when
    /// missing. Does not migrate: see [`Db::migrate`].
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| BadInput(format!("bad PostgreSQL URL `{}`: {e}", redact_url(url))))?;
            // One direct attempt first: a refused connection fails at once instead of
            // waiting for the pool's acquire timeout.
            let probe = tokio::time::timeout(
                Duration::from_secs(10),
                sqlx::PgConnection::connect_with(&opts),
            )
            .await
            .map_err(|_| anyhow::anyhow!("timed out after 10 s"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| format!("cannot connect to PostgreSQL at {}", redact_url(url)))?;
            probe.close().await.ok();
            let port = opts.get_port();
            let tcp = opts.get_socket().is_none();
            let pool = PgPoolOptions::new()
                .max_connections(8)
                // Opened at start, in the background, and kept: a job uses up to about six at
                // once (collect's four, or the invoice job's reader, writer and connections on
                // their way back to the pool). One opened mid-run stalls its task ~100 ms on
                // loopback, its startup messages held by Nagle's algorithm until
                // `after_connect` can set TCP_NODELAY (see `nodelay`): measured in `billrun
                // bench`, 1.46 s → 1.15 s for the invoice step at 10k accounts.
                .min_connections(PG_WARM_CONNECTIONS)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(move |_, _| {
                    if tcp {
                        crate::nodelay::set_on_sockets_to(port);
                    }
                    Box::pin(async { Ok(()) })
                })
                .connect_with(opts)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {}", redact_url(url)))?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| BadInput(format!("bad SQLite URL `{url}`: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(opts)
                .await
                .with_context(|| format!("cannot open SQLite database {url}"))?;
            Ok(Db::Sqlite(pool))
        } else {
            Err(BadInput(format!(
                "unsupported database URL `{}`: use postgres://… or sqlite://…",
                redact_url(url)
            ))
            .into())
        }
    }

    pub async fn connect_and_migrate(url: &str) -> anyhow::Result<Db> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Postgres(p) => PG_MIGRATOR.run(p).await.context("migrating PostgreSQL")?,
            Db::Sqlite(p) => SQLITE_MIGRATOR.run(p).await.context("migrating SQLite")?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Postgres(_) => Backend::Postgres,
            Db::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so that two writers wait for each other instead of failing on upgrade.
    pub async fn begin(&self) -> anyhow::Result<Tx> {
        Ok(match self {
            Db::Postgres(p) => Tx::Postgres(p.begin().await.context("beginning a transaction")?),
            Db::Sqlite(p) => Tx::Sqlite(
                p.begin_with("BEGIN IMMEDIATE")
                    .await
                    .context("beginning a transaction")?,
            ),
        })
    }

    /// Whether the store answers (the daemon's `/healthz`).
    pub async fn ping(&self) -> anyhow::Result<()> {
        let _: (i32,) = with_db!(self, p => sqlx::query_as("SELECT 1").fetch_one(p).await?);
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Postgres(p) => p.close().await,
            Db::Sqlite(p) => p.close().await,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> anyhow::Result<()> {
        match self {
            Tx::Postgres(t) => t.commit().await.context("committing")?,
            Tx::Sqlite(t) => t.commit().await.context("committing")?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> anyhow::Result<()> {
        match self {
            Tx::Postgres(t) => t.rollback().await.context("rolling back")?,
            Tx::Sqlite(t) => t.rollback().await.context("rolling back")?,
        }
        Ok(())
    }
}

/// Where a store function runs its queries: the pool (each statement on a connection of its
/// own) or the caller's transaction. Every query function takes `impl Into<Conn>`, so one
/// function serves `&Db` and `&mut Tx` alike; inside a function that runs several statements,
/// `let mut conn = conn.into();` and pass `&mut conn` to each.
pub enum Conn<'a> {
    Pool(&'a Db),
    Tx(&'a mut Tx),
}

impl<'a> From<&'a Db> for Conn<'a> {
    fn from(db: &'a Db) -> Conn<'a> {
        Conn::Pool(db)
    }
}

impl<'a> From<&'a mut Tx> for Conn<'a> {
    fn from(tx: &'a mut Tx) -> Conn<'a> {
        Conn::Tx(tx)
    }
}

/// A reborrow, to run several statements on one `Conn`.
impl<'a, 'b> From<&'b mut Conn<'a>> for Conn<'b> {
    fn from(conn: &'b mut Conn<'a>) -> Conn<'b> {
        match conn {
            Conn::Pool(db) => Conn::Pool(db),
            Conn::Tx(tx) => Conn::Tx(tx),
        }
    }
}

impl<'a> Conn<'a> {
    /// `conn` as a `Conn` (what [`with_db!`] runs on).
    pub fn of(conn: impl Into<Conn<'a>>) -> Conn<'a> {
        conn.into()
    }

    /// The backend's executor, for [`with_db!`].
    #[doc(hidden)]
    pub fn split(self) -> Split<'a> {
        match self {
            Conn::Pool(Db::Postgres(p)) => Split::Postgres(Exec::Pool(p)),
            Conn::Pool(Db::Sqlite(p)) => Split::Sqlite(Exec::Pool(p)),
            Conn::Tx(Tx::Postgres(t)) => Split::Postgres(Exec::Conn(&mut **t)),
            Conn::Tx(Tx::Sqlite(t)) => Split::Sqlite(Exec::Conn(&mut **t)),
        }
    }
}

/// A [`Conn`] as the executor of its backend.
#[doc(hidden)]
pub enum Split<'a> {
    Postgres(Exec<'a, Postgres>),
    Sqlite(Exec<'a, Sqlite>),
}

/// A pool or a connection of one backend as one sqlx [`Executor`](sqlx::Executor): each
/// method hands the query to the one it holds, so a query runs exactly as it would on either.
pub enum Exec<'a, DB: Database> {
    Pool(&'a Pool<DB>),
    Conn(&'a mut DB::Connection),
}

impl<DB: Database> Exec<'_, DB> {
    /// This executor again, for one more statement in the same [`with_db!`] body.
    pub fn reborrow(&mut self) -> Exec<'_, DB> {
        match self {
            Exec::Pool(p) => Exec::Pool(p),
            Exec::Conn(c) => Exec::Conn(&mut **c),
        }
    }
}

impl<DB: Database> std::fmt::Debug for Exec<'_, DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exec::Pool(p) => f.debug_tuple("Pool").field(p).finish(),
            Exec::Conn(_) => f.write_str("Conn"),
        }
    }
}

mod exec_impl {
    use futures_util::future::BoxFuture;
    use futures_util::stream::BoxStream;
    use sqlx::{Database, Describe, Either, Error, Execute, Executor, SqlStr};

    use super::Exec;

    impl<'a, DB: Database> Executor<'a> for Exec<'a, DB>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    {
        type Database = DB;

        fn fetch_many<'e, 'q: 'e, E>(
            self,
            query: E,
        ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, Error>>
        where
            'a: 'e,
            E: 'q + Execute<'q, DB>,
        {
            match self {
                Exec::Pool(p) => p.fetch_many(query),
                Exec::Conn(c) => c.fetch_many(query),
            }
        }

        fn fetch_optional<'e, 'q: 'e, E>(
            self,
            query: E,
        ) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
        where
            'a: 'e,
            E: 'q + Execute<'q, DB>,
        {
            match self {
                Exec::Pool(p) => p.fetch_optional(query),
                Exec::Conn(c) => c.fetch_optional(query),
            }
        }

        fn prepare_with<'e>(
            self,
            sql: SqlStr,
            parameters: &'e [DB::TypeInfo],
        ) -> BoxFuture<'e, Result<DB::Statement, Error>>
        where
            'a: 'e,
        {
            match self {
                Exec::Pool(p) => p.prepare_with(sql, parameters),
                Exec::Conn(c) => c.prepare_with(sql, parameters),
            }
        }

        fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<DB>, Error>>
        where
            'a: 'e,
        {
            match self {
                Exec::Pool(p) => p.describe(sql),
                Exec::Conn(c) => c.describe(sql),
            }
        }
    }
}

/// Hides the password of a database or SMTP URL before it is shown or logged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// An exact decimal column: PostgreSQL `NUMERIC`, SQLite `TEXT` (SQLite has no exact decimal
/// type, and sqlx does not bind `Decimal` there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbDecimal(pub Decimal);

mod decimal_impls {
    use super::DbDecimal;
    use rust_decimal::Decimal;
    use sqlx::encode::IsNull;
    use sqlx::error::BoxDynError;
    use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
    use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
    use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

    impl Type<Postgres> for DbDecimal {
        fn type_info() -> PgTypeInfo {
            <Decimal as Type<Postgres>>::type_info()
        }
    }
    impl Encode<'_, Postgres> for DbDecimal {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            <Decimal as Encode<Postgres>>::encode_by_ref(&self.0, buf)
        }
    }
    impl Decode<'_, Postgres> for DbDecimal {
        fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
            Ok(DbDecimal(
                <Decimal as Decode<Postgres>>::decode(value)?.normalize(),
            ))
        }
    }
    impl Type<Sqlite> for DbDecimal {
        fn type_info() -> SqliteTypeInfo {
            <String as Type<Sqlite>>::type_info()
        }
    }
    impl Encode<'_, Sqlite> for DbDecimal {
        fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
            <String as Encode<Sqlite>>::encode(self.0.normalize().to_string(), buf)
        }
    }
    impl<'r> Decode<'r, Sqlite> for DbDecimal {
        fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
            let s = <String as Decode<Sqlite>>::decode(value)?;
            Ok(DbDecimal(s.parse::<Decimal>()?.normalize()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Db, accounts, redact_url};
    use crate::core::ids::AccountId;
    use crate::core::locale::Language;
    use crate::model::Account;

    /// One function, two ways to run: in the transaction it sees the transaction's write; on the
    /// pool it does not, until the transaction commits (a rolled-back write never shows).
    #[tokio::test]
    async fn one_query_function_runs_on_the_pool_or_in_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect_and_migrate(&url).await.unwrap();
        let account = |id: &str| Account {
            id: AccountId(id.to_string()),
            email: "a@example.com".into(),
            name: "A".into(),
            company: None,
            address: "1 rue".into(),
            country: "FR".into(),
            vat_number: None,
            language: Language::Fr,
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            referred_by: None,
            siren: None,
            electronic_address: None,
        };

        let mut tx = db.begin().await.unwrap();
        assert!(
            accounts::insert_account(&mut tx, &account("acc-1"))
                .await
                .unwrap()
        );
        let seen = accounts::get_account(&mut tx, "acc-1").await.unwrap();
        assert_eq!(seen.map(|r| r.language), Some(Language::Fr));
        assert!(accounts::get_account(&db, "acc-1").await.unwrap().is_none());
        tx.rollback().await.unwrap();
        assert!(accounts::get_account(&db, "acc-1").await.unwrap().is_none());

        let mut tx = db.begin().await.unwrap();
        accounts::insert_account(&mut tx, &account("acc-2"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(accounts::get_account(&db, "acc-2").await.unwrap().is_some());
        db.close().await;
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("sqlite://billrun.db"), "sqlite://billrun.db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
