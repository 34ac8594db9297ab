//! The invoice PDF at the edge: [`render`] is `documents::pdf::render` with the context an
//! error needs. The caller passes the invoice as issued (`Invoice::as_issued`).

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::pdf;
use crate::core::document::{Buyer, Discount, Invoice, InvoiceStatus, Line, Seller};
use crate::core::ids::{AccountId, AppId, InvoiceId};
use crate::core::locale::Language;
use crate::core::money::{Currency, Money, parse_major};
use crate::core::period::Period;
use crate::core::pricing::UsageKind;
use crate::core::vat::VatCase;
use crate::views::InvoiceView;

/// The PDF of `inv` (the invoice as issued).
pub fn render(inv: &Invoice, seller: &Seller) -> anyhow::Result<Vec<u8>> {
    pdf::render(inv, seller).with_context(|| {
        format!(
            "rendering the PDF of invoice {}",
            inv.number.as_deref().unwrap_or("(draft)")
        )
    })
}

/// TRANSITIONAL, until the jobs build the `Invoice` from the store (issue 20): the PDF of an
/// invoice the jobs still hold as its JSON view, for the period `[period_start, period_end)`.
pub fn render_view(
    v: &InvoiceView,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    seller: &Seller,
) -> anyhow::Result<Vec<u8>> {
    render(&from_view(v, period_start, period_end)?, seller)
}

/// TRANSITIONAL: an invoice's JSON view read back into the typed invoice (the string round
/// trip issue 20 removes; deleted with `render_view`).
fn from_view(
    v: &InvoiceView,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
) -> anyhow::Result<Invoice> {
    let money = |what: &str, s: &str| -> anyhow::Result<Money> {
        parse_major(s)
            .map(Money::eur)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{what} {s:?}"))
    };
    let decimal = |what: &str, s: &str| -> anyhow::Result<rust_decimal::Decimal> {
        s.parse().with_context(|| format!("{what} {s:?}"))
    };
    let period: Period = v.period.parse().map_err(anyhow::Error::msg)?;
    let mut lines = Vec::with_capacity(v.lines.len());
    for l in &v.lines {
        lines.push(Line {
            description: l.description.clone(),
            app_id: l.app_id.clone().map(AppId),
            kind: UsageKind::parse(&l.kind).unwrap_or(UsageKind::Container),
            item: l.item.clone(),
            quantity_hours: decimal("quantity_hours", &l.quantity_hours)?,
            unit_price: decimal("unit_price", &l.unit_price)?,
            amount: money("line amount", &l.amount)?,
        });
    }
    let mut discounts = Vec::with_capacity(v.discounts.len());
    for d in &v.discounts {
        discounts.push(Discount {
            description: d.description.clone(),
            amount: money("discount", &d.amount)?,
        });
    }
    Ok(Invoice {
        id: v.id.map(InvoiceId),
        number: v.number.clone(),
        account_id: AccountId(v.account_id.clone()),
        period,
        period_start,
        period_end,
        status: InvoiceStatus::parse(&v.status).unwrap_or(InvoiceStatus::Open),
        currency: Currency::Eur,
        language: Language::parse(&v.language).unwrap_or(Language::En),
        buyer: Buyer {
            name: v.buyer.name.clone(),
            company: v.buyer.company.clone(),
            address: v.buyer.address.clone(),
            country: v.buyer.country.clone(),
            vat_number: v.buyer.vat_number.clone(),
            vies_consultation: v.buyer.vies_consultation.clone(),
        },
        lines,
        subtotal: money("subtotal", &v.subtotal)?,
        discount: money("discount", &v.discount)?,
        vat_case: VatCase::parse(&v.tax_case)
            .with_context(|| format!("tax case {:?}", v.tax_case))?,
        tax_rate: decimal("tax_rate", &v.tax_rate)?,
        tax: money("tax", &v.tax)?,
        total: money("total", &v.total)?,
        discounts,
        balance_brought_forward: money("balance_brought_forward", &v.balance_brought_forward)?,
        brought_forward: Vec::new(),
        credit_applied: money("credit_applied", &v.credit_applied)?,
        amount_paid: money("amount_paid", &v.amount_paid)?,
        carried_forward: money("carried_forward", &v.carried_forward)?,
        carried_to: None,
        amount_due: money("amount_due", &v.amount_due)?,
        issued_at: v.issued_at,
        due_at: v.due_at,
        next_attempt_at: v.next_attempt_at,
        attempts: Vec::new(),
    })
}
