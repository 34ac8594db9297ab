//! Payment methods, the credit ledger, payment attempts, referral rewards, balance transfers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, Tx};
use crate::config::BadInput;
use crate::core::collection::{AttemptOutcome, Trigger};
use crate::core::period::Period;
use crate::with_db;

// ---------------------------------------------------------------------------------------------
// Payment methods

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct PaymentMethodRow {
    pub account_id: String,
    pub kind: String,
    pub stripe_customer: String,
    pub stripe_payment_method: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

const PM_COLUMNS: &str =
    "account_id, kind, stripe_customer, stripe_payment_method, version, updated_at";

pub async fn payment_method(
    db: impl Into<Conn<'_>>,
    account: &str,
) -> anyhow::Result<Option<PaymentMethodRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {PM_COLUMNS} FROM payment_methods WHERE account_id = $1"
    ));
    Ok(
        with_db!(db, p => sqlx::query_as::<_, PaymentMethodRow>(sql).bind(account).fetch_optional(p).await?),
    )
}

/// Sets the default payment method. Setting the same one again changes nothing (returns false).
pub async fn set_payment_method(
    tx: &mut Tx,
    account: &str,
    kind: &str,
    customer: &str,
    pm: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    if let Some(cur) = payment_method(&mut *tx, account).await?
        && cur.kind == kind
        && cur.stripe_customer == customer
        && cur.stripe_payment_method == pm
    {
        return Ok(false);
    }
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO payment_methods (account_id, kind, stripe_customer, stripe_payment_method, version, updated_at)
         VALUES ($1, $2, $3, $4, 1, $5)
         ON CONFLICT (account_id) DO UPDATE SET kind = excluded.kind, stripe_customer = excluded.stripe_customer,
           stripe_payment_method = excluded.stripe_payment_method, version = payment_methods.version + 1,
           updated_at = excluded.updated_at")
        .bind(account).bind(kind).bind(customer).bind(pm).bind(at)
        .execute(c).await?.rows_affected());
    Ok(true)
}

/// Sets the SEPA mandate reference (EN 16931 BT-89) of the account's payment method (`None`
/// clears it); returns whether it changed.
pub async fn set_sepa_mandate(
    tx: &mut Tx,
    account: &str,
    mandate: Option<&str>,
) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE payment_methods SET sepa_mandate = $2
         WHERE account_id = $1 AND sepa_mandate IS DISTINCT FROM $2")
        .bind(account).bind(mandate).execute(c).await?.rows_affected());
    Ok(n > 0)
}

// ---------------------------------------------------------------------------------------------
// Credit ledger

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct LedgerRow {
    pub id: i64,
    pub account_id: String,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub amount_minor: i64,
    pub reference: String,
    pub invoice_id: Option<i64>,
    pub balance_after_minor: i64,
}

pub async fn credit_balance(db: impl Into<Conn<'_>>, account: &str) -> anyhow::Result<i64> {
    let row: Option<(i64,)> = with_db!(db, p => sqlx::query_as("SELECT credit_balance_minor FROM accounts WHERE id = $1")
        .bind(account).fetch_optional(p).await?);
    Ok(row.map_or(0, |r| r.0))
}

pub async fn ledger(db: impl Into<Conn<'_>>, account: &str) -> anyhow::Result<Vec<LedgerRow>> {
    Ok(with_db!(db, p => sqlx::query_as::<_, LedgerRow>(
        "SELECT id, account_id, at, kind, amount_minor, reference, invoice_id, balance_after_minor
         FROM credit_ledger WHERE account_id = $1 ORDER BY id")
        .bind(account).fetch_all(p).await?))
}

/// Records a credit purchase, idempotent by reference: the same reference with the same account
/// and amount is a no-op (returns false); with anything else it is refused.
pub async fn add_credit(
    tx: &mut Tx,
    account: &str,
    amount: i64,
    reference: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let existing: Option<(String, i64)> = with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT account_id, amount_minor FROM credit_ledger WHERE reference = $1")
        .bind(reference).fetch_optional(c).await?);
    if let Some((acc, amt)) = existing {
        if acc == account && amt == amount {
            return Ok(false);
        }
        return Err(BadInput(format!(
            "reference `{reference}` was already recorded for account {acc} with amount {}",
            crate::core::money::format_minor(amt)
        ))
        .into());
    }
    let (balance,): (i64,) = with_db!(&mut *tx, c => sqlx::query_as(
        "UPDATE accounts SET credit_balance_minor = credit_balance_minor + $2 WHERE id = $1 RETURNING credit_balance_minor")
        .bind(account).bind(amount).fetch_one(c).await?);
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO credit_ledger (account_id, at, kind, amount_minor, reference, invoice_id, balance_after_minor)
         VALUES ($1, $2, 'purchase', $3, $4, NULL, $5)")
        .bind(account).bind(at).bind(amount).bind(reference).bind(balance)
        .execute(c).await?.rows_affected());
    Ok(true)
}

