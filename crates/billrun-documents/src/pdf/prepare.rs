//! What the document says, worded and formatted before layout starts: the facts of the
//! header, the table's rows, the totals, and the paragraphs before the table and after the
//! totals, read off the typed [`Invoice`] or [`CreditNote`] (no amount is parsed: each is
//! formatted by `core::locale`). The layout and the serializer read only a [`Prepared`], so an
//! invoice and a credit note are laid out and written by the same code.

use chrono::NaiveDate;

use billrun_core::document::{Buyer, CreditNote, Invoice, Seller};
use billrun_core::einvoice::PaymentMeans;
use billrun_core::locale::{self, Language, Typography};
use billrun_core::money::Money;
use billrun_core::vat::BuyerKind;

use super::fonts::Weight;
use super::labels::{Labels, colon, labels};

/// The document, ready to be laid out.
pub(super) struct Prepared {
    pub(super) lang: Language,
    /// "Facture" / "Avoir": the title on page 1 and in the header of the next pages.
    pub(super) title: &'static str,
    /// `""` when the document has no number yet (a dry-run).
    pub(super) number: String,
    pub(super) issued: NaiveDate,
    /// What the trailer `/ID` is derived from, beside the number (`billrun-<kind>:<number>`).
    pub(super) id_kind: &'static str,
    /// The embedded XML's description in its file specification.
    pub(super) xml_description: &'static str,
    /// The facts under the title: (label, weight of the value, value).
    pub(super) facts: Vec<(&'static str, Weight, String)>,
    /// Above the buyer's box: "Facturé à" / "Billed to".
    pub(super) buyer_heading: &'static str,
    pub(super) buyer: Buyer,
    /// Paragraphs between the header and the table: (weight, text).
    pub(super) intro: Vec<(Weight, String)>,
    /// The table's column headings: description, quantity, unit price, amount.
    pub(super) columns: [&'static [&'static str]; 4],
    pub(super) rows: Vec<TableRow>,
    pub(super) totals: Vec<TotalRow>,
    /// The mentions printed after the totals: (weight, text, gap after).
    pub(super) mentions: Vec<(Weight, String, f32)>,
    /// The buyer's SIREN as printed (`404 833 048`), a business buyer's only (EN 16931
    /// BT-47, near its address).
    pub(super) buyer_siren: Option<String>,
}

pub(super) struct TableRow {
    pub(super) description: String,
    pub(super) quantity: String,
    pub(super) unit_price: String,
    pub(super) amount: String,
}

