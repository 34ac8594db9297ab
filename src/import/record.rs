//! What every import does, whatever the record: read the file, validate each record, store the
//! valid ones (a record already stored is unchanged, or a conflict), count, and commit all or
//! nothing unless `--skip-invalid`. A record type says only what is its own: [`Record`].

use super::check::Check;
use super::read::{self, Fields, Format};
use super::{ImportKind, ImportReport, LineError, Rejected, StoredRowMissing, invalid_records};
use crate::config::BadInput;
use crate::core::bounds::excerpt;
use crate::store::{Db, Tx};

/// One kind of record an import file holds.
pub trait Record: Sized {
    const KIND: ImportKind;
    /// What one record is called in a message: "account".
    const NAME: &'static str;
    /// The columns (CSV) or keys (NDJSON) a file may name, and those it must.
    const COLUMNS: &'static [&'static str];
    const REQUIRED: &'static [&'static str];

    /// What validating a record needs from the store: the stored records its references may
    /// name, the catalog. Read once per file, before any record is validated.
    type Known;

    async fn known(db: &Db, records: &[(usize, Fields)]) -> anyhow::Result<Self::Known>;

    /// The record in `c`'s fields, or `None` if one is refused (each refusal is in `c`).
    fn parse(c: &mut Check<'_>, known: &Self::Known) -> Option<Self>;

    /// Refuses the valid records that the others of the file make invalid (accounts referring
    /// to an account the file refused). None by default.
    fn refuse_together(
        valid: Vec<(usize, Self)>,
        _known: &Self::Known,
        _file: &str,
        _errors: &mut Vec<LineError>,
    ) -> Vec<(usize, Self)> {
        valid
    }

    /// The key that makes a record the same as a stored one, as a message shows it.
    fn key(&self) -> String;

    /// Stores the record; false if one with the same key is already stored.
    async fn insert(&self, tx: &mut Tx) -> anyhow::Result<bool>;

    /// The stored record with the same key.
    async fn stored(&self, tx: &mut Tx) -> anyhow::Result<Option<Self>>;

    /// The fields a re-import compares with the stored record: `(name, value)`.
    fn compared(&self) -> Vec<(&'static str, String)>;

    /// What importing the record again does to `old`, the stored one: nothing when they are
    /// the same, else a conflict. A record type may allow an update (usage: closing a run).
    async fn reimport(&self, old: &Self, _tx: &mut Tx) -> anyhow::Result<Reimport> {
        Ok(match differences(&old.compared(), &self.compared()) {
            None => Reimport::Unchanged,
            Some(diff) => Reimport::conflict(&self.key(), &diff),
        })
    }

    /// Validates one record's fields: the record, or every error it has.
    fn from_fields(
        file: &str,
        line: usize,
        fields: &Fields,
        known: &Self::Known,
    ) -> Result<Self, Vec<LineError>> {
        let mut c = Check::new(file, line, fields);
        let value = Self::parse(&mut c, known);
        c.done(value)
    }
}

/// What importing a record already stored did.
pub enum Reimport {
    Unchanged,
    Updated,
    /// Refused, for this field.
    Refused {
        field: &'static str,
        message: String,
    },
}

impl Reimport {
    /// The record differs from the stored one with the same key (`diff`: see [`differences`]).
    pub fn conflict(key: &str, diff: &str) -> Reimport {
        Reimport::Refused {
            field: "id",
            message: format!(
                "`{}` was already imported with different content ({diff})",
                excerpt(key)
            ),
        }
    }
}

/// `None` when equal, else a description of each differing field: `name: "a" → "b"`.
pub fn differences(old: &[(&str, String)], new: &[(&str, String)]) -> Option<String> {
    let diffs: Vec<String> = old
        .iter()
        .zip(new)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, b)| format!("{}: {:?} → {:?}", a.0, excerpt(&a.1), excerpt(&b.1)))
        .collect();
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

/// The non-empty values of `field` in `records`, as the parsers read them (trimmed): the
/// references a file makes, to be looked up in the store.
pub fn referenced<'r>(
    records: &'r [(usize, Fields)],
    field: &'r str,
) -> impl Iterator<Item = &'r str> + 'r {
    records
        .iter()
        .filter_map(move |(_, f)| f.get(field))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// Imports `text`, a file of `R` records.
pub async fn import<R: Record>(
    db: &Db,
    file: &str,
    text: &str,
    format: Format,
    skip_invalid: bool,
) -> anyhow::Result<ImportReport> {
    // A file without a usable header has no record to import: refused whatever
    // --skip-invalid says (exit 2).
    let (records, mut errors) = read::read_records(file, text, format, R::COLUMNS, R::REQUIRED)
        .map_err(|e| BadInput(e.to_string()))?;
    let mut report = ImportReport {
        kind: R::KIND,
        file: file.to_string(),
        records: records.len() + invalid_records(&errors),
        inserted: 0,
        updated: 0,
        unchanged: 0,
        rejected: Vec::new(),
        rejected_records: 0,
        committed: false,
    };
    let mut tx = db.begin().await?;
    let known = R::known(db, &records).await?;
    let mut valid = Vec::with_capacity(records.len());
    for (line, fields) in records {
        match R::from_fields(file, line, &fields, &known) {
            Ok(r) => valid.push((line, r)),
            Err(e) => errors.extend(e),
        }
    }
    let valid = R::refuse_together(valid, &known, file, &mut errors);
    for (line, record) in valid {
        if record.insert(&mut tx).await? {
            report.inserted += 1;
            continue;
        }
        // Refused as a duplicate: the stored record is compared with this one. The
        // transaction is dropped (rolled back) on an error.
        let Some(old) = record.stored(&mut tx).await? else {
            return Err(StoredRowMissing {
                file: file.to_string(),
                line,
                record: R::NAME,
                key: excerpt(&record.key()),
            }
            .into());
        };
        match record.reimport(&old, &mut tx).await? {
            Reimport::Unchanged => report.unchanged += 1,
            Reimport::Updated => report.updated += 1,
            Reimport::Refused { field, message } => {
                errors.push(LineError::new(file, line, field, message))
            }
        }
    }
    errors.sort_by_key(|e| e.line);
    report.rejected_records = invalid_records(&errors);
    report.rejected = errors;
    if !report.rejected.is_empty() && !skip_invalid {
        tx.rollback().await?;
        return Err(Rejected {
            file: file.to_string(),
            errors: report.rejected,
        }
        .into());
    }
    tx.commit().await?;
    report.committed = true;
    Ok(report)
}
