//! The credit note PDF at the edge: [`render`] is `documents::pdf::render_credit_note` with
//! the context an error needs. A Factur-X 1.0 PDF/A-3b like the invoices' (the same layout,
//! fonts and container), titled "Avoir" / "Credit note", embedding
//! [`crate::cii::credit_note_to_xml`].

use anyhow::Context as _;

use super::pdf;
use billrun_core::document::{CreditNote, Seller};

/// The PDF of `cn`, as issued. Deterministic: the same credit note gives the same bytes.
pub fn render(cn: &CreditNote, seller: &Seller) -> anyhow::Result<Vec<u8>> {
    pdf::render_credit_note(cn, seller).with_context(|| {
        format!(
            "rendering the PDF of credit note {} (invoice {})",
            cn.number.as_deref().unwrap_or("(draft)"),
            cn.invoice_number
        )
    })
}