pub(super) struct TotalRow {
    pub(super) label: String,
    pub(super) value: String,
    pub(super) style: TotalStyle,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TotalStyle {
    Normal,
    Total,
    Due,
}

/// An amount as the PDF writes it: fr `-1 234,56 €`, en `-€1,234.56`.
fn money(m: Money, lang: Language) -> String {
    locale::money(m, lang, Typography::Plain)
}

/// An amount shown as a deduction (credit, payment, discount): minus its absolute value.
fn deduction(m: Money, lang: Language) -> String {
    money(Money::new(-m.minor.saturating_abs(), m.currency), lang)
}

fn row(label: &str, value: String, style: TotalStyle) -> TotalRow {
    TotalRow {
        label: label.to_string(),
        value,
        style,
    }
}

/// The VAT row: one rate per document, its base and the tax.
fn vat_row(lang: Language, rate: rust_decimal::Decimal, base: Money, tax: Money) -> TotalRow {
    let rate = locale::number(rate.normalize(), lang, Typography::Plain);
    let base = money(base, lang);
    let label = match lang {
        Language::Fr => format!("TVA {rate} % sur {base}"),
        Language::En => format!("VAT {rate}% on {base}"),
    };
    TotalRow {
        label,
        value: money(tax, lang),
        style: TotalStyle::Normal,
    }
}

fn end_sentence(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() || s.ends_with(['.', '!', '?']) {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

impl Prepared {
    /// The invoice as issued (`Invoice::as_issued`).
    pub(super) fn invoice(inv: &Invoice, seller: &Seller) -> Prepared {
        let lang = inv.language;
        let l = labels(lang);

        let mut rows = Vec::with_capacity(inv.lines.len() + inv.discounts.len());
        for line in &inv.lines {
            let mut quantity = line.quantity_hours;
            quantity.rescale(2);
            rows.push(TableRow {
                description: line.description.clone(),
                quantity: locale::number(quantity, lang, Typography::Plain),
                unit_price: locale::euros(line.unit_price.normalize(), lang, Typography::Plain),
                amount: money(line.amount, lang),
            });
        }
        for d in &inv.discounts {
            let description = if d.description.trim().is_empty() {
                l.referral_discount.to_string()
            } else {
                format!("{} – {}", l.referral_discount, d.description)
            };
            rows.push(TableRow {
                description,
                quantity: String::new(),
                unit_price: String::new(),
                amount: deduction(d.amount, lang),
            });
        }

        let mut totals = vec![row(
            l.subtotal,
            money(inv.subtotal, lang),
            TotalStyle::Normal,
        )];
        if inv.discount.minor != 0 || !inv.discounts.is_empty() {
            totals.push(row(
                l.discount_total,
                deduction(inv.discount, lang),
                TotalStyle::Normal,
            ));
        }
        // One VAT rate per invoice: its rate, its base (the subtotal less the discounts) and
        // the tax.
        totals.push(vat_row(lang, inv.tax_rate, inv.taxable_base(), inv.tax));
        totals.push(row(l.total, money(inv.total, lang), TotalStyle::Total));
        if inv.balance_brought_forward.minor != 0 {
            totals.push(row(
                l.balance_brought_forward,
                money(inv.balance_brought_forward, lang),
                TotalStyle::Normal,
            ));
        }
        if inv.credit_applied.minor != 0 {
            totals.push(row(
                l.credit_applied,
                deduction(inv.credit_applied, lang),
                TotalStyle::Normal,
            ));
        }
        if inv.amount_paid.minor != 0 {
            totals.push(row(
                l.amount_paid,
                deduction(inv.amount_paid, lang),
                TotalStyle::Normal,
            ));
        }
        totals.push(row(
            l.amount_due,
            money(inv.amount_due, lang),
            TotalStyle::Due,
        ));

        let number = inv.number.clone().unwrap_or_default();
        let period_from = locale::short_date(inv.period_start.date_naive(), lang);
        let period_to = locale::short_date(inv.period_last_day(), lang);
        let period_range = match lang {
            Language::Fr => format!("du {period_from} au {period_to}"),
            Language::En => format!("{period_from} – {period_to}"),
        };
        let facts = vec![
            (l.number, Weight::Bold, number.clone()),
            (
                l.issue_date,
                Weight::Regular,
                locale::short_date(inv.issued_at.date_naive(), lang),
            ),
            (
                l.due_date,
                Weight::Bold,
                locale::short_date(inv.due_at, lang),
            ),
            (l.period, Weight::Regular, inv.period_label()),
            ("", Weight::Regular, period_range),
        ];

        // The mentions: the VAT mention (article 242 nonies A, I-13° of annex II to the CGI),
        // the payment terms, the IBAN, no discount for early payment and the late-payment
        // penalties (article L441-10 of the Code de commerce; B2B only).
        let terms = inv.payment_terms();
        let mut mentions = Vec::new();
        if let Some(m) = inv.tax_mention().filter(|m| !m.trim().is_empty()) {
            mentions.push((Weight::Bold, m.to_string(), 8.0));
        }
        mentions.push((Weight::Bold, l.payment_heading.to_string(), 1.0));
        mentions.push((Weight::Regular, end_sentence(&terms.text(lang)), 2.0));
        // The payment means recorded at issue: the XML's BG-16 in the same words (BT-82), and
        // a SEPA debit's creditor identifier (BT-90).
        let payment_means = match inv.payment_means {
            // Issued before the means were recorded: the PDF printed no such line.
            PaymentMeans::Unrecorded => None,
            m if inv.amount_due.minor > 0 => m
                .information(lang, inv.sepa_mandate.as_deref())
                .map(|info| colon(lang, l.payment_means, &info)),
            _ => None,
        };
        if let Some(means) = &payment_means {
            mentions.push((Weight::Regular, end_sentence(means), 2.0));
        }
        if inv.payment_means == PaymentMeans::SepaDebit
            && inv.amount_due.minor > 0
            && let Some(ics) = seller.sepa_creditor_id.as_deref()
        {
            mentions.push((
                Weight::Regular,
                end_sentence(&colon(lang, l.creditor_id, ics)),
                2.0,
            ));
        }
        if let Some(iban) = seller.iban.as_ref().filter(|s| !s.trim().is_empty()) {
            mentions.push((Weight::Regular, format!("{} {iban}", l.bank_transfer), 2.0));
        }
        mentions.push((Weight::Regular, l.no_early_discount.to_string(), 2.0));
        if let Some(late) = terms
            .late_payment_sentence(lang)
            .filter(|s| !s.trim().is_empty())
        {
            mentions.push((Weight::Regular, end_sentence(&late), 0.0));
        }

        Prepared {
            lang,
            title: l.invoice,
            number,
            issued: inv.issued_at.date_naive(),
            id_kind: "invoice",
            xml_description: "Factur-X invoice (CII, EN 16931)",
            facts,
            buyer_heading: l.billed_to,
            buyer: inv.buyer.clone(),
            intro: Vec::new(),
            columns: [
                l.col_description,
                l.col_quantity,
                l.col_unit_price,
                l.col_amount,
            ],
            rows,
            totals,
            mentions,
            buyer_siren: business_siren(&inv.buyer),
        }
    }

    /// The credit note as issued: what it credits (amounts positive, a deduction negative),
    /// the invoice it corrects, its reason, its VAT and how it is settled.
    pub(super) fn credit_note(cn: &CreditNote) -> Prepared {
        let lang = cn.language;
        let l = labels(lang);
        let rows = cn
            .lines
            .iter()
            .map(|line| TableRow {
                description: line.description.clone(),
                quantity: String::new(),
                unit_price: String::new(),
                amount: money(line.amount, lang),
            })
            .collect();
        let totals = vec![
            row(l.subtotal, money(cn.subtotal, lang), TotalStyle::Normal),
            // The invoice's rate on the credited base: the VAT is reversed as it was charged.
            vat_row(lang, cn.tax_rate, cn.subtotal, cn.tax),
            row(l.credit_note_total, money(cn.total, lang), TotalStyle::Due),
        ];
        let number = cn.number.clone().unwrap_or_default();
        let facts = vec![
            (l.number, Weight::Bold, number.clone()),
            (
                l.issue_date,
                Weight::Regular,
                locale::short_date(cn.issued_at.date_naive(), lang),
            ),
            (l.invoice, Weight::Bold, cn.invoice_number.clone()),
            (
                l.invoice_date,
                Weight::Regular,
                locale::short_date(cn.invoice_issued_at.date_naive(), lang),
            ),
            (
                l.period,
                Weight::Regular,
                billrun_core::invoice::period_label(cn.invoice_period, lang),
            ),
        ];
        // Article 242 nonies A of annex II to the CGI: the credit note names the invoice it
        // corrects; then why.
        let mut intro = vec![(Weight::Bold, credit_note_reference(cn))];
        if !cn.reason.trim().is_empty() {
            intro.push((Weight::Regular, credit_note_reason(cn)));
        }
        let mut mentions = Vec::new();
        if let Some(m) = cn.tax_mention().filter(|m| !m.trim().is_empty()) {
            mentions.push((Weight::Bold, m.to_string(), 8.0));
        }
        mentions.push((Weight::Bold, l.settlement_heading.to_string(), 1.0));
        for sentence in settlement_sentences(cn) {
            mentions.push((Weight::Regular, sentence, 2.0));
        }
        Prepared {
            lang,
            title: l.credit_note,
            number,
            issued: cn.issued_at.date_naive(),
            id_kind: "credit-note",
            xml_description: "Factur-X credit note (CII, EN 16931)",
            facts,
            buyer_heading: l.customer,
            buyer: cn.buyer.clone(),
            intro,
            columns: [l.col_description, &[], &[], l.col_amount],
            rows,
            totals,
            mentions,
            buyer_siren: business_siren(&cn.buyer),
        }
    }

    /// Every string from the document or the seller that can end up on the page (the fonts
    /// are chosen for them: `FontLibrary::for_texts`).
    pub(super) fn all_text<'a>(&'a self, seller: &'a Seller) -> impl Iterator<Item = &'a str> {
        let fixed = [
            self.number.as_str(),
            &self.buyer.name,
            &self.buyer.address,
            &self.buyer.country,
            &seller.name,
            &seller.legal_form,
            &seller.rcs,
            &seller.siren,
            &seller.siret,
            &seller.vat_number,
            &seller.email,
            &seller.website,
        ];
        let optional = [
            self.buyer.company.as_deref(),
            self.buyer.vat_number.as_deref(),
            self.buyer.vies_consultation.as_deref(),
            seller.iban.as_deref(),
            self.buyer_siren.as_deref(),
            seller.sepa_creditor_id.as_deref(),
        ];
        fixed
            .into_iter()
            .chain(optional.into_iter().flatten())
            .chain(seller.address.iter().map(String::as_str))
            .chain(self.facts.iter().map(|f| f.2.as_str()))
            .chain(self.intro.iter().map(|p| p.1.as_str()))
            .chain(self.rows.iter().map(|r| r.description.as_str()))
            .chain(self.mentions.iter().map(|m| m.1.as_str()))
    }

    /// The labels of the document's language.
    pub(super) fn labels(&self) -> &'static Labels {
        labels(self.lang)
    }
}

/// "Avoir sur la facture 2026-000001 du 1er novembre 2026" / "Credit note for invoice
/// 2026-000001 of 1 November 2026" (article 242 nonies A of annex II to the CGI: the
/// reference to the invoice corrected).
pub(crate) fn credit_note_reference(cn: &CreditNote) -> String {
    let date = locale::long_date(cn.invoice_issued_at.date_naive(), cn.language);
    match cn.language {
        Language::Fr => format!("Avoir sur la facture {} du {date}", cn.invoice_number),
        Language::En => format!("Credit note for invoice {} of {date}", cn.invoice_number),
    }
}

/// "Motif : …" / "Reason: …".
pub(crate) fn credit_note_reason(cn: &CreditNote) -> String {
    let l = labels(cn.language);
    colon(cn.language, l.reason, cn.reason.trim())
}

/// How the credit note's total is settled, one sentence per way (`cn.refund`), in its
/// language. Worded without the refund's status: the document is issued once and stored,
/// while a refund goes on from pending to succeeded.
pub(crate) fn settlement_sentences(cn: &CreditNote) -> Vec<String> {
    let lang = cn.language;
    let r = &cn.refund;
    let amount = |m: Money| locale::money(m, lang, Typography::Plain);
    let mut out = Vec::new();
    let parts = [
        (SettledBy::ReduceDue, r.reduce_due),
        (SettledBy::PaymentMethod, r.to_payment_method),
        (SettledBy::Credit, r.to_credit),
        (SettledBy::Outside, r.outside),
    ];
    for (by, m) in parts {
        if m.minor == 0 {
            continue;
        }
        let a = amount(m);
        let inv = &cn.invoice_number;
        out.push(match (by, lang) {
            (SettledBy::ReduceDue, Language::Fr) => {
                format!("Déduit du montant restant à payer sur la facture {inv} : {a}.")
            }
            (SettledBy::ReduceDue, Language::En) => {
                format!("Deducted from the amount due on invoice {inv}: {a}.")
            }
            (SettledBy::PaymentMethod, Language::Fr) => {
                format!("Remboursement sur le moyen de paiement qui a réglé la facture : {a}.")
            }
            (SettledBy::PaymentMethod, Language::En) => {
                format!("Refund to the payment method that paid the invoice: {a}.")
            }
            (SettledBy::Credit, Language::Fr) => {
                format!("Restitution sur le crédit prépayé du compte : {a}.")
            }
            (SettledBy::Credit, Language::En) => {
                format!("Returned to the account's prepaid credit: {a}.")
            }
            (SettledBy::Outside, Language::Fr) => {
                format!("Remboursement réglé séparément : {a}.")
            }
            (SettledBy::Outside, Language::En) => format!("Refund settled separately: {a}."),
        });
    }
    if out.is_empty() {
        out.push(match lang {
            Language::Fr => "Aucun montant à restituer.".to_string(),
            Language::En => "Nothing to give back.".to_string(),
        });
    }
    out
}

#[derive(Clone, Copy)]
enum SettledBy {
    ReduceDue,
    PaymentMethod,
    Credit,
    Outside,
}

/// A business buyer's SIREN as printed; `None` for a consumer or without one.
fn business_siren(buyer: &Buyer) -> Option<String> {
    buyer
        .siren
        .as_deref()
        .filter(|_| buyer.kind() == BuyerKind::Business)
        .map(spaced_siren)
}

/// A SIREN as INSEE prints it, in groups of three: `404 833 048`.
fn spaced_siren(siren: &str) -> String {
    let digits: Vec<char> = siren.chars().filter(|c| !c.is_whitespace()).collect();
    digits
        .chunks(3)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}
