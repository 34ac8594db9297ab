//! The invoice PDF at the edge: [`render`] is `documents::pdf::render` with the context an
//! error needs. The caller passes the invoice as issued (`Invoice::as_issued`).

use anyhow::Context as _;

use super::pdf;
use billrun_core::document::{Invoice, Seller};

/// The PDF of `inv` (the invoice as issued).
pub fn render(inv: &Invoice, seller: &Seller) -> anyhow::Result<Vec<u8>> {
    pdf::render(inv, seller).with_context(|| {
        format!(
            "rendering the PDF of invoice {}",
            inv.number.as_deref().unwrap_or("(draft)")
        )
    })
}
