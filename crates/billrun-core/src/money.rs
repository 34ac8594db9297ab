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

/// An amount that does not fit in `i64` minor units (or an intermediate step of computing one
/// that does not fit its type): refused with an error, never wrapped, saturated or panicked on.
/// `what` names the amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} is out of range (amounts are bounded by ±92233720368547758.07 EUR)")]
pub struct Overflow {
    pub what: &'static str,
}

impl Overflow {
    pub fn of(what: &'static str) -> Overflow {
        Overflow { what }
    }
}

/// Rounds an exact amount in major units to minor units, half away from zero.
pub fn round_to_minor(amount: Decimal) -> Result<i64, Overflow> {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|m| m.to_i64())
        .ok_or(Overflow::of("amount"))
}

/// `numerator / denominator`, rounded half away from zero; `denominator` > 0. Exact: no
/// intermediate step can overflow.
pub fn div_round_half_away(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(denominator > 0);
    let q = numerator / denominator;
    let r = numerator % denominator;
    // |r| < denominator, so |r| >= denominator - |r| cannot overflow.
    if r.unsigned_abs() >= denominator.unsigned_abs() - r.unsigned_abs() {
        q + numerator.signum()
    } else {
        q
    }
}

/// `rate_percent`% of an amount in minor units, computed once on the exact amount and rounded
/// half away from zero (VAT, referral rewards).
pub fn percent_of(minor: i64, rate_percent: Decimal, what: &'static str) -> Result<i64, Overflow> {
    let exact = Decimal::new(minor, 2)
        .checked_mul(rate_percent)
        .and_then(|x| x.checked_div(Decimal::ONE_HUNDRED))
        .ok_or(Overflow::of(what))?;
    round_to_minor(exact).map_err(|_| Overflow::of(what))
}

/// Σ amounts in minor units, checked.
pub fn checked_sum(
    amounts: impl IntoIterator<Item = i64>,
    what: &'static str,
) -> Result<i64, Overflow> {
    amounts
        .into_iter()
        .try_fold(0i64, |acc, a| acc.checked_add(a))
        .ok_or(Overflow::of(what))
}

/// Parses a decimal amount in major units ("50.00", "12.5") into minor units; refuses more than
/// two decimal places rather than rounding silently, and amounts beyond `i64` minor units.
pub fn parse_major(text: &str) -> Result<i64, String> {
    let d: Decimal = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a decimal amount"))?;
    if d.normalize().scale() > 2 {
        return Err(format!("`{text}` has more than two decimal places"));
    }
    round_to_minor(d).map_err(|_| format!("`{text}` is out of range"))
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
        assert_eq!(round_to_minor(Decimal::from_str("0.125").unwrap()), Ok(13));
        assert_eq!(
            round_to_minor(Decimal::from_str("0.124999").unwrap()),
            Ok(12)
        );
        assert_eq!(
            round_to_minor(Decimal::from_str("-0.125").unwrap()),
            Ok(-13)
        );
        assert_eq!(
            round_to_minor(Decimal::from_str("14.805").unwrap()),
            Ok(1481)
        );
        for (n, d, q) in [
            (5, 10, 1),
            (4, 10, 0),
            (-5, 10, -1),
            (-4, 10, 0),
            (15, 10, 2),
        ] {
            assert_eq!(div_round_half_away(n, d), q, "{n}/{d}");
        }
        assert_eq!(div_round_half_away(i128::MAX, i128::MAX), 1);
        assert_eq!(div_round_half_away(i128::MIN + 1, i128::MAX), -1);
        assert_eq!(div_round_half_away(i128::MAX, 2), i128::MAX / 2 + 1);
    }

    #[test]
    fn amounts_beyond_i64_minor_units_are_an_error_not_a_panic() {
        assert_eq!(
            round_to_minor(Decimal::from_str("92233720368547758.07").unwrap()),
            Ok(i64::MAX)
        );
        assert!(round_to_minor(Decimal::from_str("92233720368547758.08").unwrap()).is_err());
        assert!(round_to_minor(Decimal::MAX).is_err());
        assert!(round_to_minor(Decimal::MIN).is_err());
        assert!(parse_major("79228162514264337593543950335").is_err());
        assert!(percent_of(i64::MAX, Decimal::from(1000), "VAT").is_err());
        assert_eq!(
            percent_of(i64::MAX, Decimal::from(20), "x"),
            Ok(1844674407370955161)
        );
        assert!(checked_sum([i64::MAX, 1], "subtotal").is_err());
        assert_eq!(checked_sum([i64::MAX - 1, 1], "subtotal"), Ok(i64::MAX));
    }

    #[test]
    fn parses_major_amounts() {
        assert_eq!(parse_major("50.00"), Ok(5000));
        assert_eq!(parse_major("12.5"), Ok(1250));
        assert!(parse_major("1.005").is_err());
        assert!(parse_major("abc").is_err());
    }
}
