//! What the invoice says, worded and formatted before layout starts: the table's rows, the
//! totals, and the sentences of the header and the legal mentions, read off the typed
//! [`Invoice`] (no amount is parsed: each is formatted by `core::locale`).

use billrun_core::document::{Invoice, Seller};
use billrun_core::einvoice::PaymentMeans;
use billrun_core::locale::{self, Language, Typography};
use billrun_core::money::Money;
use billrun_core::vat::BuyerKind;

use super::labels::{colon, labels};

/// The invoice's rows, totals and worded sentences, ready to be laid out.
pub(super) struct Prepared {
    pub(super) rows: Vec<TableRow>,
    pub(super) totals: Vec<TotalRow>,
    /// `""` when the invoice has no number yet (a dry-run).
    pub(super) number: String,
    /// e.g. "octobre 2026".
    pub(super) period_label: String,
    /// The first and the last day billed, as the header writes them.
    pub(super) period_from: String,
    pub(super) period_to: String,
    pub(super) issue_date: String,
    pub(super) due_date: String,
    /// The reverse-charge or out-of-scope mention (`core::vat::mention`).
    pub(super) tax_mention: Option<&'static str>,
    /// How and when the invoice is paid (`core::terms`).
    pub(super) payment_terms: String,
    /// The late-payment penalties and recovery indemnity sentence (article L441-10 of the
    /// Code de commerce); `None` on a consumer's invoice.
    pub(super) late_payment: Option<String>,
    /// The payment means recorded at issue, in words (`PaymentMeans::information`, the XML's
    /// BT-82); `None` when nothing is due or for an invoice issued before it was recorded.
    pub(super) payment_means: Option<String>,
    /// Whether the invoice is collected by SEPA debit (its page names the seller's creditor
    /// identifier, BT-90, when the settings give one).
    pub(super) sepa_debit: bool,
    pub(super) language: Language,
    /// The buyer's SIREN as printed (`404 833 048`), a business buyer's only.
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

impl Prepared {
    pub(super) fn new(inv: &Invoice) -> Prepared {
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

        let row = |label: &str, value: String, style| TotalRow {
            label: label.to_string(),
            value,
            style,
        };
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
        let rate = locale::number(inv.tax_rate.normalize(), lang, Typography::Plain);
        let base = money(inv.taxable_base(), lang);
        let vat_label = match lang {
            Language::Fr => format!("TVA {rate} % sur {base}"),
            Language::En => format!("VAT {rate}% on {base}"),
        };
        totals.push(TotalRow {
            label: vat_label,
            value: money(inv.tax, lang),
            style: TotalStyle::Normal,
        });
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

        let terms = inv.payment_terms();
        Prepared {
            rows,
            totals,
            number: inv.number.clone().unwrap_or_default(),
            period_label: inv.period_label(),
            period_from: locale::short_date(inv.period_start.date_naive(), lang),
            period_to: locale::short_date(inv.period_last_day(), lang),
            issue_date: locale::short_date(inv.issued_at.date_naive(), lang),
            due_date: locale::short_date(inv.due_at, lang),
            tax_mention: inv.tax_mention(),
            payment_terms: terms.text(lang),
            late_payment: terms.late_payment_sentence(lang),
            payment_means: match inv.payment_means {
                // Issued before the means were recorded: the PDF printed no such line.
                PaymentMeans::Unrecorded => None,
                m if inv.amount_due.minor > 0 => m
                    .information(lang, inv.sepa_mandate.as_deref())
                    .map(|info| colon(lang, l.payment_means, &info)),
                _ => None,
            },
            language: lang,
            sepa_debit: inv.payment_means == PaymentMeans::SepaDebit && inv.amount_due.minor > 0,
            buyer_siren: inv
                .buyer
                .siren
                .as_deref()
                .filter(|_| inv.buyer.kind() == BuyerKind::Business)
                .map(spaced_siren),
        }
    }

    /// Every string from the invoice or the seller that can end up on the page (the fonts
    /// are chosen for them: `FontLibrary::for_texts`).
    pub(super) fn all_text<'a>(
        &'a self,
        inv: &'a Invoice,
        seller: &'a Seller,
    ) -> impl Iterator<Item = &'a str> {
        let fixed = [
            self.number.as_str(),
            &self.period_label,
            &inv.buyer.name,
            &inv.buyer.address,
            &inv.buyer.country,
            &self.payment_terms,
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
            inv.buyer.company.as_deref(),
            inv.buyer.vat_number.as_deref(),
            inv.buyer.vies_consultation.as_deref(),
            self.tax_mention,
            self.late_payment.as_deref(),
            seller.iban.as_deref(),
            self.payment_means.as_deref(),
            self.buyer_siren.as_deref(),
            seller.sepa_creditor_id.as_deref(),
        ];
        fixed
            .into_iter()
            .chain(optional.into_iter().flatten())
            .chain(seller.address.iter().map(String::as_str))
            .chain(inv.lines.iter().map(|l| l.description.as_str()))
            .chain(inv.discounts.iter().map(|d| d.description.as_str()))
    }
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
