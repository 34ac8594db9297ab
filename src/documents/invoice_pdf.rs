//! From an invoice as billrun shows it to the PDF renderer's input: labels, VAT rows, legal
//! mentions per language.

use chrono::NaiveDate;

use super::pdf::{self, PdfDiscount, PdfInvoice, PdfLanguage, PdfLine, Seller, VatRow};
use crate::config::SellerSettings;
use crate::core::invoice::{Language, period_label};
use crate::core::money::{format_minor, parse_major};
use crate::core::period::Period;
use crate::core::terms::{TermsFacts, payment_terms};
use crate::core::vat::BuyerKind;
use crate::views::InvoiceView;

pub fn seller(s: &SellerSettings) -> Seller {
    Seller {
        name: s.name.clone(),
        legal_form: s.legal_form.clone(),
        address: s.address.clone(),
        rcs: s.rcs.clone(),
        siren: s.siren.clone(),
        siret: s.siret.clone(),
        vat_number: s.vat_number.clone(),
        email: s.email.clone(),
        website: s.website.clone(),
        iban: s.iban.clone(),
    }
}

/// The document of an invoice as issued.
pub fn document(
    v: &InvoiceView,
    period_from: NaiveDate,
    period_to: NaiveDate,
) -> anyhow::Result<PdfInvoice> {
    let language = Language::parse(&v.language).unwrap_or(Language::En);
    let period: Period = v.period.parse().map_err(anyhow::Error::msg)?;
    let base = parse_major(&v.subtotal).map_err(anyhow::Error::msg)?
        - parse_major(&v.discount).map_err(anyhow::Error::msg)?;
    // One truth for the PDF and the emails: `core::terms` words how and when it is paid, and
    // the late-payment mention of a business invoice (article L441-10 of the Code de commerce).
    let buyer = BuyerKind::of(v.buyer.company.as_deref(), v.buyer.vat_number.as_deref());
    let terms = payment_terms(&TermsFacts {
        due_date: v.due_at,
        amount_due_minor: parse_major(&v.amount_due).map_err(anyhow::Error::msg)?,
        buyer,
    });
    Ok(PdfInvoice {
        language: match language {
            Language::Fr => PdfLanguage::Fr,
            Language::En => PdfLanguage::En,
        },
        number: v.number.clone().unwrap_or_default(),
        issue_date: v.issued_at.date_naive(),
        due_date: v.due_at,
        period_label: period_label(period, language),
        period_from,
        period_to,
        buyer_name: v.buyer.name.clone(),
        buyer_company: v.buyer.company.clone(),
        buyer_address: v.buyer.address.clone(),
        buyer_country: v.buyer.country.clone(),
        buyer_vat_number: v.buyer.vat_number.clone(),
        buyer_vies_consultation: v.buyer.vies_consultation.clone(),
        lines: v
            .lines
            .iter()
            .map(|l| PdfLine {
                description: l.description.clone(),
                quantity_hours: l.quantity_hours.clone(),
                unit_price: l.unit_price.clone(),
                amount: l.amount.clone(),
            })
            .collect(),
        discounts: v
            .discounts
            .iter()
            .map(|d| PdfDiscount {
                description: d.description.clone(),
                amount: d.amount.clone(),
            })
            .collect(),
        subtotal: v.subtotal.clone(),
        discount_total: v.discount.clone(),
        vat_rows: vec![VatRow {
            rate: v.tax_rate.clone(),
            base: format_minor(base),
            amount: v.tax.clone(),
        }],
        total: v.total.clone(),
        balance_brought_forward: (v.balance_brought_forward != "0.00")
            .then(|| v.balance_brought_forward.clone()),
        credit_applied: v.credit_applied.clone(),
        amount_paid: v.amount_paid.clone(),
        amount_due: v.amount_due.clone(),
        currency_symbol: "€".into(),
        // The view words it in the invoice's language (`core::vat::mention`).
        tax_mention: v.tax_mention.clone(),
        payment_terms: terms.text(language),
        late_payment: terms.late_payment_sentence(language),
    })
}

pub fn render(
    v: &InvoiceView,
    from: NaiveDate,
    to: NaiveDate,
    s: &SellerSettings,
) -> anyhow::Result<Vec<u8>> {
    Ok(pdf::render(&document(v, from, to)?, &seller(s))?)
}
