//! `billrun import …`: validated, all-or-nothing (unless `--skip-invalid`), idempotent imports.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::config::BadInput;
use crate::core::bounds::{self, MAX_QUOTED_CHARS, excerpt, excerpt_to};
use crate::core::countries::is_iso_country;
use crate::core::ids::{AccountId, AppId};
use crate::core::invoice::Language;
use crate::core::period::whole_seconds;
use crate::core::pricing::{Catalog, PriceEntry, UsageKind, UsageRecord};
use crate::core::vat_number;
use crate::model::{Account, Alias, App, Certificate, Deployment, Domain};
use crate::store::{Db, accounts, catalog};

pub mod read;

use read::{Fields, Format};

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

impl ImportKind {
    fn columns(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            ImportKind::Accounts => (
                &[
                    "id",
                    "email",
                    "name",
                    "company",
                    "address",
                    "country",
                    "vat_number",
                    "language",
                    "created_at",
                    "referred_by",
                ],
                &[
                    "id",
                    "email",
                    "name",
                    "address",
                    "country",
                    "language",
                    "created_at",
                ],
            ),
            ImportKind::Apps => (&["id", "name", "account_id"], &["id", "name", "account_id"]),
            ImportKind::Catalog => (
                &[
                    "kind",
                    "item",
                    "hourly_price",
                    "monthly_cap",
                    "currency",
                    "effective_from",
                ],
                &["kind", "item", "hourly_price", "currency", "effective_from"],
            ),
            ImportKind::Usage => (
                &[
                    "id",
                    "app_id",
                    "kind",
                    "item",
                    "quantity",
                    "started_at",
                    "ended_at",
                ],
                &["id", "app_id", "kind", "item", "quantity", "started_at"],
            ),
            ImportKind::Deployments => (
                &["id", "app_id", "git_ref", "created_at"],
                &["id", "app_id", "git_ref", "created_at"],
            ),
            ImportKind::Aliases => (&["id", "account_id", "name"], &["id", "account_id", "name"]),
            ImportKind::Domains => (&["id", "app_id", "name"], &["id", "app_id", "name"]),
            ImportKind::Certificates => (
                &["id", "domain_id", "issuer", "expires_at"],
                &["id", "domain_id", "issuer", "expires_at"],
            ),
        }
    }
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
pub fn invalid_records(errors: &[LineError]) -> usize {
    let lines: HashSet<usize> = errors.iter().map(|e| e.line).collect();
    lines.len()
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
    let (columns, required) = kind.columns();
    // A file without a usable header has no record to import: refused whatever
    // --skip-invalid says (exit 2).
    let (records, mut errors) = read::read_records(file, text, format, columns, required)
        .map_err(|e| BadInput(e.to_string()))?;
    let mut report = ImportReport {
        kind,
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
    match kind {
        ImportKind::Accounts => {
            let mut valid = Vec::new();
            for (line, f) in &records {
                match parse_account(file, *line, f) {
                    Ok(a) => valid.push((*line, a)),
                    Err(e) => errors.extend(e),
                }
            }
            // A referral must point to an account already stored or valid in this file;
            // rejecting one account may reject those it referred, so repeat until stable.
            let known =
                accounts::existing_account_ids(db, referenced(&records, "referred_by")).await?;
            loop {
                let in_file: HashSet<&str> = valid.iter().map(|(_, a)| a.id.as_str()).collect();
                let (keep, drop): (Vec<_>, Vec<_>) = valid.iter().cloned().partition(|(_, a)| {
                    a.referred_by
                        .as_ref()
                        .is_none_or(|r| known.contains(r.as_str()) || in_file.contains(r.as_str()))
                });
                if drop.is_empty() {
                    break;
                }
                for (line, a) in drop {
                    let r = a.referred_by.expect("dropped for its referral");
                    errors.push(LineError::new(
                        file,
                        line,
                        "referred_by",
                        format!("unknown account `{}`", excerpt(r.as_str())),
                    ));
                }
                valid = keep;
            }
            for (line, a) in &valid {
                if accounts::insert_account(&mut tx, a).await? {
                    report.inserted += 1;
                    continue;
                }
                let existing = accounts::get_account_tx(&mut tx, a.id.as_str())
                    .await?
                    .expect("conflicting row exists");
                let existing = existing.to_account()?;
                match differences(
                    &existing_account_fields(&existing),
                    &existing_account_fields(a),
                ) {
                    None => report.unchanged += 1,
                    Some(diff) => errors.push(conflict(file, *line, a.id.as_str(), &diff)),
                }
            }
        }
        ImportKind::Apps => {
            let known_accounts =
                accounts::existing_account_ids(db, referenced(&records, "account_id")).await?;
            for (line, f) in &records {
                let app = match parse_app(file, *line, f, &known_accounts) {
                    Ok(a) => a,
                    Err(e) => {
                        errors.extend(e);
                        continue;
                    }
                };
                if accounts::insert_app(&mut tx, &app).await? {
                    report.inserted += 1;
                    continue;
                }
                let existing = accounts::get_app_tx(&mut tx, app.id.as_str())
                    .await?
                    .expect("conflicting row exists")
                    .to_app();
                let a = vec![
                    ("name", existing.name.clone()),
                    ("account_id", existing.account_id.to_string()),
                ];
                let b = vec![
                    ("name", app.name.clone()),
                    ("account_id", app.account_id.to_string()),
                ];
                match differences(&a, &b) {
                    None => report.unchanged += 1,
                    Some(diff) => errors.push(conflict(file, *line, app.id.as_str(), &diff)),
                }
            }
        }
        ImportKind::Catalog => {
            for (line, f) in &records {
                let p = match parse_price(file, *line, f) {
                    Ok(p) => p,
                    Err(e) => {
                        errors.extend(e);
                        continue;
                    }
                };
                if catalog::insert_price(&mut tx, &p).await? {
                    report.inserted += 1;
                    continue;
                }
                let existing = catalog::get_price_tx(&mut tx, p.kind, &p.item, p.effective_from)
                    .await?
                    .expect("conflicting row exists")
                    .to_entry()?;
                let fields = |e: &PriceEntry| {
                    vec![
                        ("hourly_price", e.hourly_price.normalize().to_string()),
                        (
                            "monthly_cap",
                            e.monthly_cap
                                .map(|c| c.normalize().to_string())
                                .unwrap_or_default(),
                        ),
                    ]
                };
                match differences(&fields(&existing), &fields(&p)) {
                    None => report.unchanged += 1,
                    Some(diff) => {
                        let key = format!("{} {} from {}", p.kind, p.item, p.effective_from);
                        errors.push(conflict(file, *line, &key, &diff))
                    }
                }
            }
        }
        ImportKind::Usage => {
            let known_apps = accounts::existing_app_ids(db, referenced(&records, "app_id")).await?;
            let cat = catalog::load_catalog(db).await?;
            for (line, f) in &records {
                let u = match parse_usage(file, *line, f, &known_apps, &cat) {
                    Ok(u) => u,
                    Err(e) => {
                        errors.extend(e);
                        continue;
                    }
                };
                if accounts::insert_usage(&mut tx, &u).await? {
                    report.inserted += 1;
                    continue;
                }
                let existing = accounts::get_usage_tx(&mut tx, &u.id)
                    .await?
                    .expect("conflicting row exists")
                    .to_usage()?;
                match usage_change(&existing, &u) {
                    UsageChange::Same => report.unchanged += 1,
                    UsageChange::Closes(end) => match accounts::invoiced_until_tx(&mut tx, u.app_id.as_str()).await? {
                        Some(until) if end < until => errors.push(LineError::new(
                            file,
                            *line,
                            "ended_at",
                            format!(
                                "usage {} was billed as running until {until} (already invoiced); it cannot end earlier, at {end}",
                                u.id
                            ),
                        )),
                        _ => {
                            accounts::close_usage(&mut tx, &u.id, end).await?;
                            report.updated += 1;
                        }
                    },
                    UsageChange::Differs(diff) => errors.push(conflict(file, *line, &u.id, &diff)),
                }
            }
        }
        ImportKind::Deployments => {
            let known_apps = accounts::existing_app_ids(db, referenced(&records, "app_id")).await?;
            for (line, f) in &records {
                let d = match parse_deployment(file, *line, f, &known_apps) {
                    Ok(d) => d,
                    Err(e) => {
                        errors.extend(e);
                        continue;
                    }
                };
                if accounts::insert_deployment(&mut tx, &d).await? {
                    report.inserted += 1;
                    continue;
                }
                let existing = accounts::get_deployment_tx(&mut tx, &d.id)
                    .await?
                    .expect("conflicting row exists")
                    .to_deployment();
                let fields = |d: &Deployment| {
                    vec![
                        ("app_id", d.app_id.to_string()),
                        ("git_ref", d.git_ref.clone()),
                        ("created_at", d.created_at.to_rfc3339()),
                    ]
                };
                same_or_conflict(
                    &mut report,
                    &mut errors,
                    file,
                    *line,
                    &d.id,
                    &fields(&existing),
                    &fields(&d),
                );
            }
        }
        ImportKind::Aliases => {
            let known_accounts =
                accounts::existing_account_ids(db, referenced(&records, "account_id")).await?;
            for (line, f) in &records {
                let a = match parse_alias(file, *line, f, &known_accounts) {
                    Ok(a) => a,
                    Err(e) => {
                        errors.extend(e);
                        continue;
                    }
                };
                if accounts::insert_alias(&mut tx, &a).await? {
                    report.inserted += 1;
                    continue;
                }
                let existing = accounts::get_alias_tx(&mut tx, &a.id)
                    .await?
                    .expect("conflicting row exists")
                    .to_alias();
                let fields = |a: &Alias| {
                    vec![
                        ("account_id", a.account_id.to_string()),
                        ("name", a.name.clone()),
                    ]
                };
                same_or_conflict(
                    &mut report,
                    &mut errors,
                    file,
                    *line,
                    &a.id,
                    &fields(&existing),
                    &fields(&a),
                );
            }
        }
        ImportKind::Domains => {
            let known_apps = accounts::existing_app_ids(db, referenced(&records, "app_id")).await?;
            for (line, f) in &records {
                let d = match parse_domain(file, *line, f, &known_apps) {
                    Ok(d) => d,
                    Err(e) => {
                        errors.extend(e);
                        continue;
                    }
                };
                if accounts::insert_domain(&mut tx, &d).await? {
                    report.inserted += 1;
                    continue;
                }
                let existing = accounts::get_domain_tx(&mut tx, &d.id)
                    .await?
                    .expect("conflicting row exists")
                    .to_domain();
                let fields =
                    |d: &Domain| vec![("app_id", d.app_id.to_string()), ("name", d.name.clone())];
                same_or_conflict(
                    &mut report,
                    &mut errors,
                    file,
                    *line,
                    &d.id,
                    &fields(&existing),
                    &fields(&d),
                );
            }
        }
        ImportKind::Certificates => {
            // The domain must already be stored (import domains first).
            let known_domains =
                accounts::existing_domain_ids(db, referenced(&records, "domain_id")).await?;
            for (line, f) in &records {
                let c = match parse_certificate(file, *line, f, &known_domains) {
                    Ok(c) => c,
                    Err(e) => {
                        errors.extend(e);
                        continue;
                    }
                };
                if accounts::insert_certificate(&mut tx, &c).await? {
                    report.inserted += 1;
                    continue;
                }
                let existing = accounts::get_certificate_tx(&mut tx, &c.id)
                    .await?
                    .expect("conflicting row exists")
                    .to_certificate();
                let fields = |c: &Certificate| {
                    vec![
                        ("domain_id", c.domain_id.clone()),
                        ("issuer", c.issuer.clone()),
                        ("expires_at", c.expires_at.to_rfc3339()),
                    ]
                };
                same_or_conflict(
                    &mut report,
                    &mut errors,
                    file,
                    *line,
                    &c.id,
                    &fields(&existing),
                    &fields(&c),
                );
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

/// The non-empty values of `field` in `records`, as the parsers read them (trimmed): the
/// references a file makes, to be looked up in the store.
fn referenced<'r>(
    records: &'r [(usize, Fields)],
    field: &'r str,
) -> impl Iterator<Item = &'r str> + 'r {
    records
        .iter()
        .filter_map(move |(_, f)| f.get(field))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

fn conflict(file: &str, line: usize, id: &str, diff: &str) -> LineError {
    LineError::new(
        file,
        line,
        "id",
        format!(
            "`{}` was already imported with different content ({diff})",
            excerpt(id)
        ),
    )
}

/// A record whose id was already stored: unchanged when its fields are equal, else a conflict.
fn same_or_conflict(
    report: &mut ImportReport,
    errors: &mut Vec<LineError>,
    file: &str,
    line: usize,
    id: &str,
    old: &[(&str, String)],
    new: &[(&str, String)],
) {
    match differences(old, new) {
        None => report.unchanged += 1,
        Some(diff) => errors.push(conflict(file, line, id, &diff)),
    }
}

fn existing_account_fields(a: &Account) -> Vec<(&'static str, String)> {
    vec![
        ("email", a.email.clone()),
        ("name", a.name.clone()),
        ("company", a.company.clone().unwrap_or_default()),
        ("address", a.address.clone()),
        ("country", a.country.clone()),
        ("vat_number", a.vat_number.clone().unwrap_or_default()),
        ("language", a.language.to_string()),
        ("created_at", a.created_at.to_rfc3339()),
        (
            "referred_by",
            a.referred_by
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default(),
        ),
    ]
}

/// `None` when equal, else a description of each differing field: `name: "a" → "b"`.
fn differences(old: &[(&str, String)], new: &[(&str, String)]) -> Option<String> {
    let diffs: Vec<String> = old
        .iter()
        .zip(new)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, b)| format!("{}: {:?} → {:?}", a.0, excerpt(&a.1), excerpt(&b.1)))
        .collect();
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

enum UsageChange {
    Same,
    /// A still-running record now has an end: the one update a re-import may make.
    Closes(DateTime<Utc>),
    Differs(String),
}

fn usage_change(old: &UsageRecord, new: &UsageRecord) -> UsageChange {
    let fields = |u: &UsageRecord| {
        vec![
            ("app_id", u.app_id.to_string()),
            ("kind", u.kind.to_string()),
            ("item", u.item.clone()),
            ("quantity", u.quantity.to_string()),
            ("started_at", u.started_at.to_rfc3339()),
        ]
    };
    if let Some(diff) = differences(&fields(old), &fields(new)) {
        return UsageChange::Differs(diff);
    }
    match (old.ended_at, new.ended_at) {
        (a, b) if a == b => UsageChange::Same,
        (None, Some(end)) => UsageChange::Closes(end),
        (a, b) => UsageChange::Differs(format!(
            "ended_at: {:?} → {:?}",
            a.map(|t| t.to_rfc3339()).unwrap_or_default(),
            b.map(|t| t.to_rfc3339()).unwrap_or_default()
        )),
    }
}

/// Collects the errors of one record's fields.
struct Check<'a> {
    file: &'a str,
    line: usize,
    f: &'a Fields,
    errors: Vec<LineError>,
}

impl<'a> Check<'a> {
    fn new(file: &'a str, line: usize, f: &'a Fields) -> Self {
        Check {
            file,
            line,
            f,
            errors: Vec::new(),
        }
    }

    fn err(&mut self, field: &str, msg: String) {
        self.errors
            .push(LineError::new(self.file, self.line, field, msg));
    }

    fn opt(&self, field: &str) -> Option<String> {
        self.f
            .get(field)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn req(&mut self, field: &str) -> String {
        match self.opt(field) {
            Some(v) => v,
            None => {
                self.err(field, "is empty".into());
                String::new()
            }
        }
    }

    /// A required text field: see `check_text`.
    fn text(&mut self, field: &str, max_chars: usize) -> String {
        let v = self.req(field);
        if !v.is_empty() {
            self.check_text(field, &v, max_chars);
        }
        v
    }

    /// An optional text field: see `check_text`.
    fn opt_text(&mut self, field: &str, max_chars: usize) -> Option<String> {
        let v = self.opt(field);
        if let Some(v) = &v {
            self.check_text(field, v, max_chars);
        }
        v
    }

    /// At most `max_chars` characters, on one line (a CR or LF would print as two lines on
    /// the PDF and in emails), without other control characters. False if refused.
    fn check_text(&mut self, field: &str, v: &str, max_chars: usize) -> bool {
        let n = v.chars().count();
        if n > max_chars {
            self.err(
                field,
                format!("`{}` is longer than {max_chars} characters", excerpt(v)),
            );
            return false;
        }
        if v.contains(['\r', '\n']) {
            self.err(
                field,
                format!(
                    "`{}` contains a line break (CR or LF): it must be one line",
                    excerpt(v)
                ),
            );
            return false;
        }
        if v.chars().any(char::is_control) {
            self.err(
                field,
                format!("`{}` contains a control character", excerpt(v)),
            );
            return false;
        }
        true
    }

    /// An id, or a reference to one: letters, digits, `-`, `_`, `.`; at most `MAX_ID_CHARS`.
    fn id(&mut self, field: &str) -> String {
        let v = self.req(field);
        if v.is_empty() {
            return v;
        }
        if v.chars().count() > bounds::MAX_ID_CHARS {
            self.err(
                field,
                format!(
                    "`{}` is longer than {} characters",
                    excerpt(&v),
                    bounds::MAX_ID_CHARS
                ),
            );
        } else if !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.err(
                field,
                format!(
                    "`{}` is not an id (letters, digits, `-`, `_`, `.`)",
                    excerpt(&v)
                ),
            );
        }
        v
    }

    /// An RFC 3339 time in the years `MIN_YEAR` to `MAX_YEAR`.
    fn time(&mut self, field: &str, v: &str) -> Option<DateTime<Utc>> {
        match DateTime::parse_from_rfc3339(v) {
            Ok(t) if !(bounds::MIN_YEAR..=bounds::MAX_YEAR).contains(&t.year()) => {
                self.err(
                    field,
                    format!(
                        "`{}` is outside the years {} to {}",
                        excerpt(v),
                        bounds::MIN_YEAR,
                        bounds::MAX_YEAR
                    ),
                );
                None
            }
            Ok(t) => Some(whole_seconds(t.with_timezone(&Utc))),
            Err(e) => {
                self.err(
                    field,
                    format!("`{}` is not an RFC 3339 time ({e})", excerpt(v)),
                );
                None
            }
        }
    }

    /// A price or cap in EUR: not negative, within `bounds::price_problem`.
    fn price(&mut self, field: &str, v: &str) -> Option<Decimal> {
        match Decimal::from_str(v) {
            Ok(d) if d.is_sign_negative() && !d.is_zero() => {
                self.err(field, format!("`{}` is negative", excerpt(v)));
                None
            }
            Ok(d) => match bounds::price_problem(d) {
                Some(why) => {
                    self.err(field, format!("`{}` {why}", excerpt(v)));
                    None
                }
                None => Some(d.normalize()),
            },
            Err(_) => {
                self.err(field, format!("`{}` is not a decimal number", excerpt(v)));
                None
            }
        }
    }

    fn kind(&mut self) -> Option<UsageKind> {
        let raw = self.req("kind");
        let kind = UsageKind::parse(&raw);
        if kind.is_none() && !raw.is_empty() {
            self.err(
                "kind",
                format!("`{}` is not a kind: container or addon", excerpt(&raw)),
            );
        }
        kind
    }

    fn done<T>(self, value: Option<T>) -> Result<T, Vec<LineError>> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(self.errors),
        }
    }
}

fn parse_account(file: &str, line: usize, f: &Fields) -> Result<Account, Vec<LineError>> {
    let mut c = Check::new(file, line, f);
    let id = c.id("id");
    let email = c.req("email");
    if !email.is_empty() && !is_deliverable_address(&email) {
        c.err(
            "email",
            format!("`{}` is not an email address", excerpt(&email)),
        );
    }
    let name = c.text("name", bounds::MAX_NAME_CHARS);
    let company = c.opt_text("company", bounds::MAX_NAME_CHARS);
    let address = c.text("address", bounds::MAX_ADDRESS_CHARS);
    let country = c.req("country");
    if !country.is_empty() && !is_iso_country(&country) {
        c.err(
            "country",
            format!(
                "`{}` is not an ISO 3166 alpha-2 country code (such as FR)",
                excerpt(&country)
            ),
        );
    }
    let vat_number = c
        .opt_text("vat_number", bounds::MAX_VAT_NUMBER_CHARS)
        .map(|v| vat_number::normalize(&v));
    // Format and check digits per member state (core::vat_number); VIES says whether it is
    // registered (the vat-check job).
    if let Some(v) = &vat_number
        && let Err(e) = vat_number::validate(&country, v)
    {
        c.err("vat_number", e.to_string());
    }
    let language = c.req("language");
    let lang = Language::parse(&language);
    if lang.is_none() && !language.is_empty() {
        c.err(
            "language",
            format!("`{}` is not a language: fr or en", excerpt(&language)),
        );
    }
    let created_raw = c.req("created_at");
    let created_at = if created_raw.is_empty() {
        None
    } else {
        c.time("created_at", &created_raw)
    };
    let referred_by = c.opt("referred_by").map(|_| c.id("referred_by"));
    if referred_by.as_deref() == Some(id.as_str()) {
        c.err("referred_by", "an account cannot refer itself".into());
    }
    let value = match (lang, created_at) {
        (Some(language), Some(created_at)) => Some(Account {
            id: AccountId(id),
            email,
            name,
            company,
            address,
            country,
            vat_number,
            language,
            created_at,
            referred_by: referred_by.map(AccountId),
        }),
        _ => None,
    };
    c.done(value)
}

/// An address delivery can send to: lettre's `Address` (the type delivery uses) parses it, and
/// so does its `Mailbox` (how delivery reads the stored address), giving back the address
/// itself; at most `MAX_EMAIL_CHARS` (RFC 5321 §4.5.3.1.3).
fn is_deliverable_address(s: &str) -> bool {
    s.chars().count() <= bounds::MAX_EMAIL_CHARS
        && s.parse::<lettre::Address>().is_ok()
        && s.parse::<lettre::message::Mailbox>()
            .is_ok_and(|m| m.name.is_none() && AsRef::<str>::as_ref(&m.email) == s)
}

fn parse_app(
    file: &str,
    line: usize,
    f: &Fields,
    accounts: &HashSet<String>,
) -> Result<App, Vec<LineError>> {
    let mut c = Check::new(file, line, f);
    let id = c.id("id");
    let name = c.text("name", bounds::MAX_NAME_CHARS);
    let account_id = c.id("account_id");
    if !account_id.is_empty() && !accounts.contains(&account_id) {
        c.err(
            "account_id",
            format!("unknown account `{}`", excerpt(&account_id)),
        );
    }
    c.done(Some(App {
        id: AppId(id),
        name,
        account_id: AccountId(account_id),
    }))
}

fn parse_price(file: &str, line: usize, f: &Fields) -> Result<PriceEntry, Vec<LineError>> {
    let mut c = Check::new(file, line, f);
    let kind = c.kind();
    let item = c.text("item", bounds::MAX_ITEM_CHARS);
    let price_raw = c.req("hourly_price");
    let hourly_price = if price_raw.is_empty() {
        None
    } else {
        c.price("hourly_price", &price_raw)
    };
    let monthly_cap = match c.opt("monthly_cap") {
        Some(v) => c.price("monthly_cap", &v).map(Some),
        None => Some(None),
    };
    let currency = c.req("currency");
    if !currency.is_empty() && currency != "EUR" {
        c.err(
            "currency",
            format!(
                "`{}` is not supported: the catalog is in EUR",
                excerpt(&currency)
            ),
        );
    }
    let from_raw = c.req("effective_from");
    let effective_from = match NaiveDate::parse_from_str(&from_raw, "%Y-%m-%d") {
        Ok(d) if !(bounds::MIN_YEAR..=bounds::MAX_YEAR).contains(&d.year()) => {
            c.err(
                "effective_from",
                format!(
                    "`{from_raw}` is outside the years {} to {}",
                    bounds::MIN_YEAR,
                    bounds::MAX_YEAR
                ),
            );
            None
        }
        Ok(d) => Some(d),
        Err(_) if from_raw.is_empty() => None,
        Err(_) => {
            c.err(
                "effective_from",
                format!("`{}` is not a date (YYYY-MM-DD)", excerpt(&from_raw)),
            );
            None
        }
    };
    let value = match (kind, hourly_price, monthly_cap, effective_from) {
        (Some(kind), Some(hourly_price), Some(monthly_cap), Some(effective_from)) => {
            Some(PriceEntry {
                kind,
                item,
                hourly_price,
                monthly_cap,
                effective_from,
            })
        }
        _ => None,
    };
    c.done(value)
}

fn parse_usage(
    file: &str,
    line: usize,
    f: &Fields,
    apps: &HashSet<String>,
    cat: &Catalog,
) -> Result<UsageRecord, Vec<LineError>> {
    let mut c = Check::new(file, line, f);
    let id = c.id("id");
    let app_id = c.id("app_id");
    if !app_id.is_empty() && !apps.contains(&app_id) {
        c.err("app_id", format!("unknown app `{}`", excerpt(&app_id)));
    }
    let kind = c.kind();
    let item = c.text("item", bounds::MAX_ITEM_CHARS);
    let quantity_raw = c.req("quantity");
    let quantity = match quantity_raw.parse::<i64>() {
        Ok(q) if q < 0 => {
            c.err("quantity", format!("`{q}` is negative"));
            None
        }
        Ok(q) if q > bounds::MAX_QUANTITY => {
            c.err(
                "quantity",
                format!(
                    "`{q}` is above the maximum of {} at once",
                    bounds::MAX_QUANTITY
                ),
            );
            None
        }
        Ok(q) => Some(q),
        Err(_) if quantity_raw.is_empty() => None,
        Err(_) => {
            c.err(
                "quantity",
                format!(
                    "`{}` is not a whole number of containers (0 to {})",
                    excerpt(&quantity_raw),
                    bounds::MAX_QUANTITY
                ),
            );
            None
        }
    };
    let start_raw = c.req("started_at");
    let started_at = if start_raw.is_empty() {
        None
    } else {
        c.time("started_at", &start_raw)
    };
    let ended_at = match c.opt("ended_at") {
        Some(v) => c.time("ended_at", &v).map(Some),
        None => Some(None),
    };
    if let (Some(s), Some(Some(e))) = (started_at, ended_at)
        && e <= s
    {
        c.err(
            "ended_at",
            format!(
                "ends at {}, not after its start at {}",
                e.to_rfc3339(),
                s.to_rfc3339()
            ),
        );
    }
    if let (Some(k), Some(s)) = (kind, started_at)
        && !item.is_empty()
    {
        if !cat.knows(k, &item) {
            c.err(
                "item",
                format!("unknown {k} `{}`: not in the catalog", excerpt(&item)),
            );
        } else if cat.price_at(k, &item, s).is_none() {
            c.err(
                "item",
                format!(
                    "no price for {k} `{}` in force at {}",
                    excerpt(&item),
                    s.to_rfc3339()
                ),
            );
        }
    }
    let value = match (kind, quantity, started_at, ended_at) {
        (Some(kind), Some(quantity), Some(started_at), Some(ended_at)) => Some(UsageRecord {
            id,
            app_id: AppId(app_id),
            kind,
            item,
            quantity,
            started_at,
            ended_at,
        }),
        _ => None,
    };
    c.done(value)
}

fn parse_deployment(
    file: &str,
    line: usize,
    f: &Fields,
    apps: &HashSet<String>,
) -> Result<Deployment, Vec<LineError>> {
    let mut c = Check::new(file, line, f);
    let id = c.id("id");
    let app_id = c.id("app_id");
    if !app_id.is_empty() && !apps.contains(&app_id) {
        c.err("app_id", format!("unknown app `{}`", excerpt(&app_id)));
    }
    let git_ref = c.text("git_ref", bounds::MAX_REFERENCE_CHARS);
    let created_raw = c.req("created_at");
    let created_at = if created_raw.is_empty() {
        None
    } else {
        c.time("created_at", &created_raw)
    };
    let value = created_at.map(|created_at| Deployment {
        id,
        app_id: AppId(app_id),
        git_ref,
        created_at,
    });
    c.done(value)
}

fn parse_alias(
    file: &str,
    line: usize,
    f: &Fields,
    accounts: &HashSet<String>,
) -> Result<Alias, Vec<LineError>> {
    let mut c = Check::new(file, line, f);
    let id = c.id("id");
    let account_id = c.id("account_id");
    if !account_id.is_empty() && !accounts.contains(&account_id) {
        c.err(
            "account_id",
            format!("unknown account `{}`", excerpt(&account_id)),
        );
    }
    let name = c.text("name", bounds::MAX_NAME_CHARS);
    c.done(Some(Alias {
        id,
        account_id: AccountId(account_id),
        name,
    }))
}

fn parse_domain(
    file: &str,
    line: usize,
    f: &Fields,
    apps: &HashSet<String>,
) -> Result<Domain, Vec<LineError>> {
    let mut c = Check::new(file, line, f);
    let id = c.id("id");
    let app_id = c.id("app_id");
    if !app_id.is_empty() && !apps.contains(&app_id) {
        c.err("app_id", format!("unknown app `{}`", excerpt(&app_id)));
    }
    let name = c.req("name");
    if !name.is_empty()
        && let Some(why) = dns_name_problem(&name)
    {
        c.err(
            "name",
            format!("`{}` is not a DNS name: {why}", excerpt(&name)),
        );
    }
    c.done(Some(Domain {
        id,
        app_id: AppId(app_id),
        name,
    }))
}

/// Why `name` is not a plausible DNS name, if it is not: lowercase letters, digits, `-` and
/// `.` only; no leading or trailing dot, no empty label, no label starting or ending with `-`;
/// at most 63 characters a label and 253 in all.
fn dns_name_problem(name: &str) -> Option<&'static str> {
    if !name
        .chars()
        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.')
    {
        return Some("only lowercase letters, digits, `-` and `.` are allowed");
    }
    if name.starts_with('.') || name.ends_with('.') {
        return Some("it starts or ends with a dot");
    }
    if name.len() > bounds::MAX_DNS_NAME_CHARS {
        return Some("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Some("it has an empty label (`..`)");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("a label starts or ends with `-`");
        }
        if label.len() > 63 {
            return Some("a label is longer than 63 characters");
        }
    }
    None
}