/// Applies up to `amount` of credit to an invoice; returns what was applied (the balance may
/// have changed since it was read: the conditional update never lets it go negative).
pub async fn apply_credit(
    tx: &mut Tx,
    account: &str,
    invoice_id: i64,
    amount: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<i64> {
    if amount <= 0 {
        return Ok(0);
    }
    let row: Option<(i64,)> = with_db!(&mut *tx, c => sqlx::query_as(
        "UPDATE accounts SET credit_balance_minor = credit_balance_minor - $2
         WHERE id = $1 AND credit_balance_minor >= $2 RETURNING credit_balance_minor")
        .bind(account).bind(amount).fetch_optional(c).await?);
    let Some((balance,)) = row else { return Ok(0) };
    let (n,): (i64,) = with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT COUNT(*) FROM credit_ledger WHERE invoice_id = $1 AND kind = 'applied'")
        .bind(invoice_id).fetch_one(c).await?);
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO credit_ledger (account_id, at, kind, amount_minor, reference, invoice_id, balance_after_minor)
         VALUES ($1, $2, 'applied', $3, $4, $5, $6)")
        .bind(account).bind(at).bind(-amount).bind(format!("invoice:{invoice_id}:{}", n + 1)).bind(invoice_id).bind(balance)
        .execute(c).await?.rows_affected());
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE invoices SET credit_applied_minor = credit_applied_minor + $2, amount_due_minor = amount_due_minor - $2 WHERE id = $1")
        .bind(invoice_id).bind(amount).execute(c).await?.rows_affected());
    Ok(amount)
}

// ---------------------------------------------------------------------------------------------
// Payment attempts

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub invoice_id: i64,
    pub number: i32,
    #[sqlx(try_from = "String")]
    pub trigger: Trigger,
    pub method: String,
    pub payment_method_version: Option<i64>,
    pub stripe_customer: Option<String>,
    pub stripe_payment_method: Option<String>,
    pub amount_minor: i64,
    pub idempotency_key: String,
    pub gateway: String,
    pub payment_intent_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub outcome: AttemptOutcome,
    pub decline_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

pub(super) const ATTEMPT_COLUMNS: &str = "id, invoice_id, number, trigger, method, payment_method_version, stripe_customer,
    stripe_payment_method, amount_minor, idempotency_key, gateway, payment_intent_id, outcome, decline_code,
    failure_message, created_at, settled_at";

pub async fn attempts(db: impl Into<Conn<'_>>, invoice_id: i64) -> anyhow::Result<Vec<AttemptRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ATTEMPT_COLUMNS} FROM payment_attempts WHERE invoice_id = $1 ORDER BY number"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, AttemptRow>(sql).bind(invoice_id).fetch_all(p).await?))
}

pub struct NewAttempt<'a> {
    pub invoice_id: i64,
    pub number: i32,
    pub trigger: Trigger,
    pub method: &'a str,
    pub pm: Option<&'a PaymentMethodRow>,
    pub amount_minor: i64,
    pub idempotency_key: &'a str,
    pub gateway: &'a str,
    pub outcome: AttemptOutcome,
    pub decline_code: Option<&'a str>,
    pub failure_message: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Inserts an attempt; `None` when another run took this attempt number first.
