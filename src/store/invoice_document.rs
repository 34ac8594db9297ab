//! The core's invoice document, built from the store's rows (or from a draft in a dry-run):
//! the one place an invoice's parts are assembled, for every rendering to read.

use std::collections::HashMap;

use super::Conn;
use super::collection::{self, AttemptRow};
use super::invoices::{self, InvoiceRow, LineRow, NewInvoice};
use crate::core::document::{
    Attempt, BroughtForward, Buyer, CarriedTo, Discount, Invoice, InvoiceStatus, Line,
};
use crate::core::einvoice::ElectronicAddress;
use crate::core::ids::{AppId, InvoiceId};
use crate::core::money::{Currency, Money};

fn eur(minor: i64) -> Money {
    Money::eur(minor)
}

fn line_of(l: &LineRow, currency: Currency) -> Line {
    Line {
        description: l.description.clone(),
        app_id: l.app_id.clone().map(AppId),
        kind: l.kind,
        item: l.item.clone(),
        quantity_hours: l.quantity_hours.0,
        unit_price: l.unit_price.0,
        amount: Money::new(l.amount_minor, currency),
    }
}

pub fn attempt_of(a: &AttemptRow) -> Attempt {
    Attempt {
        number: a.number,
        trigger: a.trigger,
        method: a.method.clone(),
        gateway: a.gateway.clone(),
        amount: eur(a.amount_minor),
        payment_intent: a.payment_intent_id.clone(),
        outcome: a.outcome,
        decline_code: a.decline_code.clone(),
        message: a.failure_message.clone(),
        at: a.created_at,
        settled_at: a.settled_at,
    }
}

/// The invoice of a stored row and its lines; discounts, balances moved and attempts are the
/// caller's to add (see [`load`]).
pub fn from_row(r: &InvoiceRow, lines: &[LineRow]) -> Invoice {
    let c = r.currency;
    let m = |minor| Money::new(minor, c);
    Invoice {
        id: Some(InvoiceId(r.id)),
        number: Some(r.number.clone()),
        account_id: r.account_id.clone(),
        period: r.period,
        period_start: r.period_start,
        period_end: r.period_end,
        status: r.status,
        currency: c,
        language: r.language,
        buyer: Buyer {
            name: r.buyer_name.clone(),
            company: r.buyer_company.clone(),
            address: r.buyer_address.clone(),
            country: r.buyer_country.clone(),
            vat_number: r.buyer_vat_number.clone(),
            vies_consultation: r.vies_consultation.clone(),
            siren: r.buyer_siren.clone(),
            electronic_address: match (
                &r.buyer_electronic_address_scheme,
                &r.buyer_electronic_address,
            ) {
                (Some(scheme), Some(id)) => Some(ElectronicAddress {
                    scheme: scheme.clone(),
                    id: id.clone(),
                }),
                _ => None,
            },
        },
        lines: lines.iter().map(|l| line_of(l, c)).collect(),
        subtotal: m(r.subtotal_minor),
        discount: m(r.discount_minor),
        vat_case: r.tax_case,
        tax_rate: r.tax_rate.0,
        tax: m(r.tax_minor),
        total: m(r.total_minor),
        discounts: Vec::new(),
        balance_brought_forward: m(r.brought_forward_minor),
        brought_forward: Vec::new(),
        credit_applied: m(r.credit_applied_minor),
        amount_paid: m(r.amount_paid_minor),
        carried_forward: m(r.carried_forward_minor),
        carried_to: None,
        amount_due: m(r.amount_due_minor),
        issued_at: r.issued_at,
        due_at: r.due_at,
        next_attempt_at: r.next_attempt_at,
        attempts: Vec::new(),
        amount_credited: m(r.credited_minor),
        credit_notes: Vec::new(),
        payment_means: r.payment_means,
        sepa_mandate: r.sepa_mandate.clone(),
    }
}

