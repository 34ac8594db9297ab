//! JSON written as it is produced, byte for byte what `serde_json::to_string_pretty` writes of
//! the whole: an array an item at a time, the invoice list a page at a time, a run's invoices
//! spooled to a file as they are issued.

use serde::Serialize;

use super::invoice::InvoiceView;
use crate::core::document::Invoice;
use crate::store::Db;
use crate::store::invoice_document;
use crate::store::invoices;

/// Writes a JSON array one item at a time, byte for byte as `serde_json::to_string_pretty`
/// writes the whole array (then a newline, as `println!` would): a long list is never held in
/// memory, as values or as text.
pub struct JsonArrayWriter<W: std::io::Write> {
    out: W,
    /// Each line of an item is indented by this (the array's own indentation plus one level).
    indent: String,
    items: usize,
    buf: Vec<u8>,
}

impl<W: std::io::Write> JsonArrayWriter<W> {
    /// An array at the top level.
    pub fn new(out: W) -> JsonArrayWriter<W> {
        JsonArrayWriter::nested(out, 0)
    }

    /// An array whose opening line is at nesting `level` (as the value of a field of a
    /// top-level object: level 1). Writes nothing before its first item: see [`Self::item`].
    pub fn nested(out: W, level: usize) -> JsonArrayWriter<W> {
        JsonArrayWriter {
            out,
            indent: "  ".repeat(level + 1),
            items: 0,
            buf: Vec::new(),
        }
    }

    /// Writes one item (`[` first, before the first one).
    pub fn item<T: Serialize>(&mut self, value: &T) -> anyhow::Result<()> {
        self.buf.clear();
        serde_json::to_writer_pretty(&mut self.buf, value)?;
        self.out
            .write_all(if self.items == 0 { b"[\n" } else { b",\n" })?;
        // JSON strings escape their newlines: every newline here is between lines of the item.
        for (i, line) in self.buf.split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                self.out.write_all(b"\n")?;
            }
            self.out.write_all(self.indent.as_bytes())?;
            self.out.write_all(line)?;
        }
        self.items += 1;
        Ok(())
    }

    /// Closes the array (`[]` when it had no item) and returns the writer.
    pub fn finish(mut self) -> anyhow::Result<W> {
        if self.items == 0 {
            self.out.write_all(b"[]")?;
        } else {
            self.out.write_all(b"\n")?;
            self.out.write_all(&self.indent.as_bytes()[2..])?;
            self.out.write_all(b"]")?;
        }
        Ok(self.out)
    }

    /// How many items were written.
    pub fn len(&self) -> usize {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }
}

