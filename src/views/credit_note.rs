//! The views of a credit note: its JSON (`CreditNoteView`), its text and the list's table.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::table::table;
use super::{amount, dec};
use crate::core::document::{CreditNote, RerouteTo};

/// The JSON of a credit note (`invoices credit-note --format json`, `credit-notes show`):
/// amounts as decimal strings, positive (what is credited).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreditNoteView {
    /// `None` in a dry-run: the number is given when it is issued.
    pub number: Option<String>,
    pub invoice_number: String,
    pub invoice_issued_at: DateTime<Utc>,
    pub account_id: String,
    pub issued_at: DateTime<Utc>,
    pub reason: String,
    pub currency: String,
    pub lines: Vec<CreditNoteLineView>,
    pub subtotal: String,
    pub tax_case: String,
    pub tax_mention: Option<String>,
    pub tax_rate: String,
    pub tax: String,
    pub total: String,
    pub refund: RefundView,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreditNoteLineView {
    pub description: String,
    pub kind: String,
    /// The invoice line credited, from 1.
    pub invoice_line: Option<u32>,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RefundView {
    /// As asked: auto, card, credit, none.
    pub method: String,
    /// What is given back (to the payment method, the credit, or outside billrun).
    pub amount: String,
    pub status: String,
    /// What the invoice stopped owing (not a refund).
    pub amount_due_reduced: String,
    pub to_payment_method: String,
    pub to_credit: String,
    pub outside: String,
    /// Gateway refunds that failed and were settled otherwise (`credit-notes refund`); left out
    /// when there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rerouted: Vec<RerouteView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RerouteView {
    /// The PaymentIntent whose refund failed.
    pub payment_intent: String,
    pub amount: String,
    /// `credit` (the prepaid credit) or `none` (paid outside billrun).
    pub to: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

impl CreditNoteView {
    pub fn of(c: &CreditNote) -> CreditNoteView {
        CreditNoteView {
            number: c.number.clone(),
            invoice_number: c.invoice_number.clone(),
            invoice_issued_at: c.invoice_issued_at,
            account_id: c.account_id.to_string(),
            issued_at: c.issued_at,
            reason: c.reason.clone(),
            currency: c.currency.code().to_string(),
            lines: c
                .lines
                .iter()
                .map(|l| CreditNoteLineView {
                    description: l.description.clone(),
                    kind: l.kind.as_str().to_string(),
                    invoice_line: l.invoice_line,
                    amount: amount(l.amount),
                })
                .collect(),
            subtotal: amount(c.subtotal),
            tax_case: c.vat_case.as_str().to_string(),
            tax_mention: c.tax_mention().map(str::to_string),
            tax_rate: dec(c.tax_rate),
            tax: amount(c.tax),
            total: amount(c.total),
            refund: RefundView {
                method: c.refund.method.as_str().to_string(),
                amount: amount(c.refund.amount()),
                status: c.refund.status.as_str().to_string(),
                amount_due_reduced: amount(c.refund.reduce_due),
                to_payment_method: amount(c.refund.to_payment_method),
                to_credit: amount(c.refund.to_credit),
                outside: amount(c.refund.outside),
                rerouted: c
                    .refund
                    .rerouted
                    .iter()
                    .map(|r| RerouteView {
                        payment_intent: r.payment_intent.clone(),
                        amount: amount(r.amount),
                        to: r.to.as_str().to_string(),
                        reason: r.reason.clone(),
                        at: r.at,
                    })
                    .collect(),
            },
        }
    }
}

/// A credit note as text (`credit-notes show`, `invoices credit-note`).
pub fn credit_note_text(c: &CreditNote) -> String {
    let cur = c.currency.code();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Credit note {}  for invoice {} of {}",
        c.number
            .as_deref()
            .unwrap_or("(dry-run: numbered when issued)"),
        c.invoice_number,
        c.invoice_issued_at.format("%Y-%m-%d")
    );
    let _ = writeln!(
        s,
        "Account {}  issued {}  reason: {}",
        c.account_id,
        c.issued_at.format("%Y-%m-%d"),
        c.reason
    );
    s.push('\n');
    let rows: Vec<Vec<String>> = c
        .lines
        .iter()
        .map(|l| {
            vec![
                l.invoice_line.map(|n| n.to_string()).unwrap_or_default(),
                l.description.clone(),
                amount(l.amount),
            ]
        })
        .collect();
    s.push_str(&table(&["LINE", "DESCRIPTION", "AMOUNT"], &rows));
    s.push('\n');
    let _ = writeln!(s, "Subtotal        {:>10} {cur}", amount(c.subtotal));
    let _ = writeln!(
        s,
        "VAT ({:>5}%)    {:>10} {cur}",
        dec(c.tax_rate),
        amount(c.tax)
    );
    let _ = writeln!(s, "Total credited  {:>10} {cur}", amount(c.total));
    let r = &c.refund;
    let _ = writeln!(s, "Due reduced     {:>10} {cur}", amount(r.reduce_due));
    let _ = writeln!(
        s,
        "Refunded        {:>10} {cur} ({}: {} to the payment method, {} to credit, {} outside billrun; {})",
        amount(r.amount()),
        r.method.as_str(),
        amount(r.to_payment_method),
        amount(r.to_credit),
        amount(r.outside),
        r.status
    );
    for x in &r.rerouted {
        let _ = writeln!(
            s,
            "Re-routed       {:>10} {cur} (refund on {} failed; {} {}{})",
            amount(x.amount),
            x.payment_intent,
            match x.to {
                RerouteTo::Credit => "to credit",
                RerouteTo::None => "paid outside billrun",
            },
            x.at.format("%Y-%m-%d"),
            x.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    if let Some(m) = c.tax_mention() {
        let _ = writeln!(s, "\n{m}");
    }
    s
}

/// Credit notes as a table (`credit-notes list`).
pub fn credit_note_table(notes: &[CreditNote]) -> String {
    let rows: Vec<Vec<String>> = notes
        .iter()
        .map(|c| {
            vec![
                c.number.clone().unwrap_or_default(),
                c.invoice_number.clone(),
                c.account_id.to_string(),
                c.issued_at.format("%Y-%m-%d").to_string(),
                amount(c.total),
                c.refund.status.as_str().to_string(),
                c.reason.clone(),
            ]
        })
        .collect();
    table(
        &[
            "NUMBER", "INVOICE", "ACCOUNT", "ISSUED", "TOTAL", "REFUND", "REASON",
        ],
        &rows,
    )
}
