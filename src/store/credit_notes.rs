//! Credit notes (*avoirs*, issue 22): their gapless yearly series, their lines and PDFs, the
//! refunds they ask of the gateway, the credit they give back, and what they change on the
//! invoice they correct. The rules are the core's (`core::credit_note`); the workflow that
//! issues one is `crate::credit_notes`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::FromRow;

use super::{Conn, DbDecimal, Tx};
use crate::core::credit_note::{CreditLineKind, GatewayRefundStatus, RefundMethod};
use crate::core::document::{
    CreditNote, CreditNoteLine, CreditNoteRef, CreditNoteRefund, InvoiceStatus, RefundReroute,
    RefundStatus, RerouteTo,
};
use crate::core::ids::AccountId;
use crate::core::ids::{CreditNoteId, InvoiceId};
use crate::core::locale::Language;
use crate::core::money::Currency;
use crate::core::money::Money;
use crate::core::vat::VatCase;
use crate::with_db;
use anyhow::Context;

#[derive(Debug, Clone, FromRow)]
pub struct CreditNoteRow {
    pub id: i64,
    pub number: String,
    pub invoice_id: i64,
    #[sqlx(try_from = "String")]
    pub account_id: AccountId,
    pub issued_at: DateTime<Utc>,
    pub reason: String,
    #[sqlx(try_from = "String")]
    pub currency: Currency,
    #[sqlx(try_from = "String")]
    pub language: Language,
    pub subtotal_minor: i64,
    #[sqlx(try_from = "String")]
    pub tax_case: VatCase,
    pub tax_rate: DbDecimal,
    pub tax_minor: i64,
    pub total_minor: i64,
    #[sqlx(try_from = "String")]
    pub refund_method: RefundMethod,
    pub reduce_due_minor: i64,
    pub refund_gateway_minor: i64,
    pub refund_credit_minor: i64,
    pub refund_outside_minor: i64,
}

const COLUMNS: &str = "id, number, invoice_id, account_id, issued_at, reason, currency, language,
    subtotal_minor, tax_case, tax_rate, tax_minor, total_minor, refund_method, reduce_due_minor,
    refund_gateway_minor, refund_credit_minor, refund_outside_minor";

#[derive(Debug, Clone, FromRow)]
pub struct CreditNoteLineRow {
    pub credit_note_id: i64,
    pub position: i32,
    #[sqlx(try_from = "String")]
    pub kind: CreditLineKind,
    pub invoice_line: Option<i32>,
    pub description: String,
    pub amount_minor: i64,
}

/// A credit note to store, numbered and with its settlement decided.
pub struct NewCreditNote<'a> {
    pub number: &'a str,
    pub invoice_id: i64,
    pub account_id: &'a str,
    pub issued_at: DateTime<Utc>,
    pub reason: &'a str,
    pub currency: Currency,
    pub language: Language,
    pub subtotal: i64,
    pub tax_case: VatCase,
    pub tax_rate: Decimal,
    pub tax: i64,
    pub total: i64,
    pub method: RefundMethod,
    pub reduce_due: i64,
    pub refund_gateway: i64,
    pub refund_credit: i64,
    pub refund_outside: i64,
    /// (kind, invoice line position, description, amount excluding VAT).
    pub lines: Vec<(CreditLineKind, Option<i32>, String, i64)>,
}

/// The next number of `year`'s series, taken in the caller's transaction: a rolled-back
/// credit note gives its number back, so the series has no gap (article 242 nonies A, I-7° of
/// annex II to the CGI).
pub async fn next_number(tx: &mut Tx, year: i32) -> anyhow::Result<String> {
    let (last,): (i64,) = with_db!(&mut *tx, c => sqlx::query_as(
        "INSERT INTO credit_note_sequences (year, last_value) VALUES ($1, 1)
         ON CONFLICT (year) DO UPDATE SET last_value = credit_note_sequences.last_value + 1
         RETURNING last_value")
        .bind(year).fetch_one(c).await?);
    Ok(crate::core::credit_note::format_number(year, last))
}

/// Locks the invoice for the transaction (PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds
/// the only write lock), so that two credit notes on one invoice are decided one after the
/// other and together never exceed it.
pub async fn lock_invoice(tx: &mut Tx, invoice_id: i64) -> anyhow::Result<()> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT id FROM invoices WHERE id = $1 FOR UPDATE")
            .bind(invoice_id)
            .fetch_optional(&mut **t)
            .await?;
    }
    Ok(())
}

