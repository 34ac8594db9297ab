//! Invoices, their lines and the gapless yearly numbering.

use anyhow::Context;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sqlx::FromRow;

use super::{Conn, DbDecimal, Tx};
pub use crate::core::document::InvoiceStatus;
use crate::core::einvoice::PaymentMeans;
use crate::core::ids::{AccountId, InvoiceId};
use crate::core::invoice::{Line, Totals};
use crate::core::locale::Language;
use crate::core::money::Currency;
use crate::core::period::Period;
use crate::core::pricing::UsageKind;
use crate::core::vat::VatCase;
use crate::model::Account;
use crate::with_db;

/// An invoice ready to be finalized: everything but its id and number.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub account: Account,
    pub period: Period,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub lines: Vec<Line>,
    /// Referral rewards used on this invoice.
    pub discounts: Vec<DiscountLine>,
    /// Small balances of earlier invoices brought onto this one: (from invoice id, its number, amount).
    pub brought_forward: Vec<(i64, String, i64)>,
    pub totals: Totals,
    pub issued_at: DateTime<Utc>,
    pub due_at: NaiveDate,
    /// The VIES consultation number its reverse charge rests on (reverse charge only).
    pub vies_consultation: Option<String>,
    /// How it is expected to be paid (EN 16931 BG-16): set from the account's payment method
    /// and credit in the finalizing transaction ([`record_payment_means`]); a draft holds what
    /// its amount alone says.
    pub payment_means: PaymentMeans,
    /// EN 16931 BT-89: the SEPA mandate reference of the account's SEPA debit method.
    pub sepa_mandate: Option<String>,
}

impl NewInvoice {
    pub fn brought_forward_minor(&self) -> i64 {
        self.brought_forward.iter().map(|b| b.2).sum()
    }

    /// What the account owes on this invoice when it is issued.
    pub fn amount_due_minor(&self) -> i64 {
        self.totals.total + self.brought_forward_minor()
    }

    /// Its status when it is issued: paid when nothing is due, open otherwise.
    pub fn issued_status(&self) -> InvoiceStatus {
        if self.amount_due_minor() == 0 {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Open
        }
    }
}

/// A discount line: a referral reward used on an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountLine {
    pub description: String,
    pub reward_id: Option<i64>,
    pub amount_minor: i64,
}

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

