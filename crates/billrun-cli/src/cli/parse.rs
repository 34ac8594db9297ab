//! The value parsers of the arguments: times, bounded texts, amounts, statuses.

use billrun::store::invoices::InvoiceStatus;

pub(super) use billrun::core::period::parse_time_arg as parse_time;

/// A text argument within its bounds (README "Input bounds"): one line, no control character,
/// at most `max_chars` characters; a bad value is quoted in part.
pub(super) fn bounded_text(s: &str, max_chars: usize) -> Result<String, String> {
    use billrun::core::bounds::excerpt;
    if s.chars().count() > max_chars {
        return Err(format!(
            "`{}` is longer than {max_chars} characters",
            excerpt(s)
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "`{}` contains a line break or control character",
            excerpt(s)
        ));
    }
    Ok(s.to_string())
}

pub(super) fn reference_arg(s: &str) -> Result<String, String> {
    bounded_text(s, billrun::core::bounds::MAX_REFERENCE_CHARS)
}

pub(super) fn name_arg(s: &str) -> Result<String, String> {
    bounded_text(s, billrun::core::bounds::MAX_NAME_CHARS)
}

pub(super) fn phone_arg(s: &str) -> Result<String, String> {
    bounded_text(s, billrun::core::bounds::MAX_PHONE_CHARS)
}

pub(super) fn email_arg(s: &str) -> Result<String, String> {
    bounded_text(s, billrun::core::bounds::MAX_EMAIL_CHARS)
}

/// An amount in euros of at most `MAX_AMOUNT_MINOR` cents (checked before it is converted to
/// cents, which could not hold a larger one).
pub(super) fn amount_arg(s: &str) -> Result<String, String> {
    use billrun::core::bounds::{MAX_AMOUNT_MINOR, excerpt};
    let max = rust_decimal::Decimal::new(MAX_AMOUNT_MINOR, 2);
    match s.trim().parse::<rust_decimal::Decimal>() {
        Ok(d) if d > max => Err(format!(
            "`{}` is above the maximum of {max} EUR",
            excerpt(s)
        )),
        Ok(_) => Ok(s.to_string()),
        Err(_) => Err(format!("`{}` is not a decimal amount", excerpt(s))),
    }
}

pub(super) fn parse_status(s: &str) -> Result<InvoiceStatus, String> {
    InvoiceStatus::parse(s).ok_or_else(|| {
        format!("`{s}` is not a status: open, pending, paid, unpaid, carried_forward or void")
    })
}

/// A credit note's reason: one line, at most `credit_notes::MAX_REASON_CHARS` characters.
pub(super) fn reason_arg(s: &str) -> Result<String, String> {
    bounded_text(s, billrun::credit_notes::MAX_REASON_CHARS)
}

/// `--refund`: auto, card (or sepa), credit, none.
pub(super) fn refund_arg(s: &str) -> Result<billrun::core::credit_note::RefundMethod, String> {
    billrun::core::credit_note::RefundMethod::parse(s)
        .ok_or_else(|| format!("`{s}` is not a refund method: auto, card, sepa, credit or none"))
}