fn parse_certificate(
    file: &str,
    line: usize,
    f: &Fields,
    domains: &HashSet<String>,
) -> Result<Certificate, Vec<LineError>> {
    let mut c = Check::new(file, line, f);
    let id = c.id("id");
    let domain_id = c.id("domain_id");
    if !domain_id.is_empty() && !domains.contains(&domain_id) {
        c.err(
            "domain_id",
            format!("unknown domain `{}`", excerpt(&domain_id)),
        );
    }
    let issuer = c.text("issuer", bounds::MAX_NAME_CHARS);
    let expires_raw = c.req("expires_at");
    let expires_at = if expires_raw.is_empty() {
        None
    } else {
        c.time("expires_at", &expires_raw)
    };
    let value = expires_at.map(|expires_at| Certificate {
        id,
        domain_id,
        issuer,
        expires_at,
    });
    c.done(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn account(over: &[(&str, &str)]) -> Result<Account, Vec<LineError>> {
        let mut f = fields(&[
            ("id", "acc-1"),
            ("email", "alice@example.com"),
            ("name", "Alice Martin"),
            ("address", "1 rue de la Paix, 75002 Paris"),
            ("country", "FR"),
            ("language", "fr"),
            ("created_at", "2026-01-01T00:00:00Z"),
        ]);
        f.extend(fields(over));
        parse_account("a.csv", 3, &f)
    }

    fn errors_of<T: std::fmt::Debug>(r: Result<T, Vec<LineError>>) -> Vec<String> {
        r.unwrap_err().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn emails_are_checked_with_lettres_address_parser() {
        assert!(account(&[]).is_ok());
        for ok in ["a.b+c@example.com", "x@sub.example.fr"] {
            assert!(account(&[("email", ok)]).is_ok(), "{ok}");
        }
        for bad in [
            "a@@example.com",
            "\"a,b\"@example.com",
            "x<y>@example.com",
            "Alice <alice@example.com>",
            "a b@example.com",
            "no-at-sign",
            "a@",
        ] {
            let e = errors_of(account(&[("email", bad)]));
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
            assert!(e[0].starts_with("a.csv:3: email: `"), "{bad}: {e:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(account(&[("email", &long)]).is_err());
    }

    #[test]
    fn names_and_addresses_with_a_line_break_are_refused() {
        for field in ["name", "address", "company"] {
            for v in [
                "Alice\nMartin",
                "1 rue X\r\n75002 Paris",
                "a\rb",
                "tab\there",
            ] {
                let e = errors_of(account(&[(field, v)]));
                assert_eq!(e.len(), 1, "{field} {v:?}: {e:?}");
                assert!(e[0].starts_with(&format!("a.csv:3: {field}: `")), "{e:?}");
                assert!(
                    !e[0].contains('\n') && !e[0].contains('\r'),
                    "one line: {e:?}"
                );
            }
        }
        let app = parse_app(
            "apps.csv",
            2,
            &fields(&[
                ("id", "app-1"),
                ("name", "web\nworker"),
                ("account_id", "acc-1"),
            ]),
            &HashSet::from(["acc-1".to_string()]),
        );
        assert_eq!(
            errors_of(app),
            vec![
                "apps.csv:2: name: `web\\nworker` contains a line break (CR or LF): it must be one line"
            ]
        );
    }

    #[test]
    fn every_text_field_has_a_maximum_length() {
        let cases: [(&str, usize); 5] = [
            ("id", bounds::MAX_ID_CHARS),
            ("name", bounds::MAX_NAME_CHARS),
            ("company", bounds::MAX_NAME_CHARS),
            ("address", bounds::MAX_ADDRESS_CHARS),
            ("vat_number", bounds::MAX_VAT_NUMBER_CHARS),
        ];
        for (field, max) in cases {
            let (ok, long) = ("é".repeat(max), "é".repeat(max + 1));
            if field != "id" && field != "vat_number" {
                assert!(account(&[(field, &ok)]).is_ok(), "{field} at {max}");
            }
            let e = errors_of(account(&[("country", "US"), (field, &long)]));
            assert!(
                e.iter()
                    .any(|e| e.starts_with(&format!("a.csv:3: {field}: `"))
                        && e.contains(&format!("longer than {max} characters"))),
                "{field}: {e:?}"
            );
        }
        // A 10 MB name is refused and quoted in part.
        let huge = "n".repeat(10_000_000);
        let e = errors_of(account(&[("name", &huge)]));
        assert_eq!(e.len(), 1);
        assert!(e[0].len() < 300, "{}", e[0].len());
        assert!(e[0].contains("… (10000000 characters)"), "{}", &e[0][..200]);
    }

    fn usage(over: &[(&str, &str)]) -> Result<UsageRecord, Vec<LineError>> {
        let mut f = fields(&[
            ("id", "u-1"),
            ("app_id", "app-1"),
            ("kind", "container"),
            ("item", "M"),
            ("quantity", "2"),
            ("started_at", "2026-10-01T00:00:00Z"),
        ]);
        f.extend(fields(over));
        let cat = Catalog::new([PriceEntry {
            kind: UsageKind::Container,
            item: "M".into(),
            hourly_price: Decimal::new(12, 3),
            monthly_cap: None,
            effective_from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        }]);
        parse_usage("u.csv", 4, &f, &HashSet::from(["app-1".to_string()]), &cat)
    }

    fn price(over: &[(&str, &str)]) -> Result<PriceEntry, Vec<LineError>> {
        let mut f = fields(&[
            ("kind", "container"),
            ("item", "M"),
            ("hourly_price", "0.012"),
            ("currency", "EUR"),
            ("effective_from", "2024-01-01"),
        ]);
        f.extend(fields(over));
        parse_price("c.csv", 2, &f)
    }

    #[test]
    fn values_that_cannot_be_billed_are_refused_at_import() {
        assert!(usage(&[]).is_ok());
        assert!(usage(&[("quantity", "10000")]).is_ok());
        for (q, why) in [
            ("10001", "above the maximum of 10000"),
            ("9223372036854775807", "above the maximum"),
            ("9223372036854775808", "not a whole number"),
            ("-1", "negative"),
        ] {
            let e = errors_of(usage(&[("quantity", q)]));
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(
                e[0].starts_with("u.csv:4: quantity: ") && e[0].contains(why),
                "{e:?}"
            );
        }
        for (at, field) in [
            ("1970-01-01T00:00:00Z", "started_at"),
            ("9999-12-31T23:59:59Z", "started_at"),
        ] {
            let e = errors_of(usage(&[(field, at)]));
            assert!(e[0].contains("outside the years 2000 to 2999"), "{e:?}");
        }
        assert!(price(&[]).is_ok());
        assert!(price(&[("hourly_price", "1000000"), ("monthly_cap", "0.000001")]).is_ok());
        for (field, v, why) in [
            (
                "hourly_price",
                "79228162514264337593543950335",
                "above the maximum",
            ),
            ("hourly_price", "1000000.000001", "above the maximum"),
            ("hourly_price", "0.0000001", "more than 6 decimal places"),
            ("monthly_cap", "1e9", "above the maximum"),
            ("monthly_cap", "twelve", "not a decimal number"),
            ("monthly_cap", "99999999999", "above the maximum"),
            (
                "hourly_price",
                "792281625142643375935439503350",
                "not a decimal number",
            ),
        ] {
            let e = errors_of(price(&[(field, v)]));
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(
                e[0].starts_with(&format!("c.csv:2: {field}: ")) && e[0].contains(why),
                "{e:?}"
            );
        }
        let e = errors_of(price(&[("effective_from", "1999-12-31")]));
        assert!(e[0].contains("outside the years"), "{e:?}");
    }

    /// Tokens a fuzzer would try: separators, quotes, line breaks, huge numbers, long text,
    /// control and non-ASCII characters, JSON fragments, and plausible values.
    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just(",".to_string()),
            Just("\"".to_string()),
            Just("\r\n".to_string()),
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("\u{0}".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just(":".to_string()),
            Just("null".to_string()),
            Just("9223372036854775807".to_string()),
            Just("-9223372036854775809".to_string()),
            Just("79228162514264337593543950335".to_string()),
            Just("1e400".to_string()),
            Just("0.0000000000000000000000000001".to_string()),
            Just("2026-10-01T00:00:00Z".to_string()),
            Just("+275760-09-13T00:00:00Z".to_string()),
            Just("2024-01-01".to_string()),
            Just("container".to_string()),
            Just("M".to_string()),
            Just("EUR".to_string()),
            Just("acc-1".to_string()),
            Just("app-1".to_string()),
            Just("a@@example.com".to_string()),
            Just("é🙂".to_string()),
            "[a-z0-9@.\\-]{0,12}",
            "\\PC{0,8}",
            (1usize..600).prop_map(|n| "x".repeat(n)),
        ]
    }

    fn csv_text(columns: &'static [&'static str]) -> impl Strategy<Value = String> {
        let header = prop_oneof![
            Just(columns.join(",")),
            Just(columns.join(",")),
            prop::collection::vec(token(), 0..4).prop_map(|t| t.join(",")),
        ];
        let line = prop::collection::vec(token(), 0..10).prop_map(|t| t.join(","));
        let eol = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
        (header, prop::collection::vec((line, eol), 0..6)).prop_map(|(h, lines)| {
            let mut text = h;
            for (l, e) in lines {
                text.push_str(e);
                text.push_str(&l);
            }
            text
        })
    }

    fn ndjson_text(columns: &'static [&'static str]) -> impl Strategy<Value = String> {
        let key = prop_oneof![
            prop::sample::select(columns.to_vec()).prop_map(str::to_string),
            token(),
        ];
        let value = prop_oneof![
            token().prop_map(|t| serde_json::to_string(&t).unwrap()),
            token(),
            Just("[1,2]".to_string()),
            Just("{\"a\":1}".to_string()),
            Just("true".to_string()),
        ];
        let object = prop::collection::vec((key, value), 0..9).prop_map(|kv| {
            let members: Vec<String> = kv
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::to_string(&k).unwrap()))
                .collect();
            format!("{{{}}}", members.join(","))
        });
        let line = prop_oneof![object.clone(), object, token()];
        let eol = prop_oneof![Just("\n"), Just("\r\n")];
        prop::collection::vec((line, eol), 0..6)
            .prop_map(|lines| lines.into_iter().map(|(l, e)| format!("{l}{e}")).collect())
    }

    const KINDS: [ImportKind; 8] = [
        ImportKind::Accounts,
        ImportKind::Apps,
        ImportKind::Catalog,
        ImportKind::Usage,
        ImportKind::Deployments,
        ImportKind::Aliases,
        ImportKind::Domains,
        ImportKind::Certificates,
    ];

    /// Reads and validates `text` as an import of `kind` would, without a store: no panic; every
    /// refusal is an error naming the file and a line of the file; what is accepted is within
    /// the bounds.
    fn read_and_validate(kind: ImportKind, text: &str, format: read::Format) {
        let file = "fuzz.in";
        let (columns, required) = kind.columns();
        let line_count = text.split('\n').count().max(1);
        let names_a_line = |e: &LineError| {
            assert_eq!(e.file, file);
            assert!(
                (1..=line_count).contains(&e.line),
                "{e} of {line_count} lines"
            );
            assert!(e.to_string().starts_with(&format!("{file}:{}: ", e.line)));
            assert!(
                e.to_string().chars().count() < 1000,
                "{}",
                e.to_string().len()
            );
        };
        let (records, errors) = match read::read_records(file, text, format, columns, required) {
            Ok(r) => r,
            Err(e) => {
                names_a_line(&e);
                return;
            }
        };
        errors.iter().for_each(names_a_line);
        let ids = HashSet::from(["acc-1".to_string(), "app-1".to_string()]);
        let cat = Catalog::new([PriceEntry {
            kind: UsageKind::Container,
            item: "M".into(),
            hourly_price: Decimal::new(12, 3),
            monthly_cap: None,
            effective_from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        }]);
        for (line, f) in &records {
            let refused = |errors: Vec<LineError>| {
                assert!(!errors.is_empty());
                for e in &errors {
                    names_a_line(e);
                    assert_eq!(e.line, *line);
                }
            };
            let one_line = |s: &str| !s.contains(['\r', '\n']);
            match kind {
                ImportKind::Accounts => match parse_account(file, *line, f) {
                    Ok(a) => {
                        assert!(one_line(&a.name) && one_line(&a.address));
                        assert!(a.name.chars().count() <= bounds::MAX_NAME_CHARS);
                        assert!(a.email.parse::<lettre::Address>().is_ok());
                    }
                    Err(e) => refused(e),
                },
                ImportKind::Apps => {
                    if let Err(e) = parse_app(file, *line, f, &ids) {
                        refused(e)
                    }
                }
                ImportKind::Catalog => match parse_price(file, *line, f) {
                    Ok(p) => assert!(bounds::price_problem(p.hourly_price).is_none()),
                    Err(e) => refused(e),
                },
                ImportKind::Usage => match parse_usage(file, *line, f, &ids, &cat) {
                    Ok(u) => assert!((0..=bounds::MAX_QUANTITY).contains(&u.quantity)),
                    Err(e) => refused(e),
                },
                ImportKind::Deployments => {
                    if let Err(e) = parse_deployment(file, *line, f, &ids) {
                        refused(e)
                    }
                }
                ImportKind::Aliases => {
                    if let Err(e) = parse_alias(file, *line, f, &ids) {
                        refused(e)
                    }
                }
                ImportKind::Domains => {
                    if let Err(e) = parse_domain(file, *line, f, &ids) {
                        refused(e)
                    }
                }
                ImportKind::Certificates => {
                    if let Err(e) = parse_certificate(file, *line, f, &ids) {
                        refused(e)
                    }
                }
            }
        }
    }

    proptest! {
        // A bounded run (CI runs it with every `cargo test`): 8 kinds × 2 formats per case.
        #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn fuzzed_csv_imports_never_panic_and_name_file_and_line(
            k in 0usize..8,
            text in (0usize..8).prop_flat_map(|k| csv_text(KINDS[k].columns().0)),
        ) {
            read_and_validate(KINDS[k], &text, read::Format::Csv);
            read_and_validate(KINDS[(k + 3) % 8], &text, read::Format::Csv);
        }

        #[test]
        fn fuzzed_ndjson_imports_never_panic_and_name_file_and_line(
            k in 0usize..8,
            text in (0usize..8).prop_flat_map(|k| ndjson_text(KINDS[k].columns().0)),
        ) {
            read_and_validate(KINDS[k], &text, read::Format::Ndjson);
            read_and_validate(KINDS[(k + 3) % 8], &text, read::Format::Ndjson);
        }
    }

    #[test]
    fn dns_names() {
        for ok in [
            "example.com",
            "www.alice-martin.fr",
            "a1.b2.c3",
            "localhost",
        ] {
            assert_eq!(dns_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "Example.com",
            ".example.com",
            "example.com.",
            "a..b",
            "-a.example.com",
            "a-.example.com",
            "*.example.com",
            "exa mple.com",
            "exa_mple.com",
            "münchen.de",
        ] {
            assert!(dns_name_problem(bad).is_some(), "{bad}");
        }
        assert!(dns_name_problem(&format!("{}.com", "a".repeat(64))).is_some());
    }
}