pub async fn insert(tx: &mut Tx, n: &NewCreditNote<'_>) -> anyhow::Result<i64> {
    let (id,): (i64,) = with_db!(&mut *tx, c => sqlx::query_as(
        "INSERT INTO credit_notes (number, invoice_id, account_id, issued_at, reason, currency, language,
            subtotal_minor, tax_case, tax_rate, tax_minor, total_minor, refund_method, reduce_due_minor,
            refund_gateway_minor, refund_credit_minor, refund_outside_minor)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id")
        .bind(n.number).bind(n.invoice_id).bind(n.account_id).bind(n.issued_at).bind(n.reason)
        .bind(n.currency.code()).bind(n.language.as_str()).bind(n.subtotal).bind(n.tax_case.as_str())
        .bind(DbDecimal(n.tax_rate)).bind(n.tax).bind(n.total).bind(n.method.as_str()).bind(n.reduce_due)
        .bind(n.refund_gateway).bind(n.refund_credit).bind(n.refund_outside)
        .fetch_one(c).await?);
    for (i, (kind, invoice_line, description, amount)) in n.lines.iter().enumerate() {
        with_db!(&mut *tx, c => sqlx::query(
            "INSERT INTO credit_note_lines (credit_note_id, position, kind, invoice_line, description, amount_minor)
             VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id).bind(i as i32 + 1).bind(kind.as_str()).bind(*invoice_line).bind(description.as_str()).bind(*amount)
            .execute(c).await?.rows_affected());
    }
    Ok(id)
}

/// What a credit note changes on its invoice: what is owed falls by `reduce_due`, and an
/// invoice left owing nothing stops being collected: `void` when fully credited, `paid` when
/// the rest was paid. Returns the invoice's status after it.
pub async fn apply_to_invoice(
    tx: &mut Tx,
    invoice_id: i64,
    total: i64,
    reduce_due: i64,
) -> anyhow::Result<InvoiceStatus> {
    let (status,): (String,) = with_db!(&mut *tx, c => sqlx::query_as(
        "UPDATE invoices SET credited_minor = credited_minor + $2,
            credited_due_minor = credited_due_minor + $3,
            amount_due_minor = amount_due_minor - $3,
            status = CASE
                WHEN status IN ('open', 'unpaid') AND amount_due_minor - $3 = 0 AND credited_minor + $2 = total_minor THEN 'void'
                WHEN status IN ('open', 'unpaid') AND amount_due_minor - $3 = 0 THEN 'paid'
                ELSE status END,
            next_attempt_at = CASE WHEN amount_due_minor - $3 = 0 THEN NULL ELSE next_attempt_at END
         WHERE id = $1 RETURNING status")
        .bind(invoice_id).bind(total).bind(reduce_due).fetch_one(c).await?);
    Ok(InvoiceStatus::try_from(status)?)
}

/// Gives `amount` back to the account's prepaid credit, once per credit note (the ledger's
/// reference is unique): a `refund` row, and the balance after it.
pub async fn refund_to_credit(
    tx: &mut Tx,
    account: &str,
    invoice_id: i64,
    credit_note_number: &str,
    amount: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    give_credit(
        tx,
        account,
        invoice_id,
        &format!("credit-note:{credit_note_number}"),
        amount,
        at,
    )
    .await
}

/// A `refund` row of the credit ledger under `reference` (unique: given once), and the account's
/// balance raised by `amount`. The FEC books it 411 debit / 4191 credit on `at`
/// (`reports::fec_events`, which reads the credit note's number after `credit-note:`).
pub async fn give_credit(
    tx: &mut Tx,
    account: &str,
    invoice_id: i64,
    reference: &str,
    amount: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    if amount <= 0 {
        return Ok(());
    }
    let (balance,): (i64,) = with_db!(&mut *tx, c => sqlx::query_as(
        "UPDATE accounts SET credit_balance_minor = credit_balance_minor + $2 WHERE id = $1 RETURNING credit_balance_minor")
        .bind(account).bind(amount).fetch_one(c).await?);
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO credit_ledger (account_id, at, kind, amount_minor, reference, invoice_id, balance_after_minor)
         VALUES ($1, $2, 'refund', $3, $4, $5, $6)")
        .bind(account).bind(at).bind(amount).bind(reference)
        .bind(invoice_id).bind(balance)
        .execute(c).await?.rows_affected());
    Ok(())
}

