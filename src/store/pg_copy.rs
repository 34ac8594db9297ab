//! Rows sent to PostgreSQL with `COPY … FROM STDIN` in its text format: the cheapest way in
//! for the invoice lines, the invoice job's largest write (no arrays to build and decode,
//! rows inserted in batches by the server).

use std::fmt::Write;

use rust_decimal::Decimal;
use sqlx::PgConnection;

/// Rows in COPY's text format: fields separated by tabs, rows ended by newlines, `\N` for
/// NULL, and backslash, tab, newline and carriage return escaped inside text.
pub(crate) struct CopyRows {
    data: String,
    /// Whether the next field starts a row (no tab before it).
    row_start: bool,
}

impl CopyRows {
    pub(crate) fn with_capacity(bytes: usize) -> CopyRows {
        CopyRows {
            data: String::with_capacity(bytes),
            row_start: true,
        }
    }

    fn field(&mut self) {
        if !self.row_start {
            self.data.push('\t');
        }
        self.row_start = false;
    }

    pub(crate) fn text(&mut self, s: &str) -> &mut Self {
        self.field();
        if !s.contains(['\\', '\t', '\n', '\r']) {
            self.data.push_str(s);
            return self;
        }
        for ch in s.chars() {
            match ch {
                '\\' => self.data.push_str("\\\\"),
                '\t' => self.data.push_str("\\t"),
                '\n' => self.data.push_str("\\n"),
                '\r' => self.data.push_str("\\r"),
                c => self.data.push(c),
            }
        }
        self
    }

    pub(crate) fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    pub(crate) fn null(&mut self) -> &mut Self {
        self.field();
        self.data.push_str("\\N");
        self
    }

    pub(crate) fn int(&mut self, i: i64) -> &mut Self {
        self.field();
        let _ = write!(self.data, "{i}");
        self
    }

    /// Exact: the decimal's own digits, which the column's scale then rounds as a bound
    /// `NUMERIC` would be.
    pub(crate) fn decimal(&mut self, d: Decimal) -> &mut Self {
        self.field();
        let _ = write!(self.data, "{}", d.normalize());
        self
    }

    pub(crate) fn end_row(&mut self) {
        self.data.push('\n');
        self.row_start = true;
    }

    /// Sends the rows with `statement` (a `COPY table (columns) FROM STDIN`), in the
    /// connection's transaction; returns the rows PostgreSQL wrote.
    pub(crate) async fn send(self, c: &mut PgConnection, statement: &str) -> sqlx::Result<u64> {
        debug_assert!(self.row_start, "a row was left unfinished");
        let mut copy = c.copy_in_raw(statement).await?;
        if let Err(e) = copy.send(self.data.into_bytes()).await {
            copy.abort("billrun: sending rows failed").await.ok();
            return Err(e);
        }
        copy.finish().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_escaped_and_separated() {
        let mut rows = CopyRows::with_capacity(64);
        rows.int(-7)
            .text("a\tb\\c\nd\re")
            .opt_text(None)
            .decimal(Decimal::new(12_500, 3))
            .end_row();
        rows.text("plain").null().end_row();
        assert_eq!(rows.data, "-7\ta\\tb\\\\c\\nd\\re\t\\N\t12.5\nplain\t\\N\n");
    }
}