/// Formats an invoice number: `2026-000042`.
pub fn format_number(year: i32, n: i64) -> String {
    format!("{year:04}-{n:06}")
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

/// Finalizes an invoice: numbers it and stores it with its lines, discounts and brought-forward
/// balances, in the caller's transaction: [`finalize_group`] with a group of one. Returns
/// `None` when the account already has an invoice for the period, or another run used a reward
/// or balance first (the caller must then roll back, which gives the number back).
pub async fn finalize(
    tx: &mut Tx,
    inv: &NewInvoice,
) -> anyhow::Result<Option<(InvoiceId, String)>> {
    let done = finalize_group(tx, std::slice::from_ref(inv)).await?;
    Ok(done.and_then(|d| d.into_iter().next()))
}

/// Keeps the VIES consultation number a reverse-charge invoice rests on (few invoices: one
/// statement each, none without one).
async fn set_vies_consultation(
    tx: &mut Tx,
    id: i64,
    consultation: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(c) = consultation {
        with_db!(&mut *tx, conn => sqlx::query("UPDATE invoices SET vies_consultation = $2 WHERE id = $1")
            .bind(id).bind(c).execute(conn).await?.rows_affected());
    }
    Ok(())
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

/// Records on each draft how it is expected to be paid (EN 16931 BG-16), from its account's
/// payment method and prepaid credit in the caller's (finalizing) transaction, so that what
/// the invoice records is what was on file when it was issued: nothing due, else credit that
/// covers the amount due (the collect job applies credit first), else the card (UNTDID 4461
/// code 48) or the SEPA debit (59, with its mandate reference, BT-89), else not defined (1).
/// One query for the drafts' accounts (a range of ids).
pub async fn record_payment_means(tx: &mut Tx, drafts: &mut [NewInvoice]) -> anyhow::Result<()> {
    let (Some(first), Some(last)) = (
        drafts.iter().map(|d| d.account.id.as_str()).min(),
        drafts.iter().map(|d| d.account.id.as_str()).max(),
    ) else {
        return Ok(());
    };
    let (first, last) = (first.to_string(), last.to_string());
    let rows: Vec<(String, i64, Option<String>, Option<String>)> = with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT a.id, a.credit_balance_minor, pm.kind, pm.sepa_mandate
         FROM accounts a LEFT JOIN payment_methods pm ON pm.account_id = a.id
         WHERE a.id >= $1 AND a.id <= $2")
        .bind(&first).bind(&last).fetch_all(c).await?);
    let on_file: std::collections::HashMap<&str, (i64, Option<&str>, Option<&str>)> = rows
        .iter()
        .map(|(id, credit, kind, mandate)| {
            (id.as_str(), (*credit, kind.as_deref(), mandate.as_deref()))
        })
        .collect();
    for d in drafts.iter_mut() {
        let (credit, kind, mandate) = on_file
            .get(d.account.id.as_str())
            .copied()
            .unwrap_or((0, None, None));
        d.payment_means = PaymentMeans::at_issue(d.amount_due_minor(), credit, kind);
        d.sepa_mandate = match d.payment_means {
            PaymentMeans::SepaDebit => mandate.map(str::to_string),
            PaymentMeans::Card
            | PaymentMeans::PrepaidCredit
            | PaymentMeans::NothingDue
            | PaymentMeans::NotDefined
            | PaymentMeans::Unrecorded => None,
        };
    }
    Ok(())
}

/// Finalizes invoices together, in the caller's transaction: numbers them in the drafts' order
/// and stores each with its lines, discounts and brought-forward balances, in a few multi-row
/// statements (the only insert of invoices and of lines, per backend; [`finalize`] is a group
/// of one). All or nothing: `None` when any of them cannot be finalized (the account already
/// has an invoice for the period, or another run used a reward or balance first); the caller
/// must then roll back, which gives every number back (the invoice job then finalizes them one
/// by one).
pub async fn finalize_group(
    tx: &mut Tx,
    drafts: &[NewInvoice],
) -> anyhow::Result<Option<Vec<(InvoiceId, String)>>> {
    // Numbers: a block per year, taken in the drafts' order. The counter row stays locked
    // until the transaction ends, so numbers are gapless and in commit order.
    let mut numbers: Vec<String> = Vec::with_capacity(drafts.len());
    let mut i = 0;
    while i < drafts.len() {
        let year = drafts[i].issued_at.year();
        let run = drafts[i..]
            .iter()
            .take_while(|d| d.issued_at.year() == year)
            .count();
        let (last,): (i64,) = with_db!(&mut *tx, c => sqlx::query_as(
            "INSERT INTO invoice_sequences (year, last_value) VALUES ($1, $2)
             ON CONFLICT (year) DO UPDATE SET last_value = invoice_sequences.last_value + excluded.last_value
             RETURNING last_value")
            .bind(year).bind(run as i64).fetch_one(c).await?);
        let first = last - run as i64 + 1;
        numbers.extend((first..=last).map(|n| format_number(year, n)));
        i += run;
    }

    // The invoices, with their ids back by number.
    let mut ids: std::collections::HashMap<String, i64> =
        std::collections::HashMap::with_capacity(drafts.len());
    let indexed: Vec<(&NewInvoice, &String)> = drafts.iter().zip(&numbers).collect();
    if let Tx::Postgres(t) = tx {
        // PostgreSQL: one statement with one array per column (a multi-row VALUES would bind
        // thousands of parameters, each parsed apart).
        let Some(rows) = pg::insert_invoices(t, &indexed).await? else {
            return Ok(None);
        };
        ids.extend(rows.into_iter().map(|(id, number)| (number, id)));
    }
    if let Tx::Sqlite(t) = tx {
        // SQLite: the invoices and their lines through the connection's own handle, in the
        // transaction (see `sqlite_bulk`).
        let mut handle = t.lock_handle().await?;
        let written = sqlite_group::write(&mut handle, &indexed)?;
        drop(handle);
        let Some(written) = written else {
            return Ok(None);
        };
        ids.extend(numbers.iter().cloned().zip(written));
    }
    let ids: Vec<i64> = numbers
        .iter()
        .map(|n| ids.get(n).copied().context("an inserted invoice's id"))
        .collect::<anyhow::Result<_>>()?;

    // Their lines (on SQLite they went in with their invoices).
    if let Tx::Postgres(t) = tx {
        let lines: Vec<(i64, i32, &Line)> = drafts
            .iter()
            .zip(&ids)
            .flat_map(|(inv, id)| {
                inv.lines
                    .iter()
                    .enumerate()
                    .map(move |(i, l)| (*id, i as i32 + 1, l))
            })
            .collect();
        pg::insert_lines(t, &lines).await?;
    }

    // Discounts and balances brought forward: few, one by one.
    for (inv, &id) in drafts.iter().zip(&ids) {
        for (i, d) in inv.discounts.iter().enumerate() {
            if let Some(reward) = d.reward_id
                && !super::collection::use_reward(tx, reward, d.amount_minor).await?
            {
                return Ok(None);
            }
            with_db!(&mut *tx, c => sqlx::query(
                "INSERT INTO invoice_discounts (invoice_id, position, description, reward_id, amount_minor) VALUES ($1, $2, $3, $4, $5)")
                .bind(id).bind(i as i32 + 1).bind(&d.description).bind(d.reward_id).bind(d.amount_minor)
                .execute(c).await?.rows_affected());
        }
        for (from, _, _) in &inv.brought_forward {
            if !super::collection::take_transfer(tx, *from, id).await? {
                return Ok(None);
            }
        }
        set_vies_consultation(tx, id, inv.vies_consultation.as_deref()).await?;
    }
    Ok(Some(ids.into_iter().map(InvoiceId).zip(numbers).collect()))
}

/// SQLite's writes of [`finalize_group`]: each invoice then its lines, one prepared statement
/// per table stepped once per row, on the locked connection.
mod sqlite_group {
    use sqlx::sqlite::LockedSqliteHandle;

    use super::super::sqlite_bulk::{Raw, Val};
    use super::NewInvoice;

    /// The invoices' ids in order; `None` (the caller rolls back) unless every one was inserted.
    pub(super) fn write(
        handle: &mut LockedSqliteHandle<'_>,
        rows: &[(&NewInvoice, &String)],
    ) -> anyhow::Result<Option<Vec<i64>>> {
        let raw = Raw::new(handle);
        // Currency EUR, nothing applied, paid or carried yet (as the PostgreSQL statement).
        let mut invoice = raw.prepare(
            "INSERT INTO invoices (number, account_id, period, period_start, period_end, status, currency, language,
                buyer_name, buyer_company, buyer_address, buyer_country, buyer_vat_number, subtotal_minor,
                discount_minor, tax_case, tax_rate, tax_minor, total_minor, brought_forward_minor, credit_applied_minor,
                amount_paid_minor, carried_forward_minor, amount_due_minor, issued_at, due_at, buyer_siren,
                buyer_electronic_address, buyer_electronic_address_scheme, payment_means, sepa_mandate)
             VALUES (?, ?, ?, ?, ?, ?, 'EUR', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (account_id, period) DO NOTHING",
            "inserting invoices",
        )?;
        let mut line = raw.prepare(
            "INSERT INTO invoice_lines (invoice_id, position, description, app_id, kind, item, quantity_hours, unit_price, amount_minor)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            "inserting invoice lines",
        )?;
        let mut ids = Vec::with_capacity(rows.len());
        for (inv, number) in rows {
            let (t, a) = (&inv.totals, &inv.account);
            let due = inv.amount_due_minor();
            let status = inv.issued_status();
            let period = inv.period.to_string();
            let inserted = invoice.run(&[
                Val::text(number),
                Val::text(a.id.as_str()),
                Val::text(&period),
                Val::time(inv.period_start),
                Val::time(inv.period_end),
                Val::text(status.as_str()),
                Val::text(a.language.as_str()),
                Val::text(&a.name),
                Val::opt_text(a.company.as_deref()),
                Val::text(&a.address),
                Val::text(&a.country),
                Val::opt_text(a.vat_number.as_deref()),
                Val::Int(t.subtotal),
                Val::Int(t.discount),
                Val::text(t.tax_case.as_str()),
                Val::decimal(t.tax_rate),
                Val::Int(t.tax),
                Val::Int(t.total),
                Val::Int(inv.brought_forward_minor()),
                Val::Int(due),
                Val::time(inv.issued_at),
                Val::date(inv.due_at),
                Val::opt_text(a.siren.as_deref()),
                Val::opt_text(a.electronic_address.as_ref().map(|e| e.id.as_str())),
                Val::opt_text(a.electronic_address.as_ref().map(|e| e.scheme.as_str())),
                Val::text(inv.payment_means.as_str()),
                Val::opt_text(inv.sepa_mandate.as_deref()),
            ])?;
            if inserted != 1 {
                return Ok(None);
            }
            let id = invoice.last_rowid();
            ids.push(id);
            for (i, l) in inv.lines.iter().enumerate() {
                line.run(&[
                    Val::Int(id),
                    Val::Int(i as i64 + 1),
                    Val::text(&l.description),
                    Val::opt_text(l.app_id.as_ref().map(|a| a.as_str())),
                    Val::text(l.kind.as_str()),
                    Val::text(&l.item),
                    Val::decimal(l.quantity_hours),
                    Val::decimal(l.unit_price),
                    Val::Int(l.amount.minor),
                ])?;
            }
        }
        Ok(Some(ids))
    }
}

/// PostgreSQL's bulk inserts of [`finalize_group`]: `INSERT … SELECT … FROM UNNEST(arrays)`,
/// one array per column, rows in the arrays' order.
mod pg {
    use chrono::{DateTime, NaiveDate, Utc};
    use rust_decimal::Decimal;
    use sqlx::PgConnection;

    use super::NewInvoice;
    use crate::core::invoice::Line;
    use crate::store::pg_copy::CopyRows;

    /// The invoices' rows; `None` unless every one was inserted
    /// (an account already invoiced for the period: the statement fails on the unique key,
    /// and the caller rolls back). Not `ON CONFLICT … DO NOTHING`: that checks each row's key
    /// before inserting it and logs one more record per row to confirm it, a fifth of this
    /// statement's time, for a conflict that happens only when another run got there first.
    pub(super) async fn insert_invoices(
        c: &mut PgConnection,
        rows: &[(&NewInvoice, &String)],
    ) -> anyhow::Result<Option<Vec<(i64, String)>>> {
        let n = rows.len();
        let mut number: Vec<&str> = Vec::with_capacity(n);
        let mut account_id: Vec<&str> = Vec::with_capacity(n);
        let mut period: Vec<String> = Vec::with_capacity(n);
        let mut period_start: Vec<DateTime<Utc>> = Vec::with_capacity(n);
        let mut period_end: Vec<DateTime<Utc>> = Vec::with_capacity(n);
        let mut status: Vec<&str> = Vec::with_capacity(n);
        let mut language: Vec<&str> = Vec::with_capacity(n);
        let mut buyer_name: Vec<&str> = Vec::with_capacity(n);
        let mut buyer_company: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut buyer_address: Vec<&str> = Vec::with_capacity(n);
        let mut buyer_country: Vec<&str> = Vec::with_capacity(n);
        let mut buyer_vat_number: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut subtotal: Vec<i64> = Vec::with_capacity(n);
        let mut discount: Vec<i64> = Vec::with_capacity(n);
        let mut tax_case: Vec<&str> = Vec::with_capacity(n);
        let mut tax_rate: Vec<Decimal> = Vec::with_capacity(n);
        let mut tax: Vec<i64> = Vec::with_capacity(n);
        let mut total: Vec<i64> = Vec::with_capacity(n);
        let mut brought_forward: Vec<i64> = Vec::with_capacity(n);
        let mut amount_due: Vec<i64> = Vec::with_capacity(n);
        let mut issued_at: Vec<DateTime<Utc>> = Vec::with_capacity(n);
        let mut due_at: Vec<NaiveDate> = Vec::with_capacity(n);
        let mut buyer_siren: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut buyer_address_id: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut buyer_address_scheme: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut payment_means: Vec<&str> = Vec::with_capacity(n);
        let mut sepa_mandate: Vec<Option<&str>> = Vec::with_capacity(n);
        for (inv, num) in rows {
            let (t, a) = (&inv.totals, &inv.account);
            let due = inv.amount_due_minor();
            number.push(num.as_str());
            account_id.push(a.id.as_str());
            period.push(inv.period.to_string());
            period_start.push(inv.period_start);
            period_end.push(inv.period_end);
            status.push(inv.issued_status().as_str());
            language.push(a.language.as_str());
            buyer_name.push(&a.name);
            buyer_company.push(a.company.as_deref());
            buyer_address.push(&a.address);
            buyer_country.push(&a.country);
            buyer_vat_number.push(a.vat_number.as_deref());
            subtotal.push(t.subtotal);
            discount.push(t.discount);
            tax_case.push(t.tax_case.as_str());
            tax_rate.push(t.tax_rate);
            tax.push(t.tax);
            total.push(t.total);
            brought_forward.push(inv.brought_forward_minor());
            amount_due.push(due);
            issued_at.push(inv.issued_at);
            due_at.push(inv.due_at);
            buyer_siren.push(a.siren.as_deref());
            buyer_address_id.push(a.electronic_address.as_ref().map(|e| e.id.as_str()));
            buyer_address_scheme.push(a.electronic_address.as_ref().map(|e| e.scheme.as_str()));
            payment_means.push(inv.payment_means.as_str());
            sepa_mandate.push(inv.sepa_mandate.as_deref());
        }
        let returned: Result<Vec<(i64, String)>, sqlx::Error> = sqlx::query_as(
            "INSERT INTO invoices (number, account_id, period, period_start, period_end, status, currency, language,
                buyer_name, buyer_company, buyer_address, buyer_country, buyer_vat_number, subtotal_minor,
                discount_minor, tax_case, tax_rate, tax_minor, total_minor, brought_forward_minor, credit_applied_minor,
                amount_paid_minor, carried_forward_minor, amount_due_minor, issued_at, due_at, buyer_siren,
                buyer_electronic_address, buyer_electronic_address_scheme, payment_means, sepa_mandate)
             SELECT v.number, v.account_id, v.period, v.period_start, v.period_end, v.status, 'EUR', v.language,
                v.buyer_name, v.buyer_company, v.buyer_address, v.buyer_country, v.buyer_vat_number, v.subtotal,
                v.discount, v.tax_case, v.tax_rate, v.tax, v.total, v.brought_forward, 0, 0, 0, v.amount_due,
                v.issued_at, v.due_at, v.buyer_siren, v.buyer_address_id, v.buyer_address_scheme, v.payment_means,
                v.sepa_mandate
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[],
                $14::bigint[], $15::text[], $16::numeric[], $17::bigint[], $18::bigint[], $19::bigint[],
                $20::bigint[], $21::timestamptz[], $22::date[], $23::text[], $24::text[], $25::text[],
                $26::text[], $27::text[])
                WITH ORDINALITY AS v(number, account_id, period, period_start, period_end, status, language,
                    buyer_name, buyer_company, buyer_address, buyer_country, buyer_vat_number, subtotal, discount,
                    tax_case, tax_rate, tax, total, brought_forward, amount_due, issued_at, due_at, buyer_siren,
                    buyer_address_id, buyer_address_scheme, payment_means, sepa_mandate, ord)
             ORDER BY v.ord
             RETURNING id, number",
        )
        .bind(number)
        .bind(account_id)
        .bind(period)
        .bind(period_start)
        .bind(period_end)
        .bind(status)
        .bind(language)
        .bind(buyer_name)
        .bind(buyer_company)
        .bind(buyer_address)
        .bind(buyer_country)
        .bind(buyer_vat_number)
        .bind(subtotal)
        .bind(discount)
        .bind(tax_case)
        .bind(tax_rate)
        .bind(tax)
        .bind(total)
        .bind(brought_forward)
        .bind(amount_due)
        .bind(issued_at)
        .bind(due_at)
        .bind(buyer_siren)
        .bind(buyer_address_id)
        .bind(buyer_address_scheme)
        .bind(payment_means)
        .bind(sepa_mandate)
        .fetch_all(c)
        .await;
        match returned {
            Ok(returned) => Ok((returned.len() == n).then_some(returned)),
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("23505")
                    && e.constraint() == Some("invoices_account_id_period_key") =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The lines: (invoice id, position, line), sent with `COPY … FROM STDIN`: PostgreSQL's
    /// fastest way in, and no array of decimals to decode.
    pub(super) async fn insert_lines(
        c: &mut PgConnection,
        lines: &[(i64, i32, &Line)],
    ) -> anyhow::Result<()> {
        let mut rows = CopyRows::with_capacity(lines.len() * 128);
        for (id, pos, l) in lines {
            rows.int(*id)
                .int(i64::from(*pos))
                .text(&l.description)
                .opt_text(l.app_id.as_ref().map(|a| a.as_str()))
                .text(l.kind.as_str())
                .text(&l.item)
                .decimal(l.quantity_hours)
                .decimal(l.unit_price)
                .int(l.amount.minor)
                .end_row();
        }
        rows.send(
            c,
            "COPY invoice_lines (invoice_id, position, description, app_id, kind, item, quantity_hours, unit_price, amount_minor)
             FROM STDIN",
        )
        .await?;
        Ok(())
    }
}