pub async fn get(db: impl Into<Conn<'_>>, id: i64) -> anyhow::Result<Option<CreditNoteRow>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM credit_notes WHERE id = $1"));
    Ok(with_db!(db, p => sqlx::query_as::<_, CreditNoteRow>(sql).bind(id).fetch_optional(p).await?))
}

/// Finds a credit note by number (`AV-2026-000001`).
pub async fn find(db: impl Into<Conn<'_>>, number: &str) -> anyhow::Result<Option<CreditNoteRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM credit_notes WHERE number = $1"
    ));
    Ok(
        with_db!(db, p => sqlx::query_as::<_, CreditNoteRow>(sql).bind(number).fetch_optional(p).await?),
    )
}

/// An invoice's credit notes, oldest first.
pub async fn of_invoice(
    db: impl Into<Conn<'_>>,
    invoice_id: i64,
) -> anyhow::Result<Vec<CreditNoteRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM credit_notes WHERE invoice_id = $1 ORDER BY id"
    ));
    Ok(
        with_db!(db, p => sqlx::query_as::<_, CreditNoteRow>(sql).bind(invoice_id).fetch_all(p).await?),
    )
}

#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub account: Option<String>,
    /// Issued in `[from, to)`.
    pub issued: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// Credit notes, in number order.
pub async fn list(db: impl Into<Conn<'_>>, f: &ListFilter) -> anyhow::Result<Vec<CreditNoteRow>> {
    let (from, to) = f.issued.map_or((None, None), |(a, b)| (Some(a), Some(b)));
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM credit_notes
         WHERE ($1 IS NULL OR account_id = $1) AND ($2 IS NULL OR issued_at >= $2) AND ($3 IS NULL OR issued_at < $3)
         ORDER BY id"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, CreditNoteRow>(sql)
        .bind(f.account.as_deref()).bind(from).bind(to).fetch_all(p).await?))
}

pub async fn lines(
    db: impl Into<Conn<'_>>,
    credit_note_id: i64,
) -> anyhow::Result<Vec<CreditNoteLineRow>> {
    Ok(with_db!(db, p => sqlx::query_as::<_, CreditNoteLineRow>(
        "SELECT credit_note_id, position, kind, invoice_line, description, amount_minor
         FROM credit_note_lines WHERE credit_note_id = $1 ORDER BY position")
        .bind(credit_note_id).fetch_all(p).await?))
}

/// Every line of an invoice's credit notes (what was credited per invoice line so far).
pub async fn lines_of_invoice(
    db: impl Into<Conn<'_>>,
    invoice_id: i64,
) -> anyhow::Result<Vec<CreditNoteLineRow>> {
    Ok(with_db!(db, p => sqlx::query_as::<_, CreditNoteLineRow>(
        "SELECT l.credit_note_id, l.position, l.kind, l.invoice_line, l.description, l.amount_minor
         FROM credit_note_lines l JOIN credit_notes n ON n.id = l.credit_note_id
         WHERE n.invoice_id = $1 ORDER BY l.credit_note_id, l.position")
        .bind(invoice_id).fetch_all(p).await?))
}

// ---------------------------------------------------------------------------------------------
// Documents

pub async fn save_document(
    tx: &mut Tx,
    credit_note_id: i64,
    pdf: &[u8],
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO credit_note_documents (credit_note_id, pdf, sha256, created_at) VALUES ($1, $2, $3, $4)")
        .bind(credit_note_id).bind(pdf).bind(super::documents::sha256_hex(pdf)).bind(at)
        .execute(c).await?.rows_affected());
    Ok(())
}

/// The stored PDF and its SHA-256.
pub async fn document(
    db: impl Into<Conn<'_>>,
    credit_note_id: i64,
) -> anyhow::Result<Option<(Vec<u8>, String)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT pdf, sha256 FROM credit_note_documents WHERE credit_note_id = $1")
        .bind(credit_note_id).fetch_optional(p).await?))
}

// ---------------------------------------------------------------------------------------------
// Refunds through the gateway

