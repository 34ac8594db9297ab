//! From an invoice as billrun shows it to the PDF renderer's input: labels, VAT rows, legal
//! mentions per language.

use super::pdf::{self, PdfDiscount, PdfInvoice, PdfLanguage, PdfLine, Seller, VatRow};
use crate::config::SellerSettings;
use crate::core::document::Invoice;
use crate::core::locale::Language;
use crate::core::money::{Money, format_minor};

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

/// The document of an invoice as issued (`Invoice::as_issued`).
pub fn document(v: &Invoice) -> PdfInvoice {
    let language = v.language;
    let amount = |m: Money| format_minor(m.minor);
    let terms = v.payment_terms();
    PdfInvoice {
        language: match language {
            Language::Fr => PdfLanguage::Fr,
            Language::En => PdfLanguage::En,
        },
        number: v.number.clone().unwrap_or_default(),
        issue_date: v.issued_at.date_naive(),
        due_date: v.due_at,
        period_label: v.period_label(),
        period_from: v.period_start.date_naive(),
        period_to: v.period_last_day(),
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
                quantity_hours: {
                    let mut q = l.quantity_hours;
                    q.rescale(2);
                    q.to_string()
                },
                unit_price: l.unit_price.normalize().to_string(),
                amount: amount(l.amount),
            })
            .collect(),
        discounts: v
            .discounts
            .iter()
            .map(|d| PdfDiscount {
                description: d.description.clone(),
                amount: amount(d.amount),
            })
            .collect(),
        subtotal: amount(v.subtotal),
        discount_total: amount(v.discount),
        vat_rows: vec![VatRow {
            rate: v.tax_rate.normalize().to_string(),
            base: amount(v.taxable_base()),
            amount: amount(v.tax),
        }],
        total: amount(v.total),
        balance_brought_forward: (v.balance_brought_forward.minor != 0)
            .then(|| amount(v.balance_brought_forward)),
        credit_applied: amount(v.credit_applied),
        amount_paid: amount(v.amount_paid),
        amount_due: amount(v.amount_due),
        currency_symbol: "€".into(),
        tax_mention: v.tax_mention().map(str::to_string),
        payment_terms: terms.text(language),
        late_payment: terms.late_payment_sentence(language),
    }
}

pub fn render(v: &Invoice, s: &SellerSettings) -> anyhow::Result<Vec<u8>> {
    Ok(pdf::render(&document(v), &seller(s))?)
}
