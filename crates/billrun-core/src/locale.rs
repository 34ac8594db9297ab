//! The languages billrun writes in, and how each writes numbers, amounts, months and dates.
//!
//! One table of month names and one number formatter per language: the invoice lines, the PDF,
//! the emails and the payment terms all write through these, so an amount reads the same
//! everywhere. Two typographies: `Plain` uses ASCII spaces (the PDF, the stored line
//! descriptions), `Typographic` the narrow no-break space between thousands and a no-break
//! space before `€` (the emails, where the reader's font has them).

use std::fmt;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::Money;

/// The language an account reads its invoices and emails in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Fr,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Fr => "fr",
            Language::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "fr" => Some(Language::Fr),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which spaces a number is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typography {
    /// ASCII spaces (fr `1 234,50 €`).
    Plain,
    /// fr: U+202F between thousands, U+00A0 before `€` (`1 234,50 €`).
    Typographic,
}

/// A month's name: `month` 1–12; French names are lowercase, as French writes them.
pub fn month_name(month: u32, language: Language) -> &'static str {
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const FR: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let i = (month.clamp(1, 12) - 1) as usize;
    match language {
        Language::En => EN[i],
        Language::Fr => FR[i],
    }
}

/// fr `1er novembre 2026`, `16 novembre 2026`; en `16 November 2026`.
pub fn long_date(d: NaiveDate, language: Language) -> String {
    let day = match (language, d.day()) {
        (Language::Fr, 1) => "1er".to_string(),
        (_, n) => n.to_string(),
    };
    format!("{day} {} {}", month_name(d.month(), language), d.year())
}

/// fr `01/11/2026`; en `1 November 2026` (the dates of the PDF's header).
pub fn short_date(d: NaiveDate, language: Language) -> String {
    match language {
        Language::Fr => format!("{:02}/{:02}/{}", d.day(), d.month(), d.year()),
        Language::En => format!(
            "{} {} {}",
            d.day(),
            month_name(d.month(), Language::En),
            d.year()
        ),
    }
}

/// The sign and the grouped digits of `d`, written with the scale it has (`0.0200` keeps its
/// four places, `5` has none): fr `-1 234,50`, en `-1,234.50`. Zero has no sign.
fn signed_digits(d: Decimal, language: Language, typography: Typography) -> (bool, String) {
    let text = d.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (group, point) = match (language, typography) {
        (Language::Fr, Typography::Plain) => (' ', ','),
        (Language::Fr, Typography::Typographic) => ('\u{202f}', ','),
        (Language::En, _) => (',', '.'),
    };
    let mut out = String::with_capacity(int.len() + int.len() / 3 + frac.len() + 1);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(group);
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push(point);
        out.push_str(frac);
    }
    (d.is_sign_negative() && !d.is_zero(), out)
}

/// A number as the language writes it: fr `1 234,5`, en `1,234.5` (its scale kept).
pub fn number(d: Decimal, language: Language, typography: Typography) -> String {
    let (negative, digits) = signed_digits(d, language, typography);
    if negative {
        format!("-{digits}")
    } else {
        digits
    }
}

/// An amount in euros as the language writes it, with the scale `d` has: fr `-1 234,50 €`,
/// en `-€1,234.50`.
pub fn euros(d: Decimal, language: Language, typography: Typography) -> String {
    let (negative, digits) = signed_digits(d, language, typography);
    let sign = if negative { "-" } else { "" };
    match (language, typography) {
        (Language::Fr, Typography::Plain) => format!("{sign}{digits} €"),
        (Language::Fr, Typography::Typographic) => format!("{sign}{digits}\u{a0}€"),
        (Language::En, _) => format!("{sign}€{digits}"),
    }
}

/// Money with its two decimal places: fr `28,80 €`, en `€28.80`.
pub fn money(m: Money, language: Language, typography: Typography) -> String {
    euros(m.to_decimal(), language, typography)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn amounts_are_grouped_by_thousands_in_each_language_and_typography() {
        let m = d("-1234567.50");
        assert_eq!(euros(m, Language::Fr, Typography::Plain), "-1 234 567,50 €");
        assert_eq!(
            euros(m, Language::Fr, Typography::Typographic),
            "-1\u{202f}234\u{202f}567,50\u{a0}€"
        );
        assert_eq!(euros(m, Language::En, Typography::Plain), "-€1,234,567.50");
        assert_eq!(
            money(Money::eur(2880), Language::Fr, Typography::Plain),
            "28,80 €"
        );
        assert_eq!(
            money(Money::eur(-5), Language::En, Typography::Plain),
            "-€0.05"
        );
        // Zero has no sign, whatever sign its decimal carries.
        assert_eq!(euros(d("-0.00"), Language::En, Typography::Plain), "€0.00");
        // The scale is the caller's: a unit price keeps its places, a rate has none.
        assert_eq!(
            number(d("0.0200"), Language::Fr, Typography::Plain),
            "0,0200"
        );
        assert_eq!(number(d("20"), Language::Fr, Typography::Plain), "20");
        assert_eq!(number(d("5.5"), Language::En, Typography::Plain), "5.5");
    }

    #[test]
    fn dates_in_both_languages() {
        let nov1 = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert_eq!(long_date(nov1, Language::Fr), "1er novembre 2026");
        assert_eq!(long_date(nov1, Language::En), "1 November 2026");
        assert_eq!(short_date(nov1, Language::Fr), "01/11/2026");
        assert_eq!(short_date(nov1, Language::En), "1 November 2026");
    }
}
