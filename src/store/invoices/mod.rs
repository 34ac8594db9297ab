//! Invoices and their lines as stored: reading them, and the updates collection makes. Issuing
//! them (numbering and inserting) is [`finalize`]'s.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::FromRow;

use super::{Conn, DbDecimal, Tx};
pub use crate::core::document::InvoiceStatus;
use crate::core::einvoice::PaymentMeans;
use crate::core::ids::AccountId;
use crate::core::locale::Language;
use crate::core::money::Currency;
use crate::core::period::Period;
use crate::core::pricing::UsageKind;
use crate::core::vat::VatCase;
use crate::with_db;

mod finalize;

pub use finalize::{
    DiscountLine, NewInvoice, finalize, finalize_group, format_number, record_payment_means,
};

#[derive(Debug, Clone, FromRow)]
pub struct InvoiceRow {
    pub id: i64,
    pub number: String,
    #[sqlx(try_from = "String")]
    pub account_id: AccountId,
    #[sqlx(try_from = "String")]
    pub period: Period,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    #[sqlx(try_from = "String")]
    pub status: InvoiceStatus,
    #[sqlx(try_from = "String")]
    pub currency: Currency,
    #[sqlx(try_from = "String")]
    pub language: Language,
    pub buyer_name: String,
    pub buyer_company: Option<String>,
    pub buyer_address: String,
    pub buyer_country: String,
    pub buyer_vat_number: Option<String>,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    #[sqlx(try_from = "String")]
    pub tax_case: VatCase,
    pub tax_rate: DbDecimal,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub brought_forward_minor: i64,
    pub credit_applied_minor: i64,
    pub amount_paid_minor: i64,
    pub carried_forward_minor: i64,
    pub amount_due_minor: i64,
    pub issued_at: DateTime<Utc>,
    pub due_at: NaiveDate,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub scheduled_failures: i32,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub blocked_pm_version: Option<i64>,
    pub collection_exhausted_at: Option<DateTime<Utc>>,
    pub vies_consultation: Option<String>,
    /// What its credit notes credited, VAT included (issue 22).
    pub credited_minor: i64,
    /// The part of it that lowered what the invoice owed (the rest was refunded).
    pub credited_due_minor: i64,
    pub buyer_siren: Option<String>,
    pub buyer_electronic_address: Option<String>,
    pub buyer_electronic_address_scheme: Option<String>,
    #[sqlx(try_from = "String")]
    pub payment_means: PaymentMeans,
    pub sepa_mandate: Option<String>,
}

impl InvoiceRow {
    pub fn taxable_base_minor(&self) -> i64 {
        self.subtotal_minor - self.discount_minor
    }
}

const INVOICE_COLUMNS: &str = "id, number, account_id, period, period_start, period_end, status, currency, language,
    buyer_name, buyer_company, buyer_address, buyer_country, buyer_vat_number, subtotal_minor, discount_minor,
    tax_case, tax_rate, tax_minor, total_minor, brought_forward_minor, credit_applied_minor, amount_paid_minor,
    carried_forward_minor, amount_due_minor, issued_at, due_at, next_attempt_at, scheduled_failures, last_failure_at,
    blocked_pm_version, collection_exhausted_at, vies_consultation, credited_minor, credited_due_minor, buyer_siren,
    buyer_electronic_address, buyer_electronic_address_scheme, payment_means, sepa_mandate";

#[derive(Debug, Clone, FromRow)]
pub struct LineRow {
    pub invoice_id: i64,
    pub position: i32,
    pub description: String,
    pub app_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub kind: UsageKind,
    pub item: String,
    pub quantity_hours: DbDecimal,
    pub unit_price: DbDecimal,
    pub amount_minor: i64,
}

/// Whether the account already has an invoice for the period.
pub async fn exists_for_period(
    conn: impl Into<Conn<'_>>,
    account_id: &str,
    period: Period,
) -> anyhow::Result<bool> {
    let row: Option<(i64,)> = with_db!(conn, c => sqlx::query_as(
        "SELECT id FROM invoices WHERE account_id = $1 AND period = $2")
        .bind(account_id).bind(period.to_string()).fetch_optional(c).await?);
    Ok(row.is_some())
}

/// The accounts in `[first, last]` that already have an invoice for the period.
pub async fn invoiced_in_range(
    db: impl Into<Conn<'_>>,
    first: &str,
    last: &str,
    period: Period,
) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String,)> = with_db!(db, p => sqlx::query_as(
        "SELECT account_id FROM invoices WHERE account_id >= $1 AND account_id <= $2 AND period = $3")
        .bind(first).bind(last).bind(period.to_string()).fetch_all(p).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn discounts(
    db: impl Into<Conn<'_>>,
    invoice_id: i64,
) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT description, amount_minor FROM invoice_discounts WHERE invoice_id = $1 ORDER BY position")
        .bind(invoice_id).fetch_all(p).await?))
}

