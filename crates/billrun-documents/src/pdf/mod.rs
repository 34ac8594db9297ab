//! PDF invoice renderer (printpdf 0.12, DejaVu Sans embedded and subset).
//!
//! A pure function module: no I/O, no clock. [`render`] turns an [`Invoice`] (typed: its
//! amounts are `Money`, formatted here by `core::locale`, never parsed) into the bytes of an
//! A4 invoice carrying the mandatory mentions of a French B2B invoice, in French or English.
//! The caller passes the invoice as issued (`Invoice::as_issued`): that is what the PDF shows.
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
//! fixed ids) and overwrites the trailer `/ID` with a hash of the invoice number.
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

use billrun_core::document::{Invoice, Seller};

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("embedded font could not be loaded: {0}")]
    Font(String),
    #[error("PDF serialization failed: {0}")]
    Serialize(String),
}

/// Renders the invoice as a PDF document (A4 portrait, one or more pages).
pub fn render(inv: &Invoice, seller: &Seller) -> Result<Vec<u8>, PdfError> {
    let library = fonts::LIBRARY
        .as_ref()
        .map_err(|e| PdfError::Font(e.clone()))?;
    let prepared = prepare::Prepared::new(inv);
    let fonts = library.for_texts(prepared.all_text(inv, seller));
    let pages = layout::layout(fonts, inv, seller, &prepared);
    serialize::serialize(fonts, inv, seller, &prepared, pages)
}

/// The PDF's "no discount for early payment" sentence, which the e-invoice repeats (AAB).
pub(crate) fn no_early_discount(lang: billrun_core::locale::Language) -> &'static str {
    labels::labels(lang).no_early_discount
}
