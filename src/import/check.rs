//! Validating one record's fields: each check names the file, line and field of what it
//! refuses, and a record is refused with every error it has (not only the first).

use std::collections::HashSet;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Utc};
use rust_decimal::Decimal;

use super::LineError;
use super::read::Fields;
use crate::core::bounds::{self, excerpt};
use crate::core::period::whole_seconds;
use crate::core::pricing::UsageKind;

/// Collects the errors of one record's fields.
pub struct Check<'a> {
    file: &'a str,
    line: usize,
    f: &'a Fields,
    errors: Vec<LineError>,
}

impl<'a> Check<'a> {
    pub fn new(file: &'a str, line: usize, f: &'a Fields) -> Self {
        Check {
            file,
            line,
            f,
            errors: Vec::new(),
        }
    }

    pub fn err(&mut self, field: &str, msg: String) {
        self.errors
            .push(LineError::new(self.file, self.line, field, msg));
    }

    pub fn opt(&self, field: &str) -> Option<String> {
        self.f
            .get(field)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn req(&mut self, field: &str) -> String {
        match self.opt(field) {
            Some(v) => v,
            None => {
                self.err(field, "is empty".into());
                String::new()
            }
        }
    }

    /// A required text field: see `check_text`.
    pub fn text(&mut self, field: &str, max_chars: usize) -> String {
        let v = self.req(field);
        if !v.is_empty() {
            self.check_text(field, &v, max_chars);
        }
        v
    }

    /// An optional text field: see `check_text`.
    pub fn opt_text(&mut self, field: &str, max_chars: usize) -> Option<String> {
        let v = self.opt(field);
        if let Some(v) = &v {
            self.check_text(field, v, max_chars);
        }
        v
    }

    /// At most `max_chars` characters, on one line (a CR or LF would print as two lines on
    /// the PDF and in emails), without other control characters. False if refused.
    pub fn check_text(&mut self, field: &str, v: &str, max_chars: usize) -> bool {
        let n = v.chars().count();
        if n > max_chars {
            self.err(
                field,
                format!("`{}` is longer than {max_chars} characters", excerpt(v)),
            );
            return false;
        }
        if v.contains(['\r', '\n']) {
            self.err(
                field,
                format!(
                    "`{}` contains a line break (CR or LF): it must be one line",
                    excerpt(v)
                ),
            );
            return false;
        }
        if v.chars().any(char::is_control) {
            self.err(
                field,
                format!("`{}` contains a control character", excerpt(v)),
            );
            return false;
        }
        true
    }

    /// An id, or a reference to one: letters, digits, `-`, `_`, `.`; at most `MAX_ID_CHARS`.
    pub fn id(&mut self, field: &str) -> String {
        let v = self.req(field);
        if v.is_empty() {
            return v;
        }
        if v.chars().count() > bounds::MAX_ID_CHARS {
            self.err(
                field,
                format!(
                    "`{}` is longer than {} characters",
                    excerpt(&v),
                    bounds::MAX_ID_CHARS
                ),
            );
        } else if !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.err(
                field,
                format!(
                    "`{}` is not an id (letters, digits, `-`, `_`, `.`)",
                    excerpt(&v)
                ),
            );
        }
        v
    }

    /// A reference to a stored record (an `id`): refused unless `known` holds it.
    pub fn reference(&mut self, field: &str, what: &str, known: &HashSet<String>) -> String {
        let v = self.id(field);
        if !v.is_empty() && !known.contains(&v) {
            self.err(field, format!("unknown {what} `{}`", excerpt(&v)));
        }
        v
    }

    /// A required time (see `time`): `None` when empty or refused.
    pub fn req_time(&mut self, field: &str) -> Option<DateTime<Utc>> {
        let v = self.req(field);
        if v.is_empty() {
            None
        } else {
            self.time(field, &v)
        }
    }

    /// An RFC 3339 time in the years `MIN_YEAR` to `MAX_YEAR`.
    pub fn time(&mut self, field: &str, v: &str) -> Option<DateTime<Utc>> {
        match DateTime::parse_from_rfc3339(v) {
            Ok(t) if !(bounds::MIN_YEAR..=bounds::MAX_YEAR).contains(&t.year()) => {
                self.err(
                    field,
                    format!(
                        "`{}` is outside the years {} to {}",
                        excerpt(v),
                        bounds::MIN_YEAR,
                        bounds::MAX_YEAR
                    ),
                );
                None
            }
            Ok(t) => Some(whole_seconds(t.with_timezone(&Utc))),
            Err(e) => {
                self.err(
                    field,
                    format!("`{}` is not an RFC 3339 time ({e})", excerpt(v)),
                );
                None
            }
        }
    }

    /// A price or cap in EUR: not negative, within `bounds::price_problem`.
    pub fn price(&mut self, field: &str, v: &str) -> Option<Decimal> {
        match Decimal::from_str(v) {
            Ok(d) if d.is_sign_negative() && !d.is_zero() => {
                self.err(field, format!("`{}` is negative", excerpt(v)));
                None
            }
            Ok(d) => match bounds::price_problem(d) {
                Some(why) => {
                    self.err(field, format!("`{}` {why}", excerpt(v)));
                    None
                }
                None => Some(d.normalize()),
            },
            Err(_) => {
                self.err(field, format!("`{}` is not a decimal number", excerpt(v)));
                None
            }
        }
    }

    pub fn kind(&mut self) -> Option<UsageKind> {
        let raw = self.req("kind");
        let kind = UsageKind::parse(&raw);
        if kind.is_none() && !raw.is_empty() {
            self.err(
                "kind",
                format!("`{}` is not a kind: container or addon", excerpt(&raw)),
            );
        }
        kind
    }

    pub fn done<T>(self, value: Option<T>) -> Result<T, Vec<LineError>> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(self.errors),
        }
    }
}
