//! The email outbox: a row per email, written in the transaction of the change that causes it.

use chrono::{DateTime, Utc};

use super::{Conn, Tx};
use crate::core::locale::Language;
use crate::with_db;

pub struct NewEmail<'a> {
    pub account_id: &'a str,
    pub kind: &'a str,
    /// What makes this email unique: writing it twice is a no-op.
    pub dedupe_key: String,
    pub language: Language,
    pub to_address: &'a str,
    pub invoice_id: Option<i64>,
    pub data: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// Queues an email; returns false when the same email (same dedupe key) is already queued.
pub async fn enqueue(tx: &mut Tx, e: &NewEmail<'_>) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO outbox (account_id, kind, dedupe_key, language, to_address, invoice_id, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING")
        .bind(e.account_id).bind(e.kind).bind(&e.dedupe_key).bind(e.language.as_str()).bind(e.to_address)
        .bind(e.invoice_id).bind(e.data.to_string()).bind(e.at)
        .execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// The data of the account's latest email of `kind` (the demo reads the token it emailed).
pub async fn latest_data(
    db: impl Into<Conn<'_>>,
    account: &str,
    kind: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let row: Option<(String,)> = with_db!(db, p => sqlx::query_as(
        "SELECT data FROM outbox WHERE account_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1")
        .bind(account).bind(kind).fetch_optional(p).await?);
    row.map(|r| serde_json::from_str(&r.0).map_err(Into::into))
        .transpose()
}

/// [`enqueue`] for several emails whose dedupe keys cannot be queued yet (they name what the
/// caller's transaction has just created, such as a new invoice's id), in their order, in a
/// few multi-row statements. A key already queued is an error, not a skip: the unique key
/// still holds, and the caller's transaction rolls back. (PostgreSQL's `ON CONFLICT` checks
/// each row's key before inserting it and logs one more record per row to confirm it: 15% of
/// these inserts, spent for a conflict that cannot happen here.)
pub async fn enqueue_new_many(tx: &mut Tx, emails: &[NewEmail<'_>]) -> anyhow::Result<()> {
    if let Tx::Postgres(t) = tx {
        // One array per column (see `invoices::finalize_group`).
        sqlx::query(
            "INSERT INTO outbox (account_id, kind, dedupe_key, language, to_address, invoice_id, data, created_at)
             SELECT v.account_id, v.kind, v.dedupe_key, v.language, v.to_address, v.invoice_id, v.data, v.created_at
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
                $8::timestamptz[])
                WITH ORDINALITY AS v(account_id, kind, dedupe_key, language, to_address, invoice_id, data,
                    created_at, ord)
             ORDER BY v.ord",
        )
        .bind(emails.iter().map(|e| e.account_id).collect::<Vec<_>>())
        .bind(emails.iter().map(|e| e.kind).collect::<Vec<_>>())
        .bind(emails.iter().map(|e| e.dedupe_key.as_str()).collect::<Vec<_>>())
        .bind(emails.iter().map(|e| e.language.as_str()).collect::<Vec<_>>())
        .bind(emails.iter().map(|e| e.to_address).collect::<Vec<_>>())
        .bind(emails.iter().map(|e| e.invoice_id).collect::<Vec<_>>())
        .bind(emails.iter().map(|e| e.data.to_string()).collect::<Vec<_>>())
        .bind(emails.iter().map(|e| e.at).collect::<Vec<_>>())
        .execute(&mut **t)
        .await?;
        return Ok(());
    }
    if let Tx::Sqlite(t) = tx {
        // Through the connection's own handle (see `sqlite_bulk`).
        use super::sqlite_bulk::{Raw, Val};
        let mut handle = t.lock_handle().await?;
        let raw = Raw::new(&mut handle);
        let mut insert = raw.prepare(
            "INSERT INTO outbox (account_id, kind, dedupe_key, language, to_address, invoice_id, data, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            "queueing emails",
        )?;
        for e in emails {
            insert.run(&[
                Val::text(e.account_id),
                Val::text(e.kind),
                Val::text(&e.dedupe_key),
                Val::text(e.language.as_str()),
                Val::text(e.to_address),
                Val::opt_int(e.invoice_id),
                Val::Owned(e.data.to_string()),
                Val::time(e.at),
            ])?;
        }
    }
    Ok(())
}
