//! Account deletion: requests and their token digests, the queue as the delete job sees it,
//! the per-category batches, and the progress each batch records in its own transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Conn, Tx};
use crate::core::deletion::{Category, OwedInvoice, OwnedApp, PendingRequest, WaitingEmail};
use crate::core::document::InvoiceStatus;
use crate::core::email::{EmailKind, OutboxStatus};
use crate::core::lifecycle::AccountStatus;
use crate::core::stored::UnknownName;
use crate::with_db;

/// Apps the account still owns.
pub async fn owned_apps(db: impl Into<Conn<'_>>, account: &str) -> anyhow::Result<Vec<OwnedApp>> {
    let rows: Vec<(String, String)> = with_db!(db, p => sqlx::query_as(
        "SELECT id, name FROM apps WHERE account_id = $1 AND deleted_at IS NULL ORDER BY id")
        .bind(account).fetch_all(p).await?);
    Ok(rows
        .into_iter()
        .map(|(id, name)| OwnedApp { id, name })
        .collect())
}

/// Invoices the account still owes.
pub async fn owed_invoices(
    db: impl Into<Conn<'_>>,
    account: &str,
) -> anyhow::Result<Vec<OwedInvoice>> {
    let rows: Vec<(String, String, i64)> = with_db!(db, p => sqlx::query_as(
        "SELECT number, status, amount_due_minor FROM invoices
         WHERE account_id = $1 AND status IN ('open', 'unpaid', 'pending') ORDER BY number")
        .bind(account).fetch_all(p).await?);
    Ok(rows
        .into_iter()
        .map(|(number, status, amount_due_minor)| {
            Ok(OwedInvoice {
                number,
                status: InvoiceStatus::try_from(status)?,
                amount_due_minor,
            })
        })
        .collect::<Result<_, UnknownName>>()?)
}

/// Accounts that asked for their deletion: the collect job waives their small balances.
pub async fn closing_accounts(db: impl Into<Conn<'_>>) -> anyhow::Result<HashSet<String>> {
    let rows: Vec<(String,)> = with_db!(db, p => sqlx::query_as(
        "SELECT account_id FROM deletion_requests").fetch_all(p).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Records a request (or replaces an unconfirmed one: the previous token stops working).
/// Returns false when the account's request was already confirmed.
pub async fn upsert_request(
    tx: &mut Tx,
    account: &str,
    at: DateTime<Utc>,
    token_sha256: &str,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO deletion_requests (account_id, requested_at, token_sha256, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (account_id) DO UPDATE SET requested_at = excluded.requested_at,
             token_sha256 = excluded.token_sha256, expires_at = excluded.expires_at
         WHERE deletion_requests.confirmed_at IS NULL")
        .bind(account).bind(at).bind(token_sha256).bind(expires_at)
        .execute(c).await?.rows_affected());
    Ok(n == 1)
}

#[derive(Debug, Clone, FromRow)]
struct RequestRow {
    token_sha256: String,
    expires_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
}

pub async fn request(
    conn: impl Into<Conn<'_>>,
    account: &str,
) -> anyhow::Result<Option<PendingRequest>> {
    let row: Option<RequestRow> = with_db!(conn, c => sqlx::query_as(
        "SELECT token_sha256, expires_at, confirmed_at FROM deletion_requests WHERE account_id = $1")
        .bind(account).fetch_optional(c).await?);
    Ok(row.map(|r| PendingRequest {
        token_sha256: r.token_sha256,
        expires_at: r.expires_at,
        confirmed_at: r.confirmed_at,
    }))
}

/// Uses the token: false when another confirmation used it first.
pub async fn confirm(
    tx: &mut Tx,
    account: &str,
    token_sha256: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE deletion_requests SET confirmed_at = $3
         WHERE account_id = $1 AND token_sha256 = $2 AND confirmed_at IS NULL")
        .bind(account).bind(token_sha256).bind(at).execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// Sets an account's status from `from` to `to`; false when it was not `from`.
pub async fn set_status(
    tx: &mut Tx,
    account: &str,
    from: AccountStatus,
    to: AccountStatus,
) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE accounts SET status = $2 WHERE id = $1 AND status = $3")
        .bind(account).bind(to.as_str()).bind(from.as_str())
        .execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// Marks an app deleted by its owner: its running usage ends now, the platform is told.
/// Returns false when the app was already deleted.
pub async fn delete_app(
    tx: &mut Tx,
    app: &str,
    account: &str,
    at: DateTime<Utc>,
    reason: &str,
) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE apps SET deleted_at = $2, status = 'deleted' WHERE id = $1 AND deleted_at IS NULL")
        .bind(app).bind(at).execute(c).await?.rows_affected());
    if n != 1 {
        return Ok(false);
    }
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE usage_records SET ended_at = $2 WHERE app_id = $1 AND ended_at IS NULL AND started_at < $2")
        .bind(app).bind(at).execute(c).await?.rows_affected());
    super::lifecycle::platform_event(tx, at, account, app, "app.delete", reason).await?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// The queue and the deletion record

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct QueueRow {
    pub account_id: String,
    pub reason: String,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

const QUEUE_COLUMNS: &str = "account_id, reason, queued_at, started_at, completed_at";

/// Deletions not finished yet, oldest first.
pub async fn pending(db: impl Into<Conn<'_>>) -> anyhow::Result<Vec<QueueRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {QUEUE_COLUMNS} FROM deletion_queue WHERE completed_at IS NULL ORDER BY queued_at, account_id"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, QueueRow>(sql).fetch_all(p).await?))
}

pub async fn record(db: impl Into<Conn<'_>>, account: &str) -> anyhow::Result<Option<QueueRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {QUEUE_COLUMNS} FROM deletion_queue WHERE account_id = $1"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, QueueRow>(sql).bind(account).fetch_optional(p).await?))
}

/// Starts a deletion: from here on the account cannot be reactivated. Returns false when it
/// had already started (a resumed run) — the caller goes on either way.
pub async fn start(tx: &mut Tx, account: &str, at: DateTime<Utc>) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE deletion_queue SET started_at = $2 WHERE account_id = $1 AND started_at IS NULL")
        .bind(account).bind(at).execute(c).await?.rows_affected());
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE accounts SET status = 'deleting' WHERE id = $1 AND status <> 'deleted'")
        .bind(account).execute(c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn complete(tx: &mut Tx, account: &str, at: DateTime<Utc>) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE deletion_queue SET completed_at = $2 WHERE account_id = $1 AND completed_at IS NULL")
        .bind(account).bind(at).execute(c).await?.rows_affected());
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE accounts SET status = 'deleted', deleted_at = $2 WHERE id = $1")
        .bind(account).bind(at).execute(c).await?.rows_affected());
    Ok(n == 1)
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ProgressRow {
    pub category: String,
    pub deleted: i64,
    pub completed_at: Option<DateTime<Utc>>,
}

pub async fn progress(db: impl Into<Conn<'_>>, account: &str) -> anyhow::Result<Vec<ProgressRow>> {
    Ok(with_db!(db, p => sqlx::query_as::<_, ProgressRow>(
        "SELECT category, deleted, completed_at FROM deletion_progress WHERE account_id = $1 ORDER BY category")
        .bind(account).fetch_all(p).await?))
}

/// Adds a batch's count to its category, in the batch's transaction; `done` closes it.
pub async fn add_progress(
    tx: &mut Tx,
    account: &str,
    category: Category,
    deleted: i64,
    done_at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO deletion_progress (account_id, category, deleted, completed_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (account_id, category) DO UPDATE SET deleted = deletion_progress.deleted + excluded.deleted,
             completed_at = COALESCE(deletion_progress.completed_at, excluded.completed_at)")
        .bind(account).bind(category.as_str()).bind(deleted).bind(done_at)
        .execute(c).await?.rows_affected());
    Ok(())
}

/// How many rows of `category` the account still has (the dry-run's plan, and the check that a
/// category is finished).
pub async fn remaining(
    db: impl Into<Conn<'_>>,
    account: &str,
    category: Category,
) -> anyhow::Result<i64> {
    let sql = match category {
        Category::Deployments => {
            "SELECT COUNT(*) FROM deployments d JOIN apps a ON a.id = d.app_id WHERE a.account_id = $1"
        }
        Category::Activity => "SELECT COUNT(*) FROM account_events WHERE account_id = $1",
        Category::Aliases => "SELECT COUNT(*) FROM aliases WHERE account_id = $1",
        Category::Certificates => {
            "SELECT COUNT(*) FROM certificates ce JOIN domains d ON d.id = ce.domain_id
             JOIN apps a ON a.id = d.app_id WHERE a.account_id = $1"
        }
        Category::Domains => {
            "SELECT COUNT(*) FROM domains d JOIN apps a ON a.id = d.app_id WHERE a.account_id = $1"
        }
        Category::StripeCustomer | Category::PaymentMethods => {
            "SELECT COUNT(*) FROM payment_methods WHERE account_id = $1"
        }
        Category::Apps => {
            "SELECT COUNT(*) FROM apps WHERE account_id = $1 AND deleted_at IS NULL"
        }
        Category::PersonalData => {
            "SELECT CAST((SELECT COUNT(*) FROM accounts WHERE id = $1 AND email <> '')
                 + (SELECT COUNT(*) FROM hds_contacts WHERE account_id = $1)
                 + (SELECT COUNT(*) FROM payment_attempts pa JOIN invoices i ON i.id = pa.invoice_id
                    WHERE i.account_id = $1 AND (pa.stripe_customer IS NOT NULL OR pa.stripe_payment_method IS NOT NULL))
                 + (SELECT COUNT(*) FROM outbox WHERE account_id = $1 AND to_address <> '' AND kind <> 'account_deleted')
                 + (SELECT COUNT(*) FROM referral_rewards WHERE invitee_id = $1 AND invitee_name <> '')
               AS BIGINT)"
        }
    };
    let n: (i64,) = with_db!(db, p => sqlx::query_as(sql).bind(account).fetch_one(p).await?);
    Ok(n.0)
}

