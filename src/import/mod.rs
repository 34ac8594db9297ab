//! `billrun import …`: validated, all-or-nothing (unless `--skip-invalid`), idempotent imports.
//!
//! `read` reads a file's records (CSV or NDJSON), `check` validates fields, `record` runs an
//! import of any kind of record; each kind is a [`record::Record`] in a file of its own.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::config::BadInput;
use crate::core::bounds::{MAX_QUOTED_CHARS, excerpt, excerpt_to};
use crate::core::pricing::{PriceEntry, UsageRecord};
use crate::model::{Account, Alias, App, Certificate, Deployment, Domain};
use crate::store::Db;

mod accounts;
mod aliases;
mod apps;
mod catalog;
mod certificates;
mod check;
mod deployments;
mod domains;
pub mod read;
mod record;
mod usage;

use read::Format;

/// One rejected record: file, line, field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl LineError {
    /// The field's name is quoted in part when long (a 10 MB key in a file), and so is a
    /// message (each bad value in it already is: `excerpt`).
    pub fn new(file: &str, line: usize, field: &str, message: String) -> LineError {
        LineError {
            file: file.to_string(),
            line,
            field: excerpt(field),
            message: excerpt_to(&message, 4 * MAX_QUOTED_CHARS),
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.field, self.message
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ImportKind {
    Accounts,
    Apps,
    Catalog,
    Usage,
    Deployments,
    Aliases,
    Domains,
    Certificates,
}

/// Evaluates `$body` with `$R` the [`Record`] type of `$kind`.
macro_rules! with_record {
    ($kind:expr, $R:ident => $body:expr) => {
        match $kind {
            ImportKind::Accounts => {
                type $R = Account;
                $body
            }
            ImportKind::Apps => {
                type $R = App;
                $body
            }
            ImportKind::Catalog => {
                type $R = PriceEntry;
                $body
            }
            ImportKind::Usage => {
                type $R = UsageRecord;
                $body
            }
            ImportKind::Deployments => {
                type $R = Deployment;
                $body
            }
            ImportKind::Aliases => {
                type $R = Alias;
                $body
            }
            ImportKind::Domains => {
                type $R = Domain;
                $body
            }
            ImportKind::Certificates => {
                type $R = Certificate;
                $body
            }
        }
    };
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub kind: ImportKind,
    pub file: String,
    pub records: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Every error, in line order; a record with two bad fields has two.
    pub rejected: Vec<LineError>,
    /// Records rejected (each line named in `rejected` once).
    pub rejected_records: usize,
    /// False when errors made the whole file import nothing.
    pub committed: bool,
}

/// The file was read but holds invalid records, and nothing was imported.
#[derive(Debug, thiserror::Error)]
#[error(
    "{file}: {} invalid record(s); nothing imported (use --skip-invalid to import the rest)",
    invalid_records(errors)
)]
pub struct Rejected {
    pub file: String,
    /// Every error: a record may have several (one per bad field).
    pub errors: Vec<LineError>,
}

/// The number of records `errors` reject: one per line named, however many fields are bad.
/// The columns a file of `kind` has, in the order `billrun import` documents (the bench writes
/// its CSV with these).
pub fn columns(kind: ImportKind) -> &'static [&'static str] {
    with_record!(kind, R => <R as record::Record>::COLUMNS)
}

pub fn invalid_records(errors: &[LineError]) -> usize {
    let lines: HashSet<usize> = errors.iter().map(|e| e.line).collect();
    lines.len()
}

/// The store refused a record as a duplicate of a stored one, but holds none with its key:
/// the store changed under the import (nothing is imported).
#[derive(Debug, thiserror::Error)]
#[error(
    "{file}:{line}: the store refused {record} `{key}` as already stored, but holds no {record} `{key}` (did it change during the import?); nothing imported"
)]
pub struct StoredRowMissing {
    pub file: String,
    pub line: usize,
    pub record: &'static str,
    /// Quoted in part when long (`excerpt`).
    pub key: String,
}

/// Imports a file into the store.
pub async fn import_file(
    db: &Db,
    kind: ImportKind,
    path: &Path,
    skip_invalid: bool,
) -> anyhow::Result<ImportReport> {
    let file = path.display().to_string();
    let format = Format::from_path(path).map_err(BadInput)?;
    let text =
        std::fs::read_to_string(path).map_err(|e| BadInput(format!("{file}: cannot read: {e}")))?;
    import_text(db, kind, &file, &text, format, skip_invalid).await
}

pub async fn import_text(
    db: &Db,
    kind: ImportKind,
    file: &str,
    text: &str,
    format: Format,
    skip_invalid: bool,
) -> anyhow::Result<ImportReport> {
    with_record!(kind, R => record::import::<R>(db, file, text, format, skip_invalid).await)
}

#[cfg(test)]
mod tests;
