//! Account lifecycle: suspension, the platform's app states, the deletion queue.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::FromRow;

use super::{Conn, Tx};
use crate::core::lifecycle::AccountStatus;
use crate::with_db;

#[derive(Debug, Clone, FromRow)]
pub struct DebtRow {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub status: AccountStatus,
    pub suspended_at: Option<DateTime<Utc>>,
    pub deletion_warning_at: Option<DateTime<Utc>>,
    pub owes: i64,
    /// The earliest due date of the unpaid invoices whose retries are exhausted.
    pub exhausted_due_at: Option<NaiveDate>,
    pub queued: bool,
}

/// Accounts the suspend job looks at: suspended ones, and active ones with an invoice whose
/// retries are exhausted.
pub async fn candidates(db: impl Into<Conn<'_>>) -> anyhow::Result<Vec<DebtRow>> {
    Ok(with_db!(db, p => sqlx::query_as::<_, DebtRow>(
        "SELECT a.id, a.status, a.suspended_at, a.deletion_warning_at,
            CAST(COALESCE((SELECT SUM(i.amount_due_minor) FROM invoices i
                  WHERE i.account_id = a.id AND i.status IN ('open', 'unpaid', 'pending')), 0) AS BIGINT) AS owes,
            (SELECT MIN(i.due_at) FROM invoices i WHERE i.account_id = a.id AND i.status = 'unpaid'
                    AND i.collection_exhausted_at IS NOT NULL) AS exhausted_due_at,
            EXISTS (SELECT 1 FROM deletion_queue q WHERE q.account_id = a.id) AS queued
         FROM accounts a
         WHERE a.status IN ('active', 'suspended')
           AND (a.suspended_at IS NOT NULL OR EXISTS (SELECT 1 FROM invoices i WHERE i.account_id = a.id
                AND i.status = 'unpaid' AND i.collection_exhausted_at IS NOT NULL))
         ORDER BY a.id")
        .fetch_all(p).await?))
}

/// Numbers of the account's invoices still owing.
pub async fn owing_invoices(db: impl Into<Conn<'_>>, account: &str) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String,)> = with_db!(db, p => sqlx::query_as(
        "SELECT number FROM invoices WHERE account_id = $1 AND status IN ('open', 'unpaid', 'pending') ORDER BY number")
        .bind(account).fetch_all(p).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The two moves between an account's `active` and `suspended` states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Non-payment after the last retry: the account is suspended and its apps stopped.
    Suspend,
    /// Everything due is paid: the account is active again and its apps started.
    Reactivate,
}

/// Sets the account's status and its apps' state, with a platform event per app. Returns false
/// when the account was not in the transition's starting state (another run changed it).
pub async fn transition(
    tx: &mut Tx,
    account: &str,
    transition: Transition,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    // From, to, since when suspended, the apps' state, the platform's event and its reason.
    let (from, to, suspended_at, apps_to, kind, reason) = match transition {
        Transition::Suspend => (
            AccountStatus::Active,
            AccountStatus::Suspended,
            Some(at),
            "stopped",
            "app.stop",
            "owner suspended for non-payment",
        ),
        Transition::Reactivate => (
            AccountStatus::Suspended,
            AccountStatus::Active,
            None,
            "running",
            "app.start",
            "owner paid everything due",
        ),
    };
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE accounts SET status = $3, suspended_at = $4, deletion_warning_at = CASE WHEN $4 IS NULL THEN NULL ELSE deletion_warning_at END
         WHERE id = $1 AND status = $2")
        .bind(account).bind(from.as_str()).bind(to.as_str()).bind(suspended_at)
        .execute(c).await?.rows_affected());
    if n != 1 {
        return Ok(false);
    }
    let apps: Vec<(String,)> = with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT id FROM apps WHERE account_id = $1 AND status <> $2 ORDER BY id")
        .bind(account).bind(apps_to).fetch_all(c).await?);
    for (app,) in apps {
        with_db!(&mut *tx, c => sqlx::query("UPDATE apps SET status = $2 WHERE id = $1")
            .bind(&app).bind(apps_to).execute(c).await?.rows_affected());
        platform_event(tx, at, account, &app, kind, reason).await?;
    }
    Ok(true)
}

/// Tells the platform what happens to an app (`app.stop`, `app.start`, `app.delete`), in the
/// caller's transaction.
pub async fn platform_event(
    tx: &mut Tx,
    at: DateTime<Utc>,
    account: &str,
    app: &str,
    kind: &str,
    reason: &str,
) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO platform_events (at, account_id, app_id, kind, reason) VALUES ($1, $2, $3, $4, $5)")
        .bind(at).bind(account).bind(app).bind(kind).bind(reason).execute(c).await?.rows_affected());
    Ok(())
}

pub async fn mark_warned(tx: &mut Tx, account: &str, at: DateTime<Utc>) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE accounts SET deletion_warning_at = $2 WHERE id = $1 AND deletion_warning_at IS NULL")
        .bind(account).bind(at).execute(c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn queue_deletion(
    tx: &mut Tx,
    account: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO deletion_queue (account_id, reason, queued_at) VALUES ($1, $2, $3) ON CONFLICT (account_id) DO NOTHING")
        .bind(account).bind(reason).bind(at).execute(c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn unqueue(tx: &mut Tx, account: &str) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query("DELETE FROM deletion_queue WHERE account_id = $1")
        .bind(account).execute(c).await?.rows_affected());
    Ok(())
}
