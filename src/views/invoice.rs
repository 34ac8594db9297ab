//! The views of an invoice: its JSON (`InvoiceView`, what `invoices show --format json` and the
//! run reports write) and its text (`invoices show`).

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::table::table;
use super::{amount, dec, hours};
use crate::core::document::{Attempt, CarriedTo, Invoice};
use crate::store::Db;
use crate::store::collection::AttemptRow;
use crate::store::invoice_document;
use crate::store::invoices;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LineView {
    pub description: String,
    pub app_id: Option<String>,
    pub kind: String,
    pub item: String,
    pub quantity_hours: String,
    pub unit_price: String,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BuyerView {
    pub name: String,
    pub company: Option<String>,
    pub address: String,
    pub country: String,
    pub vat_number: Option<String>,
    /// The VIES consultation number (`requestIdentifier`) the invoice's reverse charge rests on
    /// (article 18 of Implementing Regulation (EU) 282/2011); reverse-charge invoices only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vies_consultation: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InvoiceView {
    /// `None` in a dry-run: ids and numbers are given at finalization only.
    pub id: Option<i64>,
    pub number: Option<String>,
    pub account_id: String,
    pub period: String,
    pub status: String,
    pub currency: String,
    pub language: String,
    pub buyer: BuyerView,
    pub lines: Vec<LineView>,
    pub subtotal: String,
    pub discount: String,
    pub tax_case: String,
    pub tax_mention: Option<String>,
    pub tax_rate: String,
    pub tax: String,
    pub total: String,
    /// Referral rewards used on this invoice.
    pub discounts: Vec<DiscountView>,
    /// Unpaid small balances of earlier invoices, included in `amount_due`.
    pub balance_brought_forward: String,
    pub brought_forward_from: Vec<TransferView>,
    pub credit_applied: String,
    pub amount_paid: String,
    /// Left below Stripe's minimum and moved to the account's next invoice.
    pub carried_forward: String,
    pub carried_forward_to: Option<String>,
    pub amount_due: String,
    pub issued_at: DateTime<Utc>,
    pub due_at: NaiveDate,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptView>,
    /// What its credit notes credited in all, VAT included.
    pub amount_credited: String,
    pub credit_notes: Vec<CreditNoteRefView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreditNoteRefView {
    pub number: String,
    pub issued_at: DateTime<Utc>,
    pub total: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DiscountView {
    pub description: String,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TransferView {
    pub invoice_number: String,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttemptView {
    pub number: i32,
    pub trigger: String,
    pub method: String,
    pub gateway: String,
    pub amount: String,
    pub payment_intent: Option<String>,
    pub outcome: String,
    pub decline_code: Option<String>,
    pub message: Option<String>,
    pub at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

impl AttemptView {
    pub fn of(a: &Attempt) -> AttemptView {
        AttemptView {
            number: a.number,
            trigger: a.trigger.as_str().to_string(),
            method: a.method.clone(),
            gateway: a.gateway.clone(),
            amount: amount(a.amount),
            payment_intent: a.payment_intent.clone(),
            outcome: a.outcome.as_str().to_string(),
            decline_code: a.decline_code.clone(),
            message: a.message.clone(),
            at: a.at,
            settled_at: a.settled_at,
        }
    }

    pub fn from_row(a: &AttemptRow) -> AttemptView {
        AttemptView::of(&invoice_document::attempt_of(a))
    }
}

impl InvoiceView {
    /// The JSON of an invoice (`invoices show --format json`, `run invoice --format json`).
    pub fn of(i: &Invoice) -> InvoiceView {
        InvoiceView {
            id: i.id.map(|id| id.0),
            number: i.number.clone(),
            account_id: i.account_id.to_string(),
            period: i.period.to_string(),
            status: i.status.as_str().to_string(),
            currency: i.currency.code().to_string(),
            language: i.language.as_str().to_string(),
            buyer: BuyerView {
                name: i.buyer.name.clone(),
                company: i.buyer.company.clone(),
                address: i.buyer.address.clone(),
                country: i.buyer.country.clone(),
                vat_number: i.buyer.vat_number.clone(),
                vies_consultation: i.buyer.vies_consultation.clone(),
            },
            lines: i
                .lines
                .iter()
                .map(|l| LineView {
                    description: l.description.clone(),
                    app_id: l.app_id.as_ref().map(|a| a.to_string()),
                    kind: l.kind.as_str().to_string(),
                    item: l.item.clone(),
                    quantity_hours: hours(l.quantity_hours),
                    unit_price: dec(l.unit_price),
                    amount: amount(l.amount),
                })
                .collect(),
            subtotal: amount(i.subtotal),
            discount: amount(i.discount),
            tax_case: i.vat_case.as_str().to_string(),
            tax_mention: i.tax_mention().map(str::to_string),
            tax_rate: dec(i.tax_rate),
            tax: amount(i.tax),
            total: amount(i.total),
            discounts: i
                .discounts
                .iter()
                .map(|d| DiscountView {
                    description: d.description.clone(),
                    amount: amount(d.amount),
                })
                .collect(),
            balance_brought_forward: amount(i.balance_brought_forward),
            brought_forward_from: i
                .brought_forward
                .iter()
                .map(|b| TransferView {
                    invoice_number: b.invoice_number.clone(),
                    amount: amount(b.amount),
                })
                .collect(),
            credit_applied: amount(i.credit_applied),
            amount_paid: amount(i.amount_paid),
            carried_forward: amount(i.carried_forward),
            carried_forward_to: match &i.carried_to {
                None | Some(CarriedTo::NextInvoice) => None,
                Some(CarriedTo::Invoice(number)) => Some(number.clone()),
                Some(CarriedTo::Waived) => Some("waived".to_string()),
            },
            amount_due: amount(i.amount_due),
            issued_at: i.issued_at,
            due_at: i.due_at,
            next_attempt_at: i.next_attempt_at,
            attempts: i.attempts.iter().map(AttemptView::of).collect(),
            amount_credited: amount(i.amount_credited),
            credit_notes: i
                .credit_notes
                .iter()
                .map(|c| CreditNoteRefView {
                    number: c.number.clone(),
                    issued_at: c.issued_at,
                    total: amount(c.total),
                    reason: c.reason.clone(),
                })
                .collect(),
        }
    }
}

/// The JSON view of a stored invoice, with everything shown about it.
pub async fn load_invoice(db: &Db, r: &invoices::InvoiceRow) -> anyhow::Result<InvoiceView> {
    Ok(InvoiceView::of(&invoice_document::load(db, r).await?))
}

/// Serializes invoices as their JSON views (a report's `invoices` field).
pub fn serialize_invoices<S: serde::Serializer>(
    invoices: &[Invoice],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(invoices.len()))?;
    for inv in invoices {
        seq.serialize_element(&InvoiceView::of(inv))?;
    }
    seq.end()
}

/// A whole invoice, for `invoices show`.
pub fn invoice_text(i: &Invoice) -> String {
    let cur = i.currency.code();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Invoice {}  ({})",
        i.number.as_deref().unwrap_or("(draft)"),
        i.status
    );
    let _ = writeln!(
        s,
        "Account {}  period {}  issued {}  due {}",
        i.account_id,
        i.period,
        i.issued_at.format("%Y-%m-%d"),
        i.due_at
    );
    let b = &i.buyer;
    let _ = writeln!(
        s,
        "Bill to: {}{}, {}, {}{}",
        b.name,
        b.company
            .as_ref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default(),
        b.address,
        b.country,
        b.vat_number
            .as_ref()
            .map(|v| format!(", VAT {v}"))
            .unwrap_or_default()
    );
    s.push('\n');
    let rows: Vec<Vec<String>> = i
        .lines
        .iter()
        .map(|l| {
            vec![
                l.description.clone(),
                hours(l.quantity_hours),
                dec(l.unit_price),
                amount(l.amount),
            ]
        })
        .collect();
    s.push_str(&table(
        &["DESCRIPTION", "HOURS", "UNIT PRICE", "AMOUNT"],
        &rows,
    ));
    s.push('\n');
    for d in &i.discounts {
        let _ = writeln!(s, "{}  -{}", d.description, amount(d.amount));
    }
    let _ = writeln!(s, "Subtotal        {:>10} {cur}", amount(i.subtotal));
    let _ = writeln!(s, "Discount        {:>10} {cur}", amount(i.discount));
    let _ = writeln!(
        s,
        "VAT ({:>5}%)    {:>10} {cur}",
        dec(i.tax_rate),
        amount(i.tax)
    );
    let _ = writeln!(s, "Total           {:>10} {cur}", amount(i.total));
    for b in &i.brought_forward {
        let _ = writeln!(
            s,
            "Brought forward {:>10} {cur} (from invoice {})",
            amount(b.amount),
            b.invoice_number
        );
    }
    let _ = writeln!(s, "Credit applied  {:>10} {cur}", amount(i.credit_applied));
    let _ = writeln!(s, "Amount paid     {:>10} {cur}", amount(i.amount_paid));
    if i.carried_forward.minor != 0 {
        let _ = writeln!(
            s,
            "Carried forward {:>10} {cur} (below the €0.50 minimum charge; {})",
            amount(i.carried_forward),
            match &i.carried_to {
                None | Some(CarriedTo::NextInvoice) => "on the next invoice".to_string(),
                Some(CarriedTo::Invoice(n)) => format!("on invoice {n}"),
                Some(CarriedTo::Waived) => "waived when the account closed".to_string(),
            }
        );
    }
    for c in &i.credit_notes {
        let _ = writeln!(
            s,
            "Credited        {:>10} {cur} (credit note {} of {}: {})",
            amount(c.total),
            c.number,
            c.issued_at.format("%Y-%m-%d"),
            c.reason
        );
    }
    let _ = writeln!(s, "Amount due      {:>10} {cur}", amount(i.amount_due));
    if let Some(m) = i.tax_mention() {
        let _ = writeln!(s, "\n{m}");
    }
    if !i.attempts.is_empty() {
        s.push('\n');
        let rows: Vec<Vec<String>> = i
            .attempts
            .iter()
            .map(|a| {
                vec![
                    a.number.to_string(),
                    a.at.format("%Y-%m-%d %H:%M").to_string(),
                    a.trigger.as_str().to_string(),
                    format!("{} ({})", a.method, a.gateway),
                    amount(a.amount),
                    a.outcome.as_str().to_string(),
                    a.decline_code.clone().unwrap_or_default(),
                ]
            })
            .collect();
        s.push_str(&table(
            &[
                "ATTEMPT", "AT", "TRIGGER", "METHOD", "AMOUNT", "OUTCOME", "CODE",
            ],
            &rows,
        ));
    }
    if let Some(t) = i.next_attempt_at {
        let _ = writeln!(s, "Next attempt: {}", t.format("%Y-%m-%d %H:%M UTC"));
    }
    s
}