#[derive(Debug, Clone, FromRow)]
pub struct RefundRow {
    pub id: i64,
    pub credit_note_id: i64,
    pub attempt_id: i64,
    pub payment_intent_id: String,
    pub amount_minor: i64,
    pub idempotency_key: String,
    #[sqlx(try_from = "String")]
    pub status: GatewayRefundStatus,
    pub stripe_refund_id: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
    /// Set when a failed refund was settled otherwise (`status = 'rerouted'`).
    pub rerouted_to: Option<String>,
    pub reroute_reason: Option<String>,
    pub rerouted_at: Option<DateTime<Utc>>,
}

const REFUND_COLUMNS: &str = "id, credit_note_id, attempt_id, payment_intent_id, amount_minor,
    idempotency_key, status, stripe_refund_id, failure_message, created_at, settled_at,
    rerouted_to, reroute_reason, rerouted_at";

/// The refund's idempotency key: derived from the credit note and the payment it refunds, so
/// that every retry, in this run or a later one, sends the same key (Stripe API "Idempotent
/// requests").
pub fn refund_key(credit_note_id: i64, attempt_id: i64) -> String {
    format!("billrun-cn-{credit_note_id}-attempt-{attempt_id}")
}

/// Records a refund to ask of the gateway, before it is asked.
pub async fn insert_refund(
    tx: &mut Tx,
    credit_note_id: i64,
    attempt_id: i64,
    payment_intent: &str,
    amount: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO refunds (credit_note_id, attempt_id, payment_intent_id, amount_minor, idempotency_key, status, created_at)
         VALUES ($1, $2, $3, $4, $5, 'requested', $6)")
        .bind(credit_note_id).bind(attempt_id).bind(payment_intent).bind(amount)
        .bind(refund_key(credit_note_id, attempt_id)).bind(at)
        .execute(c).await?.rows_affected());
    Ok(())
}

pub async fn refunds_of(
    db: impl Into<Conn<'_>>,
    credit_note_id: i64,
) -> anyhow::Result<Vec<RefundRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE credit_note_id = $1 ORDER BY id"
    ));
    Ok(
        with_db!(db, p => sqlx::query_as::<_, RefundRow>(sql).bind(credit_note_id).fetch_all(p).await?),
    )
}

/// Refunds with no conclusive answer yet (never asked, or asked without one): what the next
/// run asks again, under the same key.
pub async fn open_refunds(db: impl Into<Conn<'_>>) -> anyhow::Result<Vec<RefundRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE status IN ('requested', 'unknown') ORDER BY id"
    ));
    Ok(with_db!(db, p => sqlx::query_as::<_, RefundRow>(sql).fetch_all(p).await?))
}

/// What each succeeded payment of an invoice has left to refund: (attempt id, PaymentIntent,
/// amount paid less what its refunds took or may still take), in payment order.
pub async fn refundable_payments(
    db: impl Into<Conn<'_>>,
    invoice_id: i64,
) -> anyhow::Result<Vec<(i64, String, i64)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT a.id, a.payment_intent_id,
            a.amount_minor - CAST(COALESCE((SELECT SUM(r.amount_minor) FROM refunds r
                WHERE r.attempt_id = a.id AND r.status <> 'failed'), 0) AS BIGINT)
         FROM payment_attempts a
         WHERE a.invoice_id = $1 AND a.outcome = 'succeeded' AND a.payment_intent_id IS NOT NULL
         ORDER BY a.number")
        .bind(invoice_id).fetch_all(p).await?))
}

/// The invoice's attempts whose outcome is not known yet (`unknown`, `processing`).
pub async fn attempts_in_flight(db: impl Into<Conn<'_>>, invoice_id: i64) -> anyhow::Result<i64> {
    let (n,): (i64,) = with_db!(db, p => sqlx::query_as(
        "SELECT COUNT(*) FROM payment_attempts WHERE invoice_id = $1 AND outcome IN ('unknown', 'processing')")
        .bind(invoice_id).fetch_one(p).await?);
    Ok(n)
}

/// What earlier credit notes gave back to the prepaid credit for this invoice.
pub async fn credit_refunded(db: impl Into<Conn<'_>>, invoice_id: i64) -> anyhow::Result<i64> {
    let (n,): (i64,) = with_db!(db, p => sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(refund_credit_minor), 0) AS BIGINT) FROM credit_notes WHERE invoice_id = $1")
        .bind(invoice_id).fetch_one(p).await?);
    Ok(n)
}

