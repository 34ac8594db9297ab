//! Plain text tables: the generic one (a header row and left-aligned columns) and the invoice
//! tables, whole or streamed row by row as a run issues its invoices.

use std::fmt::Write as _;

use super::{amount, dec};
use crate::core::document::Invoice;

/// A plain text table: a header row and left-aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let _ = write!(s, "{c}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(|s| s.as_str()).collect(), &mut out);
    }
    out
}

/// An invoice's cells in the invoice tables, in [`INVOICE_COLUMNS`]' order.
fn invoice_cells(i: &Invoice) -> Vec<String> {
    vec![
        i.number.clone().unwrap_or_else(|| "(draft)".into()),
        i.account_id.to_string(),
        i.period.to_string(),
        i.status.as_str().to_string(),
        amount(i.subtotal),
        amount(i.discount),
        format!("{} ({}%)", amount(i.tax), dec(i.tax_rate)),
        amount(i.total),
        amount(i.amount_due),
    ]
}

/// The invoice tables' columns, with the fixed width each has in a streamed table
/// ([`InvoiceTableStream`]): a number `2026-000042`, an account id as most are, amounts up to
/// 9,999,999.99. A longer cell is written whole and shifts the rest of its row.
pub const INVOICE_COLUMNS: [(&str, usize); 9] = [
    ("NUMBER", 11),
    ("ACCOUNT", 24),
    ("PERIOD", 7),
    ("STATUS", 8),
    ("SUBTOTAL", 10),
    ("DISCOUNT", 10),
    ("VAT", 16),
    ("TOTAL", 10),
    ("DUE", 10),
];

pub fn invoice_table(invoices: &[Invoice]) -> String {
    let rows: Vec<Vec<String>> = invoices.iter().map(invoice_cells).collect();
    table(&INVOICE_COLUMNS.map(|c| c.0), &rows)
}

/// One line of a fixed-width table: each cell padded to its width and two spaces, the last one
/// as it is; no trailing blanks.
fn fixed_line(cells: &[&str], widths: &[usize]) -> String {
    let mut s = String::new();
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            s.push_str(c);
        } else {
            let pad = w.saturating_sub(c.chars().count());
            let _ = write!(s, "{c}{}  ", " ".repeat(pad));
        }
    }
    let mut line = s.trim_end().to_string();
    line.push('\n');
    line
}

/// The invoice table of `billrun run invoice`, written row by row as the run issues the
/// invoices (issue 25 §4: the table format held every invoice until the run ended): fixed
/// column widths ([`INVOICE_COLUMNS`]), the header before the first row, the first `shown`
/// rows, then only a count of the rest ([`InvoiceTableStream::finish`]). Holds no invoice.
pub struct InvoiceTableStream {
    state: std::sync::Mutex<TableState>,
    shown: usize,
}

struct TableState {
    rows: u64,
    /// The first write that failed: reported by [`InvoiceTableStream::finish`].
    error: Option<String>,
}

impl InvoiceTableStream {
    pub fn new(shown: usize) -> InvoiceTableStream {
        InvoiceTableStream {
            state: std::sync::Mutex::new(TableState {
                rows: 0,
                error: None,
            }),
            shown,
        }
    }

    /// Writes the rows of `invoices` (those within the first `shown`) to `out` and flushes it.
    pub fn write(&self, invoices: &[Invoice], out: &mut dyn std::io::Write) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.error.is_some() {
            return;
        }
        let widths = INVOICE_COLUMNS.map(|c| c.1);
        let mut text = String::new();
        for inv in invoices {
            if state.rows == 0 {
                text.push_str(&fixed_line(&INVOICE_COLUMNS.map(|c| c.0), &widths));
            }
            state.rows += 1;
            if state.rows <= self.shown as u64 {
                let cells = invoice_cells(inv);
                let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
                text.push_str(&fixed_line(&cells, &widths));
            }
        }
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            state.error = Some(e.to_string());
        }
    }

    /// After the run: the rows of what the run still held, then how many rows were not shown.
    pub fn finish(&self, rest: &[Invoice], out: &mut dyn std::io::Write) -> anyhow::Result<()> {
        self.write(rest, out);
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &state.error {
            anyhow::bail!("writing the invoice table: {e}");
        }
        if state.rows > self.shown as u64 {
            writeln!(
                out,
                "(and {} more invoices: see them all with --format json or `billrun invoices list`)",
                state.rows - self.shown as u64
            )?;
        }
        Ok(())
    }
}
