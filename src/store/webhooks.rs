//! Stripe's webhook events (`stripe_events`, migration 0014): one row per event id, written in
//! the transaction that applies the event (`crate::webhooks`), and the payment attempt an
//! event names.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::collection::{ATTEMPT_COLUMNS, AttemptRow};
use super::{Conn, Tx};
use crate::stripe_webhook::EventOutcome;
use crate::with_db;

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `POST /webhooks/stripe` on the daemon, signature checked.
    Webhook,
    /// `billrun webhooks replay`, from a file the operator exported from Stripe's dashboard.
    Replay,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Replay => "replay",
        }
    }
}

pub struct NewEvent<'a> {
    pub event_id: &'a str,
    pub kind: &'a str,
    pub object_id: Option<&'a str>,
    pub created: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub source: Source,
}

/// Stores an event by its id, provisionally `recorded`; `None` when its id is stored already
/// (Stripe API "Handle duplicate events"). On PostgreSQL a second transaction inserting the
/// same id waits for the first one's commit, then finds it: an event is applied once.
pub async fn insert(tx: &mut Tx, e: &NewEvent<'_>) -> anyhow::Result<Option<i64>> {
    let row: Option<(i64,)> = with_db!(&mut *tx, c => sqlx::query_as(
        "INSERT INTO stripe_events (event_id, type, object_id, created, received_at, applied_at, source, outcome, attempt_id)
         VALUES ($1, $2, $3, $4, $5, NULL, $6, 'recorded', NULL)
         ON CONFLICT (event_id) DO NOTHING RETURNING id")
        .bind(e.event_id).bind(e.kind).bind(e.object_id).bind(e.created).bind(e.received_at).bind(e.source.as_str())
        .fetch_optional(c).await?);
    Ok(row.map(|r| r.0))
}

/// Records what applying the event did (`applied_at` only when it changed something).
pub async fn finish(
    tx: &mut Tx,
    id: i64,
    outcome: EventOutcome,
    attempt_id: Option<i64>,
    applied_at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE stripe_events SET outcome = $2, attempt_id = $3, applied_at = $4 WHERE id = $1")
        .bind(id).bind(outcome.as_str()).bind(attempt_id).bind(applied_at)
        .execute(c).await?.rows_affected());
    Ok(())
}

pub async fn exists(db: impl Into<Conn<'_>>, event_id: &str) -> anyhow::Result<bool> {
    let row: Option<(i64,)> = with_db!(db, p => sqlx::query_as(
        "SELECT id FROM stripe_events WHERE event_id = $1")
        .bind(event_id).fetch_optional(p).await?);
    Ok(row.is_some())
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct StripeEventRow {
    pub id: i64,
    pub event_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub object_id: Option<String>,
    pub created: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
    pub source: String,
    #[sqlx(try_from = "String")]
    pub outcome: EventOutcome,
    pub attempt_id: Option<i64>,
}

/// Every stored event, in the order received.
pub async fn list(db: impl Into<Conn<'_>>) -> anyhow::Result<Vec<StripeEventRow>> {
    Ok(with_db!(db, p => sqlx::query_as::<_, StripeEventRow>(
        "SELECT id, event_id, type, object_id, created, received_at, applied_at, source, outcome, attempt_id
         FROM stripe_events ORDER BY id")
        .fetch_all(p).await?))
}

/// The payment attempt a PaymentIntent belongs to: the one that stored its id; else, for an
/// attempt whose answer was lost before the id was stored (still `unknown`), the invoice's
/// attempt in flight with no PaymentIntent and the same amount (`hint`: the invoice id the
/// PaymentIntent's metadata names, and its amount).
pub async fn attempt_for_payment_intent(
    db: impl Into<Conn<'_>>,
    payment_intent: &str,
    hint: Option<(i64, i64)>,
) -> anyhow::Result<Option<AttemptRow>> {
    let mut conn: Conn<'_> = db.into();
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ATTEMPT_COLUMNS} FROM payment_attempts WHERE payment_intent_id = $1 ORDER BY id"
    ));
    let found: Option<AttemptRow> = with_db!(&mut conn, p => sqlx::query_as::<_, AttemptRow>(sql).bind(payment_intent).fetch_optional(p).await?);
    if found.is_some() {
        return Ok(found);
    }
    let Some((invoice_id, amount)) = hint else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ATTEMPT_COLUMNS} FROM payment_attempts
         WHERE invoice_id = $1 AND amount_minor = $2 AND outcome = 'unknown' AND payment_intent_id IS NULL
           AND gateway = 'stripe'
         ORDER BY number"
    ));
    let rows: Vec<AttemptRow> = with_db!(conn, p => sqlx::query_as::<_, AttemptRow>(sql).bind(invoice_id).bind(amount).fetch_all(p).await?);
    // More than one would be ambiguous: never guess which attempt a payment belongs to.
    Ok(match <[AttemptRow; 1]>::try_from(rows) {
        Ok([one]) => Some(one),
        Err(_) => None,
    })
}
