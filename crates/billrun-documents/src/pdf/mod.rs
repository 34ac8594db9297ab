//! PDF renderer of the invoices and the credit notes (printpdf 0.12, DejaVu Sans embedded and
//! subset).
//!
//! A pure function module: no I/O, no clock. [`render`] turns an [`Invoice`] (typed: its
//! amounts are `Money`, formatted here by `core::locale`, never parsed) into the bytes of an
//! A4 invoice carrying the mandatory mentions of a French B2B invoice, in French or English.
//! The caller passes the invoice as issued (`Invoice::as_issued`): that is what the PDF shows.
//! [`render_credit_note`] does the same for a [`CreditNote`] (*avoir*), with the same layout,
//! fonts and Factur-X container: both are first [`prepare`]d into one document shape.
//!
//! One concept a file: [`labels`] (the fixed wording per language), [`prepare`] (the rows,
//! totals and sentences, formatted from the invoice), [`fonts`] (the faces and their
//! metrics), [`canvas`] (drawing and measuring text), [`layout`] (where everything goes, page
//! after page), [`programs`] (the embedded font programs), [`serialize`] (the bytes) and
//! [`facturx`] (the Factur-X 1.0 PDF/A-3b container: the CII XML of `crate::cii` embedded,
//! XMP, the sRGB output intent).
//!
//! Determinism: the same input always gives byte-identical output. printpdf draws
//! its font resource names and the trailer `/ID` from a process-global counter,
//! so this module never calls `PdfDocument::add_font` (fonts are registered under
//! fixed ids) and overwrites the trailer `/ID` with a hash of the document's number.
//! The info-dictionary dates are the issue date at 00:00 UTC.

mod canvas;
mod facturx;
mod fonts;
mod labels;
mod layout;
mod prepare;
mod programs;
mod serialize;
#[cfg(test)]
mod tests;

use billrun_core::document::{CreditNote, Invoice, Seller};

pub(crate) use prepare::{credit_note_reason, credit_note_reference, settlement_sentences};

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("embedded font could not be loaded: {0}")]
    Font(String),
    #[error("PDF serialization failed: {0}")]
    Serialize(String),
}

/// Renders the invoice as a PDF document (A4 portrait, one or more pages).
pub fn render(inv: &Invoice, seller: &Seller) -> Result<Vec<u8>, PdfError> {
    let prepared = prepare::Prepared::invoice(inv, seller);
    render_prepared(&prepared, seller, &crate::cii::to_xml(inv, seller))
}

/// Renders the credit note as a PDF document (A4 portrait, one or more pages), a Factur-X
/// embedding [`crate::cii::credit_note_to_xml`].
pub fn render_credit_note(cn: &CreditNote, seller: &Seller) -> Result<Vec<u8>, PdfError> {
    let prepared = prepare::Prepared::credit_note(cn);
    render_prepared(
        &prepared,
        seller,
        &crate::cii::credit_note_to_xml(cn, seller),
    )
}

fn render_prepared(
    prepared: &prepare::Prepared,
    seller: &Seller,
    xml: &str,
) -> Result<Vec<u8>, PdfError> {
    let library = fonts::LIBRARY
        .as_ref()
        .map_err(|e| PdfError::Font(e.clone()))?;
    let fonts = library.for_texts(prepared.all_text(seller));
    let pages = layout::layout(fonts, seller, prepared);
    serialize::serialize(fonts, seller, prepared, pages, xml)
}

/// The PDF's "no discount for early payment" sentence, which the e-invoice repeats (AAB).
pub(crate) fn no_early_discount(lang: billrun_core::locale::Language) -> &'static str {
    labels::labels(lang).no_early_discount
}
