pub mod email;
pub mod invoice_pdf;
pub mod pdf;