pub async fn get(conn: impl Into<Conn<'_>>, id: i64) -> anyhow::Result<Option<InvoiceRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1"
    ));
    Ok(with_db!(conn, c => sqlx::query_as::<_, InvoiceRow>(sql).bind(id).fetch_optional(c).await?))
}

/// Invoices the collect job looks at: open, unpaid or pending, in account then issue order.
pub async fn collectable(
    db: impl Into<Conn<'_>>,
    account: Option<&str>,
) -> anyhow::Result<Vec<InvoiceRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE status IN ('open', 'unpaid', 'pending')
         AND ($1 IS NULL OR account_id = $1) ORDER BY account_id, id"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, InvoiceRow>(sql).bind(account).fetch_all(p).await?))
}

/// Up to `limit` collectable invoices in (account, id) order after `after`, within the range
/// `[first, last]` of account ids when given: the collect job's pages. (The bounds are bound as
/// NULL when absent rather than as sentinel strings: text order follows the database's
/// collation, and so do both sides of each comparison here.)
pub async fn collectable_page(
    db: impl Into<Conn<'_>>,
    range: Option<(&str, &str)>,
    after: Option<(&str, i64)>,
    limit: i64,
) -> anyhow::Result<Vec<InvoiceRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE status IN ('open', 'unpaid', 'pending')
         AND ($1 IS NULL OR account_id >= $1) AND ($2 IS NULL OR account_id <= $2)
         AND ($3 IS NULL OR account_id > $3 OR (account_id = $3 AND id > $4))
         ORDER BY account_id, id LIMIT $5"
    ));
    let (first, last) = (range.map(|r| r.0), range.map(|r| r.1));
    let (after_account, after_id) = (after.map(|a| a.0), after.map_or(0, |a| a.1));
    Ok(with_db!(db, p => sqlx::query_as::<_, InvoiceRow>(sql)
        .bind(first).bind(last).bind(after_account).bind(after_id).bind(limit)
        .fetch_all(p).await?))
}

/// How many invoices [`collectable_page`] would go through (for the progress bar).
pub async fn count_collectable(
    db: impl Into<Conn<'_>>,
    range: Option<(&str, &str)>,
) -> anyhow::Result<i64> {
    let (first, last) = (range.map(|r| r.0), range.map(|r| r.1));
    let (n,): (i64,) = with_db!(db, p => sqlx::query_as(
        "SELECT COUNT(*) FROM invoices WHERE status IN ('open', 'unpaid', 'pending')
         AND ($1 IS NULL OR account_id >= $1) AND ($2 IS NULL OR account_id <= $2)")
        .bind(first).bind(last).fetch_one(p).await?);
    Ok(n)
}

/// Sets an invoice's status.
pub async fn set_status(tx: &mut Tx, id: i64, status: InvoiceStatus) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query("UPDATE invoices SET status = $2 WHERE id = $1")
        .bind(id).bind(status.as_str()).execute(c).await?.rows_affected());
    Ok(())
}

/// Records a payment; the invoice is paid when nothing is left due.
pub async fn record_payment(tx: &mut Tx, id: i64, amount: i64) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE invoices SET amount_paid_minor = amount_paid_minor + $2, amount_due_minor = amount_due_minor - $2,
            status = CASE WHEN amount_due_minor - $2 = 0 THEN 'paid' ELSE status END,
            next_attempt_at = CASE WHEN amount_due_minor - $2 = 0 THEN NULL ELSE next_attempt_at END
         WHERE id = $1")
        .bind(id).bind(amount).execute(c).await?.rows_affected());
    Ok(())
}

/// Marks an invoice paid (nothing due any more) and stops its retries.
pub async fn mark_settled(tx: &mut Tx, id: i64) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE invoices SET status = 'paid', next_attempt_at = NULL WHERE id = $1 AND amount_due_minor = 0")
        .bind(id).execute(c).await?.rows_affected());
    Ok(())
}

/// Moves what is left (too small to charge) to the account's next invoice.
pub async fn carry_forward(tx: &mut Tx, id: i64, amount: i64) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE invoices SET carried_forward_minor = carried_forward_minor + $2, amount_due_minor = amount_due_minor - $2,
            status = 'carried_forward', next_attempt_at = NULL WHERE id = $1")
        .bind(id).bind(amount).execute(c).await?.rows_affected());
    Ok(())
}

/// Records a failed attempt's effect on the schedule.
pub async fn record_failure(
    tx: &mut Tx,
    id: i64,
    scheduled_failures: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    exhausted_at: Option<DateTime<Utc>>,
    last_failure_at: DateTime<Utc>,
    blocked_pm_version: Option<i64>,
) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE invoices SET status = 'unpaid', scheduled_failures = $2, next_attempt_at = $3,
            collection_exhausted_at = COALESCE(collection_exhausted_at, $4), last_failure_at = $5, blocked_pm_version = $6
         WHERE id = $1")
        .bind(id).bind(scheduled_failures).bind(next_attempt_at).bind(exhausted_at).bind(last_failure_at).bind(blocked_pm_version)
        .execute(c).await?.rows_affected());
    Ok(())
}