pub async fn insert_attempt(tx: &mut Tx, a: &NewAttempt<'_>) -> anyhow::Result<Option<i64>> {
    // Inserted settled unless its outcome is still to be learnt.
    let settled = (a.outcome != AttemptOutcome::Unknown).then_some(a.at);
    let row: Option<(i64,)> = with_db!(&mut *tx, c => sqlx::query_as(
        "INSERT INTO payment_attempts (invoice_id, number, trigger, method, payment_method_version, stripe_customer,
            stripe_payment_method, amount_minor, idempotency_key, gateway, outcome, decline_code, failure_message,
            created_at, settled_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT DO NOTHING RETURNING id")
        .bind(a.invoice_id).bind(a.number).bind(a.trigger.as_str()).bind(a.method)
        .bind(a.pm.map(|p| p.version)).bind(a.pm.map(|p| p.stripe_customer.as_str()))
        .bind(a.pm.map(|p| p.stripe_payment_method.as_str())).bind(a.amount_minor).bind(a.idempotency_key)
        .bind(a.gateway).bind(a.outcome.as_str()).bind(a.decline_code).bind(a.failure_message).bind(a.at).bind(settled)
        .fetch_optional(c).await?);
    Ok(row.map(|r| r.0))
}

pub async fn settle_attempt(
    tx: &mut Tx,
    attempt_id: i64,
    outcome: AttemptOutcome,
    payment_intent: Option<&str>,
    decline_code: Option<&str>,
    message: Option<&str>,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let settled = outcome.is_settled().then_some(at);
    // Only an attempt still in flight can be settled: a second run settling the same attempt
    // (it sent the same idempotency key) finds it settled and changes nothing.
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE payment_attempts SET outcome = $2, payment_intent_id = COALESCE($3, payment_intent_id),
            decline_code = $4, failure_message = $5, settled_at = $6
         WHERE id = $1 AND outcome IN ('unknown', 'processing')")
        .bind(attempt_id).bind(outcome.as_str()).bind(payment_intent).bind(decline_code).bind(message).bind(settled)
        .execute(c).await?.rows_affected());
    Ok(n == 1)
}

// ---------------------------------------------------------------------------------------------
// Referral rewards

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct RewardRow {
    pub id: i64,
    pub referrer_id: String,
    pub invitee_id: String,
    pub invitee_name: String,
    pub source_invoice_id: i64,
    #[sqlx(try_from = "String")]
    pub period: Period,
    pub amount_minor: i64,
    pub remaining_minor: i64,
    pub earned_at: DateTime<Utc>,
}

const REWARD_COLUMNS: &str = "id, referrer_id, invitee_id, invitee_name, source_invoice_id, period, amount_minor, remaining_minor, earned_at";

