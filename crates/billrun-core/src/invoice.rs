//! Assembling an invoice from priced lines: descriptions, subtotal, discount, VAT, total.

use rust_decimal::Decimal;

pub use super::document::Line;
use super::locale::Typography;
pub use super::locale::{Language, month_name};
use super::money::{Money, Overflow, checked_sum};
use super::period::Period;
use super::pricing::{PricedLine, UsageKind};
use super::vat::{VatCase, VatTreatment, vat_on};

/// Describes a priced line: app, size or plan, and the dates it covers.
pub fn describe(line: &PricedLine, app_name: &str, language: Language) -> String {
    let what = match (line.kind, language) {
        (UsageKind::Container, Language::En) => format!("{} container", line.item),
        (UsageKind::Container, Language::Fr) => format!("conteneur {}", line.item),
        (UsageKind::Addon, Language::En) => format!("addon {}", line.item),
        (UsageKind::Addon, Language::Fr) => format!("addon {}", line.item),
    };
    let first = line.from.date_naive();
    // `to` is exclusive: the last day billed is the day of the last second.
    let last = (line.to - chrono::Duration::seconds(1)).date_naive();
    // A capped line is billed at its cap (the monthly cap × the highest quantity, prorated
    // to the part of the month its price was in force): it says so, and shows that amount.
    let cap = match (line.capped, language) {
        (false, _) => String::new(),
        (true, Language::En) => format!(
            ", monthly cap reached: {}",
            super::locale::money(Money::eur(line.amount_minor), language, Typography::Plain)
        ),
        (true, Language::Fr) => format!(
            ", plafond mensuel atteint : {}",
            super::locale::money(Money::eur(line.amount_minor), language, Typography::Plain)
        ),
    };
    format!("{app_name} — {what} ({first} → {last}{cap})")
}

/// The invoice line of a priced line, described in the account's language.
pub fn draft_line(line: &PricedLine, app_name: &str, language: Language) -> Line {
    Line {
        description: describe(line, app_name, language),
        app_id: Some(line.app_id.clone()),
        kind: line.kind,
        item: line.item.clone(),
        quantity_hours: line.quantity_hours(),
        unit_price: line.unit_price,
        amount: Money::eur(line.amount_minor),
    }
}

/// An invoice's totals, all in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: i64,
    /// Discount applied (never more than the subtotal).
    pub discount: i64,
    /// Discount asked for that did not fit on this invoice (carried forward by the caller).
    pub discount_excess: i64,
    pub taxable_base: i64,
    pub tax_case: VatCase,
    pub tax_rate: Decimal,
    pub tax: i64,
    pub total: i64,
}

/// Subtotal = Σ lines; discount ≤ subtotal; VAT once on the taxable base; total = base + VAT.
/// Every step is checked: an amount beyond `i64` minor units is an error, never a panic or a
/// wrapped total.
pub fn totals(
    line_amounts: impl IntoIterator<Item = i64>,
    discount_requested: i64,
    vat: VatTreatment,
) -> Result<Totals, Overflow> {
    let subtotal = checked_sum(line_amounts, "the invoice's subtotal")?;
    let discount_requested = discount_requested.max(0);
    let discount = discount_requested.min(subtotal.max(0));
    // 0 <= discount <= max(subtotal, 0) and discount <= discount_requested: no overflow, but
    // checked all the same.
    let taxable_base = subtotal
        .checked_sub(discount)
        .ok_or(Overflow::of("the invoice's taxable base"))?;
    let tax = vat_on(taxable_base, vat.rate_percent)?;
    Ok(Totals {
        subtotal,
        discount,
        discount_excess: discount_requested
            .checked_sub(discount)
            .ok_or(Overflow::of("the discount carried forward"))?,
        taxable_base,
        tax_case: vat.case,
        tax_rate: vat.rate_percent,
        tax,
        total: taxable_base
            .checked_add(tax)
            .ok_or(Overflow::of("the invoice's total"))?,
    })
}

/// The period label shown on an invoice.
pub fn period_label(period: Period, language: Language) -> String {
    format!("{} {}", month_name(period.month, language), period.year)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AppId;

    #[test]
    fn discount_never_makes_an_invoice_negative() {
        let vat = VatTreatment {
            case: VatCase::Domestic,
            rate_percent: Decimal::from(20),
        };
        let t = totals([1000, 500], 2000, vat).unwrap();
        assert_eq!(
            (t.subtotal, t.discount, t.discount_excess, t.tax, t.total),
            (1500, 1500, 500, 0, 0)
        );
        let t = totals([1000, 481], 0, vat).unwrap();
        assert_eq!((t.tax, t.total), (296, 1777));
    }

    #[test]
    fn a_capped_line_says_the_monthly_cap_is_reached_and_shows_it() {
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let mut line = PricedLine {
            app_id: AppId("app-bob-api".into()),
            kind: UsageKind::Container,
            item: "M".into(),
            unit_price: Decimal::new(2, 2),
            quantity_seconds: 1488 * 3600,
            max_quantity: 2,
            from: t("2026-10-01T00:00:00Z"),
            to: t("2026-11-01T00:00:00Z"),
            capped: true,
            amount_minor: 2880,
        };
        assert_eq!(
            describe(&line, "bob-api", Language::Fr),
            "bob-api — conteneur M (2026-10-01 → 2026-10-31, plafond mensuel atteint : 28,80 €)"
        );
        assert_eq!(
            describe(&line, "bob-api", Language::En),
            "bob-api — M container (2026-10-01 → 2026-10-31, monthly cap reached: €28.80)"
        );
        line.capped = false;
        assert_eq!(
            describe(&line, "bob-api", Language::En),
            "bob-api — M container (2026-10-01 → 2026-10-31)"
        );
    }

    #[test]
    fn totals_beyond_i64_minor_units_are_an_error_not_a_panic() {
        let vat = VatTreatment {
            case: VatCase::Domestic,
            rate_percent: Decimal::from(20),
        };
        let err = totals([i64::MAX, 1], 0, vat).unwrap_err();
        assert!(err.to_string().contains("subtotal"), "{err}");
        // The subtotal fits, its VAT (at an absurd rate) does not.
        let absurd = VatTreatment {
            case: VatCase::Domestic,
            rate_percent: Decimal::from(1000),
        };
        let err = totals([i64::MAX / 2], 0, absurd).unwrap_err();
        assert!(err.to_string().contains("VAT"), "{err}");
        // The subtotal and VAT fit, the total does not.
        let err = totals([i64::MAX / 2, i64::MAX / 2], 0, vat).unwrap_err();
        assert!(err.to_string().contains("total"), "{err}");
        let ok = totals([i64::MAX / 2], i64::MAX, vat).unwrap();
        assert_eq!((ok.discount, ok.tax, ok.total), (i64::MAX / 2, 0, 0));
    }

    #[test]
    fn labels_periods_in_both_languages() {
        let p: Period = "2026-10".parse().unwrap();
        assert_eq!(period_label(p, Language::En), "October 2026");
        assert_eq!(period_label(p, Language::Fr), "octobre 2026");
    }
}
