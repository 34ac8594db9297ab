//! Invoice PDFs, stored with their SHA-256.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Conn, Tx};
use crate::with_db;

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The PDF bytes sent in one statement at most by [`save_many`] on PostgreSQL.
const STATEMENT_BYTES: usize = 1 << 20;

/// Stores invoices' PDFs in the caller's transaction: the one insert of documents per
/// backend, statements of arrays on PostgreSQL (an array per column) and the connection's own
/// handle on SQLite (see `sqlite_bulk`). An invoice whose PDF is already stored keeps it
/// (`ON CONFLICT DO NOTHING`): a PDF is rendered from the invoice as stored, the same bytes
/// whoever renders it (the documents step, the deliver job) and however often. Returns how
/// many were stored.
pub async fn save_many(tx: &mut Tx, docs: &[(i64, &[u8], DateTime<Utc>)]) -> anyhow::Result<u64> {
    let mut stored = 0;
    let hashes: Vec<String> = docs.iter().map(|(_, pdf, _)| sha256_hex(pdf)).collect();
    match tx {
        Tx::Postgres(t) => {
            // In statements of about a megabyte: a pooled connection keeps its buffers at
            // the size of the largest message it sent, so one statement for a whole page
            // of PDFs left every connection holding several megabytes.
            let mut rest = docs;
            let mut hashes = hashes.as_slice();
            while !rest.is_empty() {
                let mut size = 0;
                let n = rest
                    .iter()
                    .take_while(|d| {
                        size += d.1.len();
                        size <= STATEMENT_BYTES
                    })
                    .count()
                    .max(1);
                let (chunk, after) = rest.split_at(n);
                let (chunk_hashes, hashes_after) = hashes.split_at(n);
                stored += sqlx::query(
                    "INSERT INTO invoice_documents (invoice_id, pdf, sha256, created_at)
                     SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::text[], $4::timestamptz[])
                     ON CONFLICT (invoice_id) DO NOTHING",
                )
                .bind(chunk.iter().map(|d| d.0).collect::<Vec<_>>())
                .bind(chunk.iter().map(|d| d.1).collect::<Vec<_>>())
                .bind(chunk_hashes)
                .bind(chunk.iter().map(|d| d.2).collect::<Vec<_>>())
                .execute(&mut **t)
                .await?
                .rows_affected();
                (rest, hashes) = (after, hashes_after);
            }
        }
        Tx::Sqlite(t) => {
            use super::sqlite_bulk::{Raw, Val};
            let mut handle = t.lock_handle().await?;
            let raw = Raw::new(&mut handle);
            let mut insert = raw.prepare(
                "INSERT INTO invoice_documents (invoice_id, pdf, sha256, created_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (invoice_id) DO NOTHING",
                "storing invoice PDFs",
            )?;
            for ((id, pdf, at), hash) in docs.iter().zip(&hashes) {
                stored += insert.run(&[
                    Val::Int(*id),
                    Val::Blob(pdf),
                    Val::text(hash),
                    Val::time(*at),
                ])?;
            }
        }
    }
    Ok(stored)
}

/// The stored PDF and its SHA-256.
pub async fn get(
    db: impl Into<Conn<'_>>,
    invoice_id: i64,
) -> anyhow::Result<Option<(Vec<u8>, String)>> {
    Ok(
        with_db!(db, p => sqlx::query_as("SELECT pdf, sha256 FROM invoice_documents WHERE invoice_id = $1")
        .bind(invoice_id).fetch_optional(p).await?),
    )
}

/// An invoice's stored PDF and its number, in one round trip: the deliver job's attachment.
pub async fn pdf_with_number(
    db: impl Into<Conn<'_>>,
    invoice_id: i64,
) -> anyhow::Result<Option<(Vec<u8>, String)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT d.pdf, i.number FROM invoice_documents d JOIN invoices i ON i.id = d.invoice_id
         WHERE d.invoice_id = $1")
        .bind(invoice_id).fetch_optional(p).await?))
}

/// Issued invoices without a stored PDF, in id order after `after_id`, of the accounts with
/// ids in `accounts` (inclusive) or of every account: what the documents step renders
/// (`jobs::documents`). Between an invoice's commit and its PDF's, or after a process died
/// in between.
pub async fn missing(
    db: impl Into<Conn<'_>>,
    accounts: Option<(&str, &str)>,
    after_id: i64,
    limit: i64,
) -> anyhow::Result<Vec<super::invoices::InvoiceRow>> {
    // Without a range, the bounds take every account id (ids are non-empty text).
    let (first, last, all) = match accounts {
        Some((first, last)) => (first, last, false),
        None => ("", "", true),
    };
    Ok(
        with_db!(db, p => sqlx::query_as::<_, super::invoices::InvoiceRow>(
        "SELECT i.* FROM invoices i LEFT JOIN invoice_documents d ON d.invoice_id = i.id
         WHERE d.invoice_id IS NULL AND i.id > $1
           AND ($2 OR (i.account_id >= $3 AND i.account_id <= $4))
         ORDER BY i.id LIMIT $5")
        .bind(after_id).bind(all).bind(first).bind(last).bind(limit).fetch_all(p).await?),
    )
}

/// How many issued invoices of the accounts in `accounts` (or of every account) have no
/// stored PDF: what a dry-run of the documents step reports.
pub async fn count_missing(
    db: impl Into<Conn<'_>>,
    accounts: Option<(&str, &str)>,
) -> anyhow::Result<u64> {
    let (first, last, all) = match accounts {
        Some((first, last)) => (first, last, false),
        None => ("", "", true),
    };
    let n: i64 = with_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM invoices i LEFT JOIN invoice_documents d ON d.invoice_id = i.id
         WHERE d.invoice_id IS NULL AND ($1 OR (i.account_id >= $2 AND i.account_id <= $3))")
        .bind(all).bind(first).bind(last).fetch_one(p).await?);
    Ok(n as u64)
}