/// Grants a reward for a paid invoice; once per source invoice.
#[allow(clippy::too_many_arguments)]
pub async fn grant_reward(
    tx: &mut Tx,
    referrer: &str,
    invitee: &str,
    invitee_name: &str,
    source_invoice_id: i64,
    period: &str,
    amount: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO referral_rewards (referrer_id, invitee_id, invitee_name, source_invoice_id, period, amount_minor, remaining_minor, earned_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (source_invoice_id) DO NOTHING")
        .bind(referrer).bind(invitee).bind(invitee_name).bind(source_invoice_id).bind(period).bind(amount).bind(at)
        .execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// Uses part of a reward on an invoice; false when it no longer has that much left (another
/// run used it: the caller must roll back).
pub async fn use_reward(tx: &mut Tx, reward_id: i64, amount: i64) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE referral_rewards SET remaining_minor = remaining_minor - $2 WHERE id = $1 AND remaining_minor >= $2")
        .bind(reward_id).bind(amount).execute(c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn rewards_of(db: impl Into<Conn<'_>>, referrer: &str) -> anyhow::Result<Vec<RewardRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {REWARD_COLUMNS} FROM referral_rewards WHERE referrer_id = $1 ORDER BY id"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, RewardRow>(sql).bind(referrer).fetch_all(p).await?))
}

// ---------------------------------------------------------------------------------------------
// Balances too small to charge

pub async fn record_transfer(
    tx: &mut Tx,
    from_invoice: i64,
    account: &str,
    amount: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO balance_transfers (from_invoice_id, account_id, amount_minor, to_invoice_id, at) VALUES ($1, $2, $3, NULL, $4)")
        .bind(from_invoice).bind(account).bind(amount).bind(at).execute(c).await?.rows_affected());
    Ok(())
}

/// Marks a just-recorded transfer as waived: it is never brought onto another invoice.
pub async fn waive_transfer(
    tx: &mut Tx,
    from_invoice: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE balance_transfers SET waived_at = $2 WHERE from_invoice_id = $1 AND to_invoice_id IS NULL")
        .bind(from_invoice).bind(at).execute(c).await?.rows_affected());
    Ok(())
}

/// Moves an open transfer onto an invoice; false when another run took it.
pub async fn take_transfer(
    tx: &mut Tx,
    from_invoice: i64,
    to_invoice: i64,
) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE balance_transfers SET to_invoice_id = $2 WHERE from_invoice_id = $1 AND to_invoice_id IS NULL AND waived_at IS NULL")
        .bind(from_invoice).bind(to_invoice).execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// What an invoice carried to a later one, and where: the later invoice's number, `None` while
/// waiting, or `"waived"` when the account closed with it below Stripe's minimum.
pub async fn transfer_from(
    db: impl Into<Conn<'_>>,
    invoice_id: i64,
) -> anyhow::Result<Option<(i64, Option<String>)>> {
    let row: Option<(i64, Option<String>, bool)> = with_db!(db, p => sqlx::query_as(
        "SELECT t.amount_minor, i.number, t.waived_at IS NOT NULL FROM balance_transfers t LEFT JOIN invoices i ON i.id = t.to_invoice_id
         WHERE t.from_invoice_id = $1")
        .bind(invoice_id).fetch_optional(p).await?);
    Ok(row.map(|(amount, to, waived)| {
        (
            amount,
            if waived {
                Some("waived".to_string())
            } else {
                to
            },
        )
    }))
}

/// Transfers brought onto an invoice: (from invoice number, amount).
pub async fn transfers_to(
    db: impl Into<Conn<'_>>,
    invoice_id: i64,
) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT i.number, t.amount_minor FROM balance_transfers t JOIN invoices i ON i.id = t.from_invoice_id
         WHERE t.to_invoice_id = $1 ORDER BY t.from_invoice_id")
        .bind(invoice_id).fetch_all(p).await?))
}

/// [`transfers_to`] for the invoices with ids in `[first, last]`: (to invoice id, from invoice
/// number, amount), by invoice.
pub async fn transfers_to_between(
    db: impl Into<Conn<'_>>,
    first: i64,
    last: i64,
) -> anyhow::Result<Vec<(i64, String, i64)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT t.to_invoice_id, i.number, t.amount_minor FROM balance_transfers t JOIN invoices i ON i.id = t.from_invoice_id
         WHERE t.to_invoice_id >= $1 AND t.to_invoice_id <= $2 ORDER BY t.to_invoice_id, t.from_invoice_id")
        .bind(first).bind(last).fetch_all(p).await?))
}

/// Open rewards of the referrers with ids in `[first, last]`, earned before `before`.
pub async fn open_rewards_in_range(
    db: impl Into<Conn<'_>>,
    first: &str,
    last: &str,
    before: DateTime<Utc>,
) -> anyhow::Result<Vec<RewardRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {REWARD_COLUMNS} FROM referral_rewards
         WHERE referrer_id >= $1 AND referrer_id <= $2 AND remaining_minor > 0 AND earned_at <= $3 ORDER BY id"
    ));
    Ok(
        with_db!(db, p => sqlx::query_as::<_, RewardRow>(sql).bind(first).bind(last).bind(before).fetch_all(p).await?),
    )
}

/// Untransferred small balances of the accounts with ids in `[first, last]`:
/// (account, from invoice id, its number, amount).
pub async fn open_transfers_in_range(
    db: impl Into<Conn<'_>>,
    first: &str,
    last: &str,
) -> anyhow::Result<Vec<(String, i64, String, i64)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT t.account_id, t.from_invoice_id, i.number, t.amount_minor FROM balance_transfers t
         JOIN invoices i ON i.id = t.from_invoice_id
         WHERE t.account_id >= $1 AND t.account_id <= $2 AND t.to_invoice_id IS NULL AND t.waived_at IS NULL
         ORDER BY t.from_invoice_id")
        .bind(first).bind(last).fetch_all(p).await?))
}