/// Deletes up to `limit` rows of a row-deleting category; returns how many.
pub async fn delete_batch(
    tx: &mut Tx,
    account: &str,
    category: Category,
    limit: i64,
) -> anyhow::Result<i64> {
    let sql = match category {
        Category::Deployments => {
            "DELETE FROM deployments WHERE id IN (SELECT d.id FROM deployments d JOIN apps a ON a.id = d.app_id
             WHERE a.account_id = $1 ORDER BY d.id LIMIT $2)"
        }
        Category::Activity => {
            "DELETE FROM account_events WHERE id IN (SELECT id FROM account_events WHERE account_id = $1 ORDER BY id LIMIT $2)"
        }
        Category::Aliases => {
            "DELETE FROM aliases WHERE id IN (SELECT id FROM aliases WHERE account_id = $1 ORDER BY id LIMIT $2)"
        }
        Category::Certificates => {
            "DELETE FROM certificates WHERE id IN (SELECT ce.id FROM certificates ce JOIN domains d ON d.id = ce.domain_id
             JOIN apps a ON a.id = d.app_id WHERE a.account_id = $1 ORDER BY ce.id LIMIT $2)"
        }
        Category::Domains => {
            "DELETE FROM domains WHERE id IN (SELECT d.id FROM domains d JOIN apps a ON a.id = d.app_id
             WHERE a.account_id = $1 ORDER BY d.id LIMIT $2)"
        }
        Category::PaymentMethods => {
            "DELETE FROM payment_methods WHERE account_id IN (SELECT account_id FROM payment_methods WHERE account_id = $1 LIMIT $2)"
        }
        Category::StripeCustomer | Category::Apps | Category::PersonalData => {
            anyhow::bail!("{} is not deleted by rows", category.as_str())
        }
    };
    let n = with_db!(&mut *tx, c => sqlx::query(sql).bind(account).bind(limit).execute(c).await?.rows_affected());
    Ok(n as i64)
}

