//! Exact money: integer minor units (cents) tagged with their currency.

use std::fmt;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// The currencies billrun bills in. The platform sells in euros only; a catalog row in any other
/// currency is rejected at import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    #[serde(rename = "EUR")]
    Eur,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::Eur => "EUR",
        }
    }

    /// Number of decimal places of the minor unit.
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Eur => 2,
        }
    }

    pub fn parse(code: &str) -> Option<Currency> {
        match code {
            "EUR" => Some(Currency::Eur),
            _ => None,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money in integer minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn eur(minor: i64) -> Self {
        Money::new(minor, Currency::Eur)
    }

    /// The amount as an exact decimal in major units (`1481` -> `14.81`).
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_minor(self.minor), self.currency)
    }
}

/// Formats minor units as a decimal string with two places: `1481` -> `"14.81"`, `-5` -> `"-0.05"`.
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Rounds an exact amount in major units to minor units, half away from zero.
pub fn round_to_minor(amount: Decimal) -> i64 {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    (rounded * Decimal::ONE_HUNDRED)
        .to_i64()
        .expect("amount fits in i64 minor units")
}

/// Parses a decimal amount in major units ("50.00", "12.5") into minor units; refuses more than
/// two decimal places rather than rounding silently.
pub fn parse_major(text: &str) -> Result<i64, String> {
    let d: Decimal = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a decimal amount"))?;
    if d.normalize().scale() > 2 {
        return Err(format!("`{text}` has more than two decimal places"));
    }
    Ok(round_to_minor(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn formats_minor_units() {
        assert_eq!(format_minor(1481), "14.81");
        assert_eq!(format_minor(5), "0.05");
        assert_eq!(format_minor(0), "0.00");
        assert_eq!(format_minor(-120), "-1.20");
        assert_eq!(Money::eur(1000).to_string(), "10.00 EUR");
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(round_to_minor(Decimal::from_str("0.125").unwrap()), 13);
        assert_eq!(round_to_minor(Decimal::from_str("0.124999").unwrap()), 12);
        assert_eq!(round_to_minor(Decimal::from_str("-0.125").unwrap()), -13);
        assert_eq!(round_to_minor(Decimal::from_str("14.805").unwrap()), 1481);
    }

    #[test]
    fn parses_major_amounts() {
        assert_eq!(parse_major("50.00"), Ok(5000));
        assert_eq!(parse_major("12.5"), Ok(1250));
        assert!(parse_major("1.005").is_err());
        assert!(parse_major("abc").is_err());
    }
}
