//! Delivery of the outbox: claiming rows, marking them sent, failed or due again.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::Conn;
use crate::core::email::{EmailKind, OutboxStatus};
use crate::with_db;

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub account_id: String,
    pub kind: EmailKind,
    pub dedupe_key: String,
    pub language: String,
    pub to_address: String,
    pub invoice_id: Option<i64>,
    pub data: String,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub message_id: Option<String>,
    pub account_name: String,
}

/// An [`OutboxRow`] as the query returns it: the kind and status are read into [`EmailKind`] by
/// [`OutboxRow::read`] rather than by sqlx, so that a name billrun never wrote is an error
/// naming the row (sqlx's decoding error names the column only).
#[derive(FromRow)]
struct StoredRow {
    id: i64,
    account_id: String,
    kind: String,
    dedupe_key: String,
    language: String,
    to_address: String,
    invoice_id: Option<i64>,
    data: String,
    status: String,
    attempts: i32,
    message_id: Option<String>,
    account_name: String,
}

impl OutboxRow {
    fn read(r: StoredRow) -> anyhow::Result<OutboxRow> {
        let named = |e| anyhow::anyhow!("outbox row {} (account {}): {e}", r.id, r.account_id);
        let kind = EmailKind::try_from(r.kind).map_err(named)?;
        let status = OutboxStatus::try_from(r.status).map_err(named)?;
        Ok(OutboxRow {
            id: r.id,
            account_id: r.account_id,
            kind,
            dedupe_key: r.dedupe_key,
            language: r.language,
            to_address: r.to_address,
            invoice_id: r.invoice_id,
            data: r.data,
            status,
            attempts: r.attempts,
            message_id: r.message_id,
            account_name: r.account_name,
        })
    }
}

/// Rows ready to send at `now`: pending and due, or stuck in `sending` past their claim.
///
/// Each kind is read by its own ordered walk of `outbox_status (status, id)` that stops at
/// `limit` rows: one `OR` of both made PostgreSQL read every pending row after `after_id`
/// (a bitmap scan cannot stop early) for each page, so a run slowed as the outbox grew
/// (241 emails/s at 100k accounts, two thirds of the server's samples in this query).
pub async fn due(
    db: impl Into<Conn<'_>>,
    now: DateTime<Utc>,
    after_id: i64,
    limit: i64,
) -> anyhow::Result<Vec<OutboxRow>> {
    let rows = with_db!(db, p => sqlx::query_as::<_, StoredRow>(
        "SELECT o.id, o.account_id, o.kind, o.dedupe_key, o.language, o.to_address, o.invoice_id, o.data, o.status,
                o.attempts, o.message_id, a.name AS account_name
         FROM (SELECT * FROM (SELECT * FROM outbox WHERE status = 'pending' AND id > $3
                                  AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
                                ORDER BY status, id LIMIT $2) p
               UNION ALL
               SELECT * FROM (SELECT * FROM outbox WHERE status = 'sending' AND id > $3
                                  AND claimed_until < $1
                                ORDER BY status, id LIMIT $2) s) o
         JOIN accounts a ON a.id = o.account_id
         ORDER BY o.id LIMIT $2")
        .bind(now).bind(limit).bind(after_id).fetch_all(p).await?);
    rows.into_iter().map(OutboxRow::read).collect()
}

/// Claims a row for one deliverer; false when another one holds it.
pub async fn claim(
    db: impl Into<Conn<'_>>,
    id: i64,
    token: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    message_id: &str,
) -> anyhow::Result<bool> {
    let n = with_db!(db, p => sqlx::query(
        "UPDATE outbox SET status = 'sending', claimed_by = $2, claimed_until = $4, message_id = COALESCE(message_id, $5)
         WHERE id = $1 AND ((status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $3))
                         OR (status = 'sending' AND claimed_until < $3))")
        .bind(id).bind(token).bind(now).bind(until).bind(message_id)
        .execute(p).await?.rows_affected());
    Ok(n == 1)
}

/// Marks a row sent. Once sent, a deletion confirmation's token and a deleted account's last
/// address and data are no longer kept.
pub async fn mark_sent(
    db: impl Into<Conn<'_>>,
    id: i64,
    token: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    with_db!(db, p => sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = $3, attempts = attempts + 1, claimed_until = NULL, last_error = NULL,
             to_address = CASE WHEN kind = 'account_deleted' THEN '' ELSE to_address END,
             data = CASE WHEN kind IN ('account_deleted', 'account_deletion_confirmation') THEN '{}' ELSE data END
         WHERE id = $1 AND claimed_by = $2")
        .bind(id).bind(token).bind(now).execute(p).await?.rows_affected());
    Ok(())
}

pub async fn mark_failed(
    db: impl Into<Conn<'_>>,
    id: i64,
    token: &str,
    reason: &str,
) -> anyhow::Result<()> {
    with_db!(db, p => sqlx::query(
        "UPDATE outbox SET status = 'failed', attempts = attempts + 1, claimed_until = NULL, last_error = $3
         WHERE id = $1 AND claimed_by = $2")
        .bind(id).bind(token).bind(reason).execute(p).await?.rows_affected());
    Ok(())
}

pub async fn mark_retry(
    db: impl Into<Conn<'_>>,
    id: i64,
    token: &str,
    next: DateTime<Utc>,
    reason: &str,
) -> anyhow::Result<()> {
    with_db!(db, p => sqlx::query(
        "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_attempt_at = $3, claimed_until = NULL,
            claimed_by = NULL, last_error = $4
         WHERE id = $1 AND claimed_by = $2")
        .bind(id).bind(token).bind(next).bind(reason).execute(p).await?.rows_affected());
    Ok(())
}

/// (status, count) of the outbox.
pub async fn counts(db: impl Into<Conn<'_>>) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(
        with_db!(db, p => sqlx::query_as("SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status").fetch_all(p).await?),
    )
}