/// What a dry-run would finalize (no id, no number yet), or, given them, what was finalized.
pub fn from_new(n: &NewInvoice, issued: Option<(InvoiceId, &str)>) -> Invoice {
    let t = &n.totals;
    let a = &n.account;
    let amount_due = eur(n.amount_due_minor());
    Invoice {
        id: issued.map(|i| i.0),
        number: issued.map(|i| i.1.to_string()),
        account_id: a.id.clone(),
        period: n.period,
        period_start: n.period_start,
        period_end: n.period_end,
        status: match issued {
            Some(_) => InvoiceStatus::at_issue(amount_due),
            // A draft is shown as it would be finalized, before the collect job sees it.
            None => InvoiceStatus::Open,
        },
        currency: Currency::Eur,
        language: a.language,
        buyer: Buyer {
            name: a.name.clone(),
            company: a.company.clone(),
            address: a.address.clone(),
            country: a.country.clone(),
            vat_number: a.vat_number.clone(),
            vies_consultation: n.vies_consultation.clone(),
            siren: a.siren.clone(),
            electronic_address: a.electronic_address.clone(),
        },
        lines: n.lines.clone(),
        subtotal: eur(t.subtotal),
        discount: eur(t.discount),
        vat_case: t.tax_case,
        tax_rate: t.tax_rate,
        tax: eur(t.tax),
        total: eur(t.total),
        discounts: n
            .discounts
            .iter()
            .map(|d| Discount {
                description: d.description.clone(),
                amount: eur(d.amount_minor),
            })
            .collect(),
        balance_brought_forward: eur(n.brought_forward_minor()),
        brought_forward: n
            .brought_forward
            .iter()
            .map(|b| BroughtForward {
                invoice_number: b.1.clone(),
                amount: eur(b.2),
            })
            .collect(),
        credit_applied: eur(0),
        amount_paid: eur(0),
        carried_forward: eur(0),
        carried_to: None,
        amount_due,
        issued_at: n.issued_at,
        due_at: n.due_at,
        next_attempt_at: None,
        attempts: Vec::new(),
        amount_credited: eur(0),
        credit_notes: Vec::new(),
        payment_means: n.payment_means,
        sepa_mandate: n.sepa_mandate.clone(),
    }
}

/// An invoice with everything shown about it: lines, discounts, balances moved, attempts.
pub async fn load(db: impl Into<Conn<'_>>, r: &InvoiceRow) -> anyhow::Result<Invoice> {
    let mut db = Conn::of(db);
    let lines = invoices::lines(&mut db, r.id).await?;
    let mut inv = from_row(r, &lines);
    inv.discounts = invoices::discounts(&mut db, r.id)
        .await?
        .into_iter()
        .map(|(description, amount)| Discount {
            description,
            amount: Money::new(amount, r.currency),
        })
        .collect();
    inv.brought_forward = collection::transfers_to(&mut db, r.id)
        .await?
        .into_iter()
        .map(|(invoice_number, amount)| BroughtForward {
            invoice_number,
            amount: Money::new(amount, r.currency),
        })
        .collect();
    inv.carried_to = collection::transfer_from(&mut db, r.id)
        .await?
        .map(|(_, to)| match to {
            None => CarriedTo::NextInvoice,
            Some(to) if to == "waived" => CarriedTo::Waived,
            Some(number) => CarriedTo::Invoice(number),
        });
    if r.credited_minor > 0 {
        inv.credit_notes = super::credit_notes::refs_of_invoice(&mut db, r.id).await?;
    }
    inv.attempts = collection::attempts(&mut db, r.id)
        .await?
        .iter()
        .map(attempt_of)
        .collect();
    Ok(inv)
}

/// The invoices of `rows` as issued (before any payment), as their PDFs show them, read a page
/// at a time: their lines, discounts and balances brought forward in three queries for the
/// whole page.
pub async fn load_issued_page(
    db: impl Into<Conn<'_>>,
    rows: &[InvoiceRow],
) -> anyhow::Result<Vec<Invoice>> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(Vec::new());
    };
    let mut db = Conn::of(db);
    let (first, last) = (first.id.min(last.id), first.id.max(last.id));
    let mut lines: HashMap<i64, Vec<LineRow>> = HashMap::new();
    for l in invoices::lines_between(&mut db, first, last).await? {
        lines.entry(l.invoice_id).or_default().push(l);
    }
    let mut discounts: HashMap<i64, Vec<Discount>> = HashMap::new();
    for (id, description, amount) in invoices::discounts_between(&mut db, first, last).await? {
        discounts.entry(id).or_default().push(Discount {
            description,
            amount: eur(amount),
        });
    }
    let mut transfers: HashMap<i64, Vec<BroughtForward>> = HashMap::new();
    for (id, invoice_number, amount) in
        collection::transfers_to_between(&mut db, first, last).await?
    {
        transfers.entry(id).or_default().push(BroughtForward {
            invoice_number,
            amount: eur(amount),
        });
    }
    Ok(rows
        .iter()
        .map(|row| {
            let mut inv = from_row(row, lines.get(&row.id).map_or(&[][..], Vec::as_slice));
            inv.discounts = discounts.remove(&row.id).unwrap_or_default();
            inv.brought_forward = transfers.remove(&row.id).unwrap_or_default();
            inv.as_issued()
        })
        .collect())
}