/// Settles a refund with the gateway's answer; only a refund still open (or pending, for a
/// later `succeeded`/`failed`) changes: a second run settling it finds it settled.
pub async fn settle_refund(
    tx: &mut Tx,
    refund_id: i64,
    status: GatewayRefundStatus,
    stripe_refund: Option<&str>,
    message: Option<&str>,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let settled = match status {
        GatewayRefundStatus::Succeeded | GatewayRefundStatus::Failed => Some(at),
        GatewayRefundStatus::Requested
        | GatewayRefundStatus::Pending
        | GatewayRefundStatus::Unknown
        | GatewayRefundStatus::Rerouted => None,
    };
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE refunds SET status = $2, stripe_refund_id = COALESCE($3, stripe_refund_id),
            failure_message = $4, settled_at = $5
         WHERE id = $1 AND status IN ('requested', 'unknown', 'pending')")
        .bind(refund_id).bind(status.as_str()).bind(stripe_refund).bind(message).bind(settled)
        .execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// Settles a `failed` refund otherwise (`credit-notes refund`): to the prepaid credit or
/// outside billrun. Only a refund still `failed` changes: a second run finds it `rerouted` and
/// the caller refuses. Returns whether it changed.
pub async fn reroute_refund(
    tx: &mut Tx,
    refund_id: i64,
    to: RerouteTo,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "UPDATE refunds SET status = 'rerouted', rerouted_to = $2, reroute_reason = $3, rerouted_at = $4
         WHERE id = $1 AND status = 'failed'")
        .bind(refund_id).bind(to.as_str()).bind(reason).bind(at)
        .execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// The ledger reference of a failed refund given to the prepaid credit: the credit note's own
/// reference (`credit-note:<number>`, which the FEC reads) and the refund's id.
pub fn reroute_reference(credit_note_number: &str, refund_id: i64) -> String {
    format!("credit-note:{credit_note_number}:reroute:{refund_id}")
}

/// Settles as succeeded the `pending` refunds (accepted by Stripe, not yet paid out) on a
/// PaymentIntent whose charge Stripe says is refunded by `amount_refunded` in all, as far as
/// that amount covers every refund billrun asked on it. Returns how many were settled.
pub async fn settle_pending_refunds(
    tx: &mut Tx,
    payment_intent: &str,
    amount_refunded: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let (asked,): (i64,) = with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refunds
         WHERE payment_intent_id = $1 AND status NOT IN ('failed', 'rerouted')")
        .bind(payment_intent).fetch_one(c).await?);
    if asked == 0 || amount_refunded < asked {
        return Ok(0);
    }
    Ok(with_db!(&mut *tx, c => sqlx::query(
        "UPDATE refunds SET status = 'succeeded', settled_at = $2
         WHERE payment_intent_id = $1 AND status = 'pending'")
        .bind(payment_intent).bind(at).execute(c).await?.rows_affected()))
}

// ---------------------------------------------------------------------------------------------
// Referral rewards earned from a credited invoice

/// The reward earned from the invoice, if any: (id, amount earned, what is left to use, what
/// earlier reductions took from the reward, what they took from what was left to use).
pub async fn reward_of_invoice(
    tx: &mut Tx,
    invoice_id: i64,
) -> anyhow::Result<Option<(i64, i64, i64, i64, i64)>> {
    Ok(with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT r.id, r.amount_minor, r.remaining_minor,
            CAST(COALESCE((SELECT SUM(d.amount_minor) FROM referral_reward_reductions d WHERE d.reward_id = r.id), 0) AS BIGINT),
            CAST(COALESCE((SELECT SUM(d.remaining_cut_minor) FROM referral_reward_reductions d WHERE d.reward_id = r.id), 0) AS BIGINT)
         FROM referral_rewards r WHERE r.source_invoice_id = $1")
        .bind(invoice_id).fetch_optional(c).await?))
}

/// Records a reward's reduction by a credit note and takes `remaining_cut` off what is left.
pub async fn reduce_reward(
    tx: &mut Tx,
    reward_id: i64,
    credit_note_id: i64,
    amount: i64,
    remaining_cut: i64,
) -> anyhow::Result<()> {
    with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO referral_reward_reductions (reward_id, credit_note_id, amount_minor, remaining_cut_minor)
         VALUES ($1, $2, $3, $4)")
        .bind(reward_id).bind(credit_note_id).bind(amount).bind(remaining_cut)
        .execute(c).await?.rows_affected());
    with_db!(&mut *tx, c => sqlx::query(
        "UPDATE referral_rewards SET remaining_minor = remaining_minor - $2 WHERE id = $1")
        .bind(reward_id).bind(remaining_cut).execute(c).await?.rows_affected());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The document

/// The credit note document of a stored row: its invoice's reference and buyer, its lines,
/// and where its refund stands.
pub async fn load_document(
    db: impl Into<Conn<'_>>,
    row: &CreditNoteRow,
) -> anyhow::Result<CreditNote> {
    let mut db = Conn::of(db);
    let inv = super::invoices::get(&mut db, row.invoice_id)
        .await?
        .context("a credit note's invoice")?;
    let invoice = super::invoice_document::from_row(&inv, &[]);
    let lines = lines(&mut db, row.id).await?;
    let refunds = refunds_of(&mut db, row.id).await?;
    let c = row.currency;
    let m = |minor| Money::new(minor, c);
    let status = refund_status(row, &refunds);
    let mut rerouted = Vec::new();
    for r in &refunds {
        if let (Some(to), Some(at)) = (r.rerouted_to.as_deref(), r.rerouted_at) {
            rerouted.push(RefundReroute {
                payment_intent: r.payment_intent_id.clone(),
                amount: m(r.amount_minor),
                to: RerouteTo::parse(to)
                    .with_context(|| format!("refund {}: rerouted to `{to}`", r.id))?,
                reason: r.reroute_reason.clone(),
                at,
            });
        }
    }
    Ok(CreditNote {
        id: Some(CreditNoteId(row.id)),
        number: Some(row.number.clone()),
        invoice_id: InvoiceId(row.invoice_id),
        invoice_number: inv.number.clone(),
        invoice_issued_at: inv.issued_at,
        invoice_period: inv.period,
        account_id: row.account_id.clone(),
        issued_at: row.issued_at,
        reason: row.reason.clone(),
        currency: c,
        language: row.language,
        buyer: invoice.buyer,
        lines: lines
            .iter()
            .map(|l| CreditNoteLine {
                description: l.description.clone(),
                invoice_line: l.invoice_line.and_then(|p| u32::try_from(p).ok()),
                kind: l.kind,
                amount: m(l.amount_minor),
            })
            .collect(),
        subtotal: m(row.subtotal_minor),
        vat_case: row.tax_case,
        tax_rate: row.tax_rate.0,
        tax: m(row.tax_minor),
        total: m(row.total_minor),
        refund: CreditNoteRefund {
            method: row.refund_method,
            reduce_due: m(row.reduce_due_minor),
            to_payment_method: m(row.refund_gateway_minor),
            to_credit: m(row.refund_credit_minor),
            outside: m(row.refund_outside_minor),
            status,
            rerouted,
        },
    })
}

/// Where a credit note's refund stands: nothing to give back; given (credit and outside are
/// immediate); or as its gateway refunds stand, the least advanced first (a failed refund the
/// operator re-routed is settled: it counts as succeeded).
fn refund_status(row: &CreditNoteRow, refunds: &[RefundRow]) -> RefundStatus {
    if row.refund_gateway_minor == 0 {
        return if row.refund_credit_minor + row.refund_outside_minor > 0 {
            RefundStatus::Succeeded
        } else {
            RefundStatus::NotNeeded
        };
    }
    use GatewayRefundStatus as G;
    let has = |s: G| refunds.iter().any(|r| r.status == s);
    if has(G::Failed) {
        RefundStatus::Failed
    } else if has(G::Unknown) {
        RefundStatus::Unknown
    } else if has(G::Requested) || has(G::Pending) {
        RefundStatus::Pending
    } else {
        // Succeeded, or rerouted (settled otherwise).
        RefundStatus::Succeeded
    }
}

/// An invoice's credit notes as the invoice lists them.
pub async fn refs_of_invoice(
    db: impl Into<Conn<'_>>,
    invoice_id: i64,
) -> anyhow::Result<Vec<CreditNoteRef>> {
    Ok(of_invoice(db, invoice_id)
        .await?
        .into_iter()
        .map(|n| CreditNoteRef {
            total: Money::new(n.total_minor, n.currency),
            number: n.number,
            issued_at: n.issued_at,
            reason: n.reason,
        })
        .collect())
}
