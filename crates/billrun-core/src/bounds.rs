//! Input bounds: the largest values billrun accepts where data enters (imports, commands).
//! Read-only constants (README "Input bounds"); the importers and commands refuse anything
//! beyond them, naming file, line and field.
//!
//! Why these numbers (i64 minor units hold 9.22 × 10^18):
//! - a line bills at most one period of a record: 31 days = `MAX_PERIOD_SECONDS` (the core
//!   clips usage to the period), so one record's line is at most
//!   744 h × `MAX_QUANTITY` × `MAX_HOURLY_PRICE` = 744 × 10^4 × 10^6 EUR = 7.44 × 10^14 minor;
//! - one invoice therefore holds more than 12,000 records at the maximum before its subtotal
//!   could leave i64; past that the core's checked arithmetic refuses the account's invoice
//!   (a failure naming it), it never wraps or panics;
//! - `MAX_AMOUNT_MINOR` (10^12 minor, 10^10 EUR) bounds amounts typed in by an operator (a
//!   credit purchase): a ledger of a million of them still fits.

use rust_decimal::Decimal;

/// Containers (or addon units) of one usage record running at once.
pub const MAX_QUANTITY: i64 = 10_000;

/// The longest span one invoice bills of a usage record: a 31-day month, in seconds.
pub const MAX_PERIOD_SECONDS: i64 = 31 * 24 * 3600;

/// Usage, catalog and account times are between these years (inclusive): durations are
/// bounded and every period arithmetic stays far from chrono's limits.
pub const MIN_YEAR: i32 = 2000;
pub const MAX_YEAR: i32 = 2999;

/// The highest catalog price, in EUR per hour (and the highest monthly cap, in EUR).
pub const MAX_HOURLY_PRICE_EUR: i64 = 1_000_000;

/// Decimal places of a catalog price or cap.
pub const MAX_PRICE_DECIMALS: u32 = 6;

/// The highest amount an operator may enter (a credit purchase), in minor units (cents).
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// Maximum lengths of text fields, in characters.
pub const MAX_ID_CHARS: usize = 100;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_ADDRESS_CHARS: usize = 500;
/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets, so an address at most 254.
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_VAT_NUMBER_CHARS: usize = 32;
/// A catalog item: a size (`M`) or a plan (`postgresql-starter-512`).
pub const MAX_ITEM_CHARS: usize = 100;
/// A git ref (branch, tag or commit) and other references: a payment reference, a Stripe id.
pub const MAX_REFERENCE_CHARS: usize = 255;
/// RFC 1035 §2.3.4: a DNS name is at most 253 characters in text form.
pub const MAX_DNS_NAME_CHARS: usize = 253;
/// A phone number (E.164 is 15 digits; room for spaces and an extension).
pub const MAX_PHONE_CHARS: usize = 40;

/// Characters of a bad value quoted in an error message; longer values are cut with `…`.
pub const MAX_QUOTED_CHARS: usize = 100;

/// `MAX_HOURLY_PRICE_EUR` as a decimal.
pub fn max_hourly_price() -> Decimal {
    Decimal::from(MAX_HOURLY_PRICE_EUR)
}

/// Why a catalog price (or cap) is out of bounds, if it is.
pub fn price_problem(d: Decimal) -> Option<String> {
    if d > max_hourly_price() {
        return Some(format!(
            "is above the maximum of {MAX_HOURLY_PRICE_EUR} EUR"
        ));
    }
    if d.normalize().scale() > MAX_PRICE_DECIMALS {
        return Some(format!("has more than {MAX_PRICE_DECIMALS} decimal places"));
    }
    None
}

/// `value` as quoted in an error message: at most `MAX_QUOTED_CHARS` characters, then `…`
/// and the full length; control characters escaped (`\n`), so that it stays on one line.
pub fn excerpt(value: &str) -> String {
    excerpt_to(value, MAX_QUOTED_CHARS)
}

/// `value` cut after `max_chars` characters, with `…` and the full length; control characters
/// escaped.
pub fn excerpt_to(value: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in value.chars().enumerate() {
        if n == max_chars {
            return format!("{out}… ({} characters)", value.chars().count());
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn the_largest_accepted_line_fits_i64_minor_units_many_times_over() {
        // 744 h × 10^4 × 10^6 EUR/h, in cents.
        let line = Decimal::from(MAX_PERIOD_SECONDS / 3600)
            * Decimal::from(MAX_QUANTITY)
            * max_hourly_price()
            * Decimal::from(100);
        assert_eq!(line, Decimal::from(744_000_000_000_000_i64));
        assert!(line * Decimal::from(12_000) < Decimal::from(i64::MAX));
        assert!(
            Decimal::from(MAX_AMOUNT_MINOR) * Decimal::from(1_000_000) < Decimal::from(i64::MAX)
        );
    }

    #[test]
    fn prices_beyond_the_bounds_are_named() {
        assert_eq!(price_problem(Decimal::from_str("0.000125").unwrap()), None);
        assert_eq!(price_problem(max_hourly_price()), None);
        assert!(price_problem(Decimal::from_str("1000000.01").unwrap()).is_some());
        assert!(price_problem(Decimal::from_str("0.0000001").unwrap()).is_some());
        assert!(price_problem(Decimal::MAX).is_some());
        // Trailing zeros are not decimals.
        assert_eq!(
            price_problem(Decimal::from_str("1.50000000").unwrap()),
            None
        );
    }

    #[test]
    fn excerpts_are_cut_at_a_character_boundary() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(10_000);
        let e = excerpt(&long);
        assert!(e.starts_with(&"é".repeat(MAX_QUOTED_CHARS)));
        assert!(e.ends_with("… (10000 characters)"), "{e}");
        assert!(e.chars().count() < MAX_QUOTED_CHARS + 30);
        let exact = "a".repeat(MAX_QUOTED_CHARS);
        assert_eq!(excerpt(&exact), exact);
        assert_eq!(excerpt("two\r\nlines"), "two\\r\\nlines");
    }
}