/// Finds an invoice by number (`2026-000001`) or database id.
pub async fn find(db: impl Into<Conn<'_>>, key: &str) -> anyhow::Result<Option<InvoiceRow>> {
    let mut db = Conn::of(db);
    let by_number = sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE number = $1"
    ));
    if let Some(row) = with_db!(&mut db, p => sqlx::query_as::<_, InvoiceRow>(by_number).bind(key).fetch_optional(p).await?)
    {
        return Ok(Some(row));
    }
    let Ok(id) = key.parse::<i64>() else {
        return Ok(None);
    };
    let by_id = sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, InvoiceRow>(by_id).bind(id).fetch_optional(p).await?))
}

/// [`find`], or the operator's error naming the key (exit code 2).
pub async fn require(db: impl Into<Conn<'_>>, key: &str) -> anyhow::Result<InvoiceRow> {
    Ok(find(db, key).await?.ok_or_else(|| {
        crate::config::BadInput(format!(
            "no invoice `{}`",
            crate::core::bounds::excerpt(key)
        ))
    })?)
}

#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub account: Option<String>,
    pub period: Option<Period>,
    pub status: Option<InvoiceStatus>,
}

pub async fn list(db: impl Into<Conn<'_>>, f: &ListFilter) -> anyhow::Result<Vec<InvoiceRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices
         WHERE ($1 IS NULL OR account_id = $1) AND ($2 IS NULL OR period = $2) AND ($3 IS NULL OR status = $3)
         ORDER BY number"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, InvoiceRow>(sql)
        .bind(f.account.as_deref())
        .bind(f.period.map(|p| p.to_string()))
        .bind(f.status.map(|s| s.as_str()))
        .fetch_all(p).await?))
}

/// [`list`] a page at a time: the next `limit` invoices after number `after` (from the first
/// when `None`), in number order, for output that streams instead of holding every invoice.
pub async fn list_page(
    db: impl Into<Conn<'_>>,
    f: &ListFilter,
    after: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<InvoiceRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices
         WHERE ($1 IS NULL OR account_id = $1) AND ($2 IS NULL OR period = $2) AND ($3 IS NULL OR status = $3)
           AND ($4 IS NULL OR number > $4)
         ORDER BY number LIMIT $5"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, InvoiceRow>(sql)
        .bind(f.account.as_deref())
        .bind(f.period.map(|p| p.to_string()))
        .bind(f.status.map(|s| s.as_str()))
        .bind(after)
        .bind(limit)
        .fetch_all(p).await?))
}

pub async fn lines(db: impl Into<Conn<'_>>, invoice_id: i64) -> anyhow::Result<Vec<LineRow>> {
    Ok(with_db!(db, p => sqlx::query_as::<_, LineRow>(
        "SELECT invoice_id, position, description, app_id, kind, item, quantity_hours, unit_price, amount_minor
         FROM invoice_lines WHERE invoice_id = $1 ORDER BY position")
        .bind(invoice_id).fetch_all(p).await?))
}

/// The lines of the invoices with ids in `[first, last]`, by invoice then position: a page of
/// invoices' lines in one query.
pub async fn lines_between(
    db: impl Into<Conn<'_>>,
    first: i64,
    last: i64,
) -> anyhow::Result<Vec<LineRow>> {
    Ok(with_db!(db, p => sqlx::query_as::<_, LineRow>(
        "SELECT invoice_id, position, description, app_id, kind, item, quantity_hours, unit_price, amount_minor
         FROM invoice_lines WHERE invoice_id >= $1 AND invoice_id <= $2 ORDER BY invoice_id, position")
        .bind(first).bind(last).fetch_all(p).await?))
}

/// (invoice id, description, amount) of the discounts of the invoices with ids in `[first,
/// last]`, by invoice then position.
pub async fn discounts_between(
    db: impl Into<Conn<'_>>,
    first: i64,
    last: i64,
) -> anyhow::Result<Vec<(i64, String, i64)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT invoice_id, description, amount_minor FROM invoice_discounts
         WHERE invoice_id >= $1 AND invoice_id <= $2 ORDER BY invoice_id, position")
        .bind(first).bind(last).fetch_all(p).await?))
}

/// Collectable invoices of the accounts with ids in `[first, last]` (a scale-out batch).
pub async fn collectable_between(
    db: impl Into<Conn<'_>>,
    first: &str,
    last: &str,
) -> anyhow::Result<Vec<InvoiceRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE status IN ('open', 'unpaid', 'pending')
         AND account_id >= $1 AND account_id <= $2 ORDER BY account_id, id"
    ));
    Ok(
        with_db!(db, p => sqlx::query_as::<_, InvoiceRow>(sql).bind(first).bind(last).fetch_all(p).await?),
    )
}
