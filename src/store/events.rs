//! The account timeline.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Conn, Tx};
use crate::core::ids::InvoiceId;
use crate::core::timeline::TimelineKind;
use crate::with_db;

#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub account_id: String,
    pub at: DateTime<Utc>,
    pub kind: TimelineKind,
    pub invoice_id: Option<i64>,
    pub message: String,
}

/// Records one event in the caller's transaction: [`record_many`] with a group of one.
pub async fn record(
    tx: &mut Tx,
    account_id: &str,
    at: DateTime<Utc>,
    kind: TimelineKind,
    invoice_id: Option<InvoiceId>,
    message: &str,
) -> anyhow::Result<()> {
    let event = NewEvent {
        account_id,
        at,
        kind,
        invoice_id,
        message,
    };
    record_many(tx, std::slice::from_ref(&event)).await
}

/// The account's events, oldest first. A kind billrun never wrote is an error naming the event
/// (the kind is read here rather than by sqlx, whose decoding error names the column only).
pub async fn timeline(db: impl Into<Conn<'_>>, account_id: &str) -> anyhow::Result<Vec<EventRow>> {
    type Stored = (i64, String, DateTime<Utc>, String, Option<i64>, String);
    let rows: Vec<Stored> = with_db!(db, p => sqlx::query_as(
        "SELECT id, account_id, at, kind, invoice_id, message FROM account_events WHERE account_id = $1 ORDER BY id")
        .bind(account_id).fetch_all(p).await?);
    rows.into_iter()
        .map(|(id, account_id, at, kind, invoice_id, message)| {
            let kind = TimelineKind::try_from(kind)
                .map_err(|e| anyhow::anyhow!("account event {id} (account {account_id}): {e}"))?;
            Ok(EventRow {
                id,
                account_id,
                at,
                kind,
                invoice_id,
                message,
            })
        })
        .collect()
}

/// One event of [`record_many`].
pub struct NewEvent<'a> {
    pub account_id: &'a str,
    pub at: DateTime<Utc>,
    pub kind: TimelineKind,
    pub invoice_id: Option<InvoiceId>,
    pub message: &'a str,
}

/// Records events in the caller's transaction, in their order: the one insert of events per
/// backend (one statement of arrays on PostgreSQL, the connection's own handle on SQLite).
pub async fn record_many(tx: &mut Tx, events: &[NewEvent<'_>]) -> anyhow::Result<()> {
    match tx {
        Tx::Postgres(t) => {
            // One array per column (see `invoices::finalize_group`).
            sqlx::query(
                "INSERT INTO account_events (account_id, at, kind, invoice_id, message)
                 SELECT v.account_id, v.at, v.kind, v.invoice_id, v.message
                 FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::bigint[], $5::text[])
                    WITH ORDINALITY AS v(account_id, at, kind, invoice_id, message, ord)
                 ORDER BY v.ord",
            )
            .bind(events.iter().map(|e| e.account_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.at).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
            .bind(
                events
                    .iter()
                    .map(|e| e.invoice_id.map(|i| i.0))
                    .collect::<Vec<_>>(),
            )
            .bind(events.iter().map(|e| e.message).collect::<Vec<_>>())
            .execute(&mut **t)
            .await?;
        }
        Tx::Sqlite(t) => {
            // Through the connection's own handle (see `sqlite_bulk`).
            use super::sqlite_bulk::{Raw, Val};
            let mut handle = t.lock_handle().await?;
            let raw = Raw::new(&mut handle);
            let mut insert = raw.prepare(
                "INSERT INTO account_events (account_id, at, kind, invoice_id, message) VALUES (?, ?, ?, ?, ?)",
                "recording events",
            )?;
            for e in events {
                insert.run(&[
                    Val::text(e.account_id),
                    Val::time(e.at),
                    Val::text(e.kind.as_str()),
                    Val::opt_int(e.invoice_id.map(|i| i.0)),
                    Val::text(e.message),
                ])?;
            }
        }
    }
    Ok(())
}
