//! HDS points of contact.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, Tx};
use crate::with_db;

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct HdsContactRow {
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub reviewed_at: DateTime<Utc>,
    pub last_reminder_at: Option<DateTime<Utc>>,
}

/// Designates (or replaces) the contact; a designation counts as a review.
pub async fn set(
    tx: &mut Tx,
    account: &str,
    name: &str,
    email: &str,
    phone: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO hds_contacts (account_id, name, email, phone, reviewed_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account_id) DO UPDATE SET name = excluded.name, email = excluded.email, phone = excluded.phone,
            reviewed_at = excluded.reviewed_at")
        .bind(account).bind(name).bind(email).bind(phone).bind(at)
        .execute(c).await?.rows_affected());
    Ok(())
}

/// Records a review; false when the account has no contact.
pub async fn review(tx: &mut Tx, account: &str, at: DateTime<Utc>) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query("UPDATE hds_contacts SET reviewed_at = $2 WHERE account_id = $1")
        .bind(account).bind(at).execute(c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn all(db: impl Into<Conn<'_>>) -> anyhow::Result<Vec<HdsContactRow>> {
    Ok(with_db!(db, p => sqlx::query_as::<_, HdsContactRow>(
        "SELECT h.account_id, h.name, h.email, h.phone, h.reviewed_at, h.last_reminder_at
         FROM hds_contacts h JOIN accounts a ON a.id = h.account_id
         WHERE a.status IN ('active', 'suspended') ORDER BY h.account_id")
        .fetch_all(p).await?))
}

/// Records that a reminder went out; false when another run sent one first.
pub async fn mark_reminded(
    tx: &mut Tx,
    account: &str,
    previous: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE hds_contacts SET last_reminder_at = $3
         WHERE account_id = $1 AND (last_reminder_at = $2 OR (last_reminder_at IS NULL AND $2 IS NULL))")
        .bind(account).bind(previous).bind(at).execute(c).await?.rows_affected());
    Ok(n == 1)
}
