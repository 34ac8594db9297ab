//! The email outbox: a row per email, written in the transaction of the change that causes it.

use chrono::{DateTime, Utc};

use super::{Conn, Tx};
use crate::core::email::EmailKind;
use crate::core::locale::Language;
use crate::with_db;

pub struct NewEmail<'a> {
    pub account_id: &'a str,
    pub kind: EmailKind,
    /// What makes this email unique: writing it twice is a no-op.
    pub dedupe_key: String,
    pub language: Language,
    pub to_address: &'a str,
    pub invoice_id: Option<i64>,
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// What queueing does with an email whose dedupe key is already queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Skip it, and count it as not queued: the same email is never queued (nor sent) twice,
    /// and the caller learns it was already there. For every email whose cause may be seen
    /// again (a run resumed, a webhook delivered twice, a command repeated).
    Skip,
    /// Fail, and the caller's transaction rolls back: for emails whose keys cannot be queued
    /// yet (they name what the caller's transaction has just created, such as a new invoice's
    /// id). The unique key still holds; only its check differs: PostgreSQL's `ON CONFLICT`
    /// checks each row's key before inserting it and logs one more record per row to confirm
    /// it, 15% of the invoice job's email inserts, spent for a conflict that cannot happen.
    Fail,
}

impl OnConflict {
    /// The clause closing the insert.
    fn clause(self) -> &'static str {
        match self {
            OnConflict::Skip => " ON CONFLICT (dedupe_key) DO NOTHING",
            OnConflict::Fail => "",
        }
    }
}

/// Queues an email; returns false when the same email (same dedupe key) is already queued:
/// [`enqueue_many`] with a group of one, skipping a conflict.
pub async fn enqueue(tx: &mut Tx, e: &NewEmail<'_>) -> anyhow::Result<bool> {
    let queued = enqueue_many(tx, std::slice::from_ref(e), OnConflict::Skip).await?;
    Ok(queued == 1)
}

/// The data of the account's latest email of `kind` (the demo reads the token it emailed).
pub async fn latest_data(
    db: impl Into<Conn<'_>>,
    account: &str,
    kind: EmailKind,
) -> anyhow::Result<Option<serde_json::Value>> {
    let row: Option<(String,)> = with_db!(db, p => sqlx::query_as(
        "SELECT data FROM outbox WHERE account_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1")
        .bind(account).bind(kind.as_str()).fetch_optional(p).await?);
    row.map(|r| serde_json::from_str(&r.0).map_err(Into::into))
        .transpose()
}

/// Queues emails in the caller's transaction, in their order: the one insert of emails per
/// backend (one statement of arrays on PostgreSQL, the connection's own handle on SQLite).
/// Returns how many were queued: fewer than given only when `on_conflict` skipped some.
pub async fn enqueue_many(
    tx: &mut Tx,
    emails: &[NewEmail<'_>],
    on_conflict: OnConflict,
) -> anyhow::Result<u64> {
    let queued = match tx {
        Tx::Postgres(t) => {
            // One array per column (see `invoices::finalize_group`).
            let sql = format!(
                "INSERT INTO outbox (account_id, kind, dedupe_key, language, to_address, invoice_id, data, created_at)
                 SELECT v.account_id, v.kind, v.dedupe_key, v.language, v.to_address, v.invoice_id, v.data,
                    v.created_at
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
                    $8::timestamptz[])
                    WITH ORDINALITY AS v(account_id, kind, dedupe_key, language, to_address, invoice_id, data,
                        created_at, ord)
                 ORDER BY v.ord{}",
                on_conflict.clause()
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(emails.iter().map(|e| e.account_id).collect::<Vec<_>>())
                .bind(emails.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
                .bind(
                    emails
                        .iter()
                        .map(|e| e.dedupe_key.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    emails
                        .iter()
                        .map(|e| e.language.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(emails.iter().map(|e| e.to_address).collect::<Vec<_>>())
                .bind(emails.iter().map(|e| e.invoice_id).collect::<Vec<_>>())
                .bind(
                    emails
                        .iter()
                        .map(|e| e.data.to_string())
                        .collect::<Vec<_>>(),
                )
                .bind(emails.iter().map(|e| e.at).collect::<Vec<_>>())
                .execute(&mut **t)
                .await?
                .rows_affected()
        }
        Tx::Sqlite(t) => {
            // Through the connection's own handle (see `sqlite_bulk`).
            use super::sqlite_bulk::{Raw, Val};
            let mut handle = t.lock_handle().await?;
            let raw = Raw::new(&mut handle);
            let sql = format!(
                "INSERT INTO outbox (account_id, kind, dedupe_key, language, to_address, invoice_id, data, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?){}",
                on_conflict.clause()
            );
            let mut insert = raw.prepare(&sql, "queueing emails")?;
            let mut queued = 0;
            for e in emails {
                queued += insert.run(&[
                    Val::text(e.account_id),
                    Val::text(e.kind.as_str()),
                    Val::text(&e.dedupe_key),
                    Val::text(e.language.as_str()),
                    Val::text(e.to_address),
                    Val::opt_int(e.invoice_id),
                    Val::Owned(e.data.to_string()),
                    Val::time(e.at),
                ])?;
            }
            queued
        }
    };
    Ok(queued)
}