/// `billrun invoices list --format json`: the invoices matching `filter`, in number order, read
/// and written `page` at a time (memory flat however many there are); the same bytes as
/// `to_string_pretty` of them all, and a newline.
pub async fn write_invoice_list_json(
    db: &Db,
    filter: &invoices::ListFilter,
    page: i64,
    out: impl std::io::Write,
) -> anyhow::Result<()> {
    let mut json = JsonArrayWriter::new(out);
    let mut after: Option<String> = None;
    loop {
        let rows = invoices::list_page(db, filter, after.as_deref(), page.max(1)).await?;
        for r in &rows {
            json.item(&InvoiceView::of(&invoice_document::load(db, r).await?))?;
        }
        match rows.last() {
            Some(last) if rows.len() as i64 >= page.max(1) => after = Some(last.number.clone()),
            _ => break,
        }
    }
    let mut out = json.finish()?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// The invoices' views of a run, spooled to a temporary file (removed when dropped) as they
/// are issued, already written as the items of the report's `invoices` field: `billrun run
/// invoice --format json` holds none of them in memory (see [`write_run_report_json`]).
pub struct InvoiceSpool {
    state: std::sync::Mutex<SpoolState>,
    path: std::path::PathBuf,
}

struct SpoolState {
    json: Option<JsonArrayWriter<std::io::BufWriter<std::fs::File>>>,
    /// The first write that failed: reported when the report is written.
    error: Option<String>,
}

impl InvoiceSpool {
    pub fn new() -> anyhow::Result<std::sync::Arc<InvoiceSpool>> {
        use anyhow::Context;
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "billrun-invoices-{}-{}.json",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(std::sync::Arc::new(InvoiceSpool {
            state: std::sync::Mutex::new(SpoolState {
                json: Some(JsonArrayWriter::nested(std::io::BufWriter::new(file), 1)),
                error: None,
            }),
            path,
        }))
    }

    /// The sink a run hands its invoices to.
    pub fn sink(self: &std::sync::Arc<Self>) -> crate::jobs::InvoiceSink {
        let spool = self.clone();
        crate::jobs::InvoiceSink(Some(std::sync::Arc::new(move |views| spool.take(views))))
    }

    fn take(&self, invoices: Vec<Invoice>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let SpoolState { json, error } = &mut *state;
        if error.is_some() {
            return;
        }
        let Some(json) = json else {
            *error = Some("invoices came after the report was written".into());
            return;
        };
        for inv in &invoices {
            if let Err(e) = json.item(&InvoiceView::of(inv)) {
                *error = Some(crate::error_text::chain(&e));
                return;
            }
        }
    }
}

impl Drop for InvoiceSpool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes a run's report as pretty JSON and a newline (what `println!` of
/// `to_string_pretty(report)` writes, byte for byte), its invoices first from `spool` (those
/// the run handed over), then those still in the report. Takes the invoices out of `report`.
pub fn write_run_report_json(
    report: &mut crate::jobs::JobReport,
    spool: Option<&InvoiceSpool>,
    mut out: impl std::io::Write,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Seek;
    let Some(spool) = spool else {
        serde_json::to_writer_pretty(&mut out, report)?;
        out.write_all(b"\n")?;
        out.flush()?;
        return Ok(());
    };
    let rest = std::mem::take(&mut report.invoices);
    let text = serde_json::to_string_pretty(report)?;
    // The top-level field, at one level of indentation (a string cannot hold a raw newline).
    const FIELD: &str = "\n  \"invoices\": []";
    let at = text
        .find(FIELD)
        .context("the report has an invoices field")?
        + FIELD.len()
        - 2;
    let mut state = spool.state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = state.error.take() {
        anyhow::bail!("spooling the invoices to {}: {e}", spool.path.display());
    }
    let mut json = state.json.take().context("a spool is written once")?;
    for inv in &rest {
        json.item(&InvoiceView::of(inv))?;
    }
    let mut file = json.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.seek(std::io::SeekFrom::Start(0))?;
    out.write_all(&text.as_bytes()[..at])?;
    std::io::copy(&mut file, &mut out)?;
    out.write_all(&text.as_bytes()[at + 2..])?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<serde_json::Value> {
        vec![
            serde_json::json!({"id": 1, "lines": [{"a": "x\ny", "b": []}], "empty": {}, "n": null}),
            serde_json::json!({"id": 2, "lines": [], "nested": {"deep": [1, 2, {"k": "v"}]}}),
            serde_json::json!("plain"),
        ]
    }

    #[test]
    fn a_streamed_array_is_byte_for_byte_the_pretty_printed_one() {
        for n in 0..=3 {
            let all = &items()[..n];
            let mut w = JsonArrayWriter::new(Vec::new());
            for v in all {
                w.item(v).unwrap();
            }
            assert_eq!(w.len(), n);
            let out = String::from_utf8(w.finish().unwrap()).unwrap();
            assert_eq!(out, serde_json::to_string_pretty(all).unwrap(), "{n} items");
        }
    }

    #[test]
    fn a_streamed_array_nested_in_an_object_is_byte_for_byte_the_pretty_printed_one() {
        for n in 0..=3 {
            let all = &items()[..n];
            let whole = serde_json::json!({"a": 1, "invoices": all, "z": [2]});
            let mut w = JsonArrayWriter::nested(Vec::new(), 1);
            for v in all {
                w.item(v).unwrap();
            }
            let arr = String::from_utf8(w.finish().unwrap()).unwrap();
            let spliced =
                format!("{{\n  \"a\": 1,\n  \"invoices\": {arr},\n  \"z\": [\n    2\n  ]\n}}");
            assert_eq!(
                spliced,
                serde_json::to_string_pretty(&whole).unwrap(),
                "{n} items"
            );
        }
    }
}