/// The Stripe customer on file, if any.
pub async fn stripe_customer(
    db: impl Into<Conn<'_>>,
    account: &str,
) -> anyhow::Result<Option<String>> {
    let row: Option<(String,)> = with_db!(db, p => sqlx::query_as(
        "SELECT stripe_customer FROM payment_methods WHERE account_id = $1")
        .bind(account).fetch_optional(p).await?);
    Ok(row.map(|r| r.0))
}

/// Marks up to `limit` apps deleted, with a platform event each; returns how many.
pub async fn delete_apps_batch(
    tx: &mut Tx,
    account: &str,
    limit: i64,
    at: DateTime<Utc>,
    reason: &str,
) -> anyhow::Result<i64> {
    let apps: Vec<(String,)> = with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT id FROM apps WHERE account_id = $1 AND deleted_at IS NULL ORDER BY id LIMIT $2")
        .bind(account).bind(limit).fetch_all(c).await?);
    let mut n = 0;
    for (app,) in apps {
        if delete_app(tx, &app, account, at, reason).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// The account's emails, counted by kind and outbox status: the delete job decides from them
/// (`core::deletion::emails_to_wait_for`) whether it may strip the address yet. It reads them in
/// the transaction that strips its personal data (on SQLite that transaction holds the write
/// lock from its start, so no email is queued between this read and the stripping); the
/// dry-run's plan reads them from the pool.
pub async fn emails_by_status(
    conn: impl Into<Conn<'_>>,
    account: &str,
) -> anyhow::Result<Vec<WaitingEmail>> {
    let rows: Vec<(String, String, i64)> = with_db!(conn, c => sqlx::query_as(
        "SELECT kind, status, COUNT(*) FROM outbox WHERE account_id = $1
         GROUP BY kind, status ORDER BY kind, status")
        .bind(account).fetch_all(c).await?);
    rows.into_iter()
        .map(|(kind, status, count)| {
            // A kind billrun never wrote: no rule says whether the deletion waits for it, so
            // it stops here, naming the account, rather than guess.
            let named = |e| {
                anyhow::anyhow!(
                    "outbox of account {account} ({count} {kind} emails, {status}): {e}"
                )
            };
            let status = OutboxStatus::try_from(status.clone()).map_err(named)?;
            let kind = EmailKind::try_from(kind.clone()).map_err(named)?;
            Ok(WaitingEmail {
                kind,
                status,
                count,
            })
        })
        .collect()
}

/// Strips what an invoice does not require, keeping invoices, lines, payments and the credit
/// ledger (accounting documents, kept 10 years). Returns how many rows were changed.
///
/// Kept: the buyer identity printed on each invoice (a legal mention), amounts, dates, payment
/// intent ids (the payment's reference), credit purchase references. Stripped: the profile
/// (email, name, company, address, VAT number), the HDS contact, the Stripe customer and
/// payment-method ids on payment attempts, the address and data of sent emails (pending ones
/// are cancelled: the delete job strips only once those it must deliver are sent or dead, see
/// `core::deletion::pending_email`), the invitee's name on its referrer's unused rewards.
pub async fn strip_personal_data(tx: &mut Tx, account: &str) -> anyhow::Result<i64> {
    let mut n = 0u64;
    n += with_db!(&mut *tx, c => sqlx::query(
        "UPDATE accounts SET email = '', name = 'Deleted account', company = NULL, address = '', vat_number = NULL,
            siren = NULL, electronic_address = NULL, electronic_address_scheme = NULL
         WHERE id = $1 AND email <> ''")
        .bind(account).execute(c).await?.rows_affected());
    n += with_db!(&mut *tx, c => sqlx::query("DELETE FROM hds_contacts WHERE account_id = $1")
        .bind(account).execute(c).await?.rows_affected());
    n += with_db!(&mut *tx, c => sqlx::query(
        "UPDATE payment_attempts SET stripe_customer = NULL, stripe_payment_method = NULL
         WHERE invoice_id IN (SELECT id FROM invoices WHERE account_id = $1)
           AND (stripe_customer IS NOT NULL OR stripe_payment_method IS NOT NULL)")
        .bind(account).execute(c).await?.rows_affected());
    n += with_db!(&mut *tx, c => sqlx::query(
        "UPDATE outbox SET to_address = '', data = '{}',
             status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END
         WHERE account_id = $1 AND to_address <> '' AND kind <> 'account_deleted'")
        .bind(account).execute(c).await?.rows_affected());
    n += with_db!(&mut *tx, c => sqlx::query(
        "UPDATE referral_rewards SET invitee_name = '' WHERE invitee_id = $1 AND invitee_name <> ''")
        .bind(account).execute(c).await?.rows_affected());
    Ok(n as i64)
}
