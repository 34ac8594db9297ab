//! `billrun import …`: validated, all-or-nothing (unless `--skip-invalid`), idempotent imports.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::config::BadInput;
use crate::core::countries::{is_eu_member, is_iso_country, vat_prefix};
use crate::core::ids::{AccountId, AppId};
use crate::core::invoice::Language;
use crate::core::period::whole_seconds;
use crate::core::pricing::{Catalog, PriceEntry, UsageKind, UsageRecord};
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
    pub fn new(file: &str, line: usize, field: &str, message: String) -> LineError {
        LineError {
            file: file.to_string(),
            line,
            field: field.to_string(),
            message,
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
    pub rejected: Vec<LineError>,
    /// False when errors made the whole file import nothing.
    pub committed: bool,
}

/// The file was read but holds invalid records, and nothing was imported.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {} invalid record(s); nothing imported (use --skip-invalid to import the rest)", errors.len())]
pub struct Rejected {
    pub file: String,
    pub errors: Vec<LineError>,
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
    let (records, mut errors) = read::read_records(file, text, format, columns, required);
    let mut report = ImportReport {
        kind,
        file: file.to_string(),
        records: records.len() + errors.len(),
        inserted: 0,
        updated: 0,
        unchanged: 0,
        rejected: Vec::new(),
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
                        format!("unknown account `{r}`"),
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
        format!("`{id}` was already imported with different content ({diff})"),
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
        .map(|(a, b)| format!("{}: {:?} → {:?}", a.0, a.1, b.1))
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

    fn id(&mut self, field: &str) -> String {
        let v = self.req(field);
        if !v.is_empty()
            && !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.err(
                field,
                format!("`{v}` is not an id (letters, digits, `-`, `_`, `.`)"),
            );
        }
        v
    }

    fn time(&mut self, field: &str, v: &str) -> Option<DateTime<Utc>> {
        match DateTime::parse_from_rfc3339(v) {
            Ok(t) => Some(whole_seconds(t.with_timezone(&Utc))),
            Err(e) => {
                self.err(field, format!("`{v}` is not an RFC 3339 time ({e})"));
                None
            }
        }
    }

    fn decimal(&mut self, field: &str, v: &str) -> Option<Decimal> {
        match Decimal::from_str(v) {
            Ok(d) if d.is_sign_negative() && !d.is_zero() => {
                self.err(field, format!("`{v}` is negative"));
                None
            }
            Ok(d) => Some(d.normalize()),
            Err(_) => {
                self.err(field, format!("`{v}` is not a decimal number"));
                None
            }
        }
    }

    fn kind(&mut self) -> Option<UsageKind> {
        let raw = self.req("kind");
        let kind = UsageKind::parse(&raw);
        if kind.is_none() && !raw.is_empty() {
            self.err("kind", format!("`{raw}` is not a kind: container or addon"));
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
    if !email.is_empty() && !looks_like_email(&email) {
        c.err("email", format!("`{email}` is not an email address"));
    }
    let name = c.req("name");
    let company = c.opt("company");
    let address = c.req("address");
    let country = c.req("country");
    if !country.is_empty() && !is_iso_country(&country) {
        c.err(
            "country",
            format!("`{country}` is not an ISO 3166 alpha-2 country code (such as FR)"),
        );
    }
    let vat_number = c
        .opt("vat_number")
        .map(|v| v.replace([' ', '.', '-'], "").to_uppercase());
    if let Some(v) = &vat_number
        && is_eu_member(&country)
    {
        let prefix = vat_prefix(&country);
        let ok = v.starts_with(prefix)
            && (4..=14).contains(&(v.len() - prefix.len()))
            && v[prefix.len()..]
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric());
        if !ok {
            c.err(
                "vat_number",
                format!("`{v}` is not a {country} VAT number (it starts with {prefix})"),
            );
        }
    }
    let language = c.req("language");
    let lang = Language::parse(&language);
    if lang.is_none() && !language.is_empty() {
        c.err(
            "language",
            format!("`{language}` is not a language: fr or en"),
        );
    }
    let created_raw = c.req("created_at");
    let created_at = if created_raw.is_empty() {
        None
    } else {
        c.time("created_at", &created_raw)
    };
    let referred_by = c.opt("referred_by");
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

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn parse_app(
    file: &str,
    line: usize,
    f: &Fields,
    accounts: &HashSet<String>,
) -> Result<App, Vec<LineError>> {
    let mut c = Check::new(file, line, f);
    let id = c.id("id");
    let name = c.req("name");
    let account_id = c.req("account_id");
    if !account_id.is_empty() && !accounts.contains(&account_id) {
        c.err("account_id", format!("unknown account `{account_id}`"));
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
    let item = c.req("item");
    let price_raw = c.req("hourly_price");
    let hourly_price = if price_raw.is_empty() {
        None
    } else {
        c.decimal("hourly_price", &price_raw)
    };
    let monthly_cap = match c.opt("monthly_cap") {
        Some(v) => c.decimal("monthly_cap", &v).map(Some),
        None => Some(None),
    };
    let currency = c.req("currency");
    if !currency.is_empty() && currency != "EUR" {
        c.err(
            "currency",
            format!("`{currency}` is not supported: the catalog is in EUR"),
        );
    }
    let from_raw = c.req("effective_from");
    let effective_from = match NaiveDate::parse_from_str(&from_raw, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) if from_raw.is_empty() => None,
        Err(_) => {
            c.err(
                "effective_from",
                format!("`{from_raw}` is not a date (YYYY-MM-DD)"),
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
    let app_id = c.req("app_id");
    if !app_id.is_empty() && !apps.contains(&app_id) {
        c.err("app_id", format!("unknown app `{app_id}`"));
    }
    let kind = c.kind();
    let item = c.req("item");
    let quantity_raw = c.req("quantity");
    let quantity = match quantity_raw.parse::<i64>() {
        Ok(q) if q < 0 => {
            c.err("quantity", format!("`{q}` is negative"));
            None
        }
        Ok(q) => Some(q),
        Err(_) if quantity_raw.is_empty() => None,
        Err(_) => {
            c.err(
                "quantity",
                format!("`{quantity_raw}` is not a whole number of containers"),
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
            c.err("item", format!("unknown {k} `{item}`: not in the catalog"));
        } else if cat.price_at(k, &item, s).is_none() {
            c.err(
                "item",
                format!("no price for {k} `{item}` in force at {}", s.to_rfc3339()),
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
    let app_id = c.req("app_id");
    if !app_id.is_empty() && !apps.contains(&app_id) {
        c.err("app_id", format!("unknown app `{app_id}`"));
    }
    let git_ref = c.req("git_ref");
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
    let account_id = c.req("account_id");
    if !account_id.is_empty() && !accounts.contains(&account_id) {
        c.err("account_id", format!("unknown account `{account_id}`"));
    }
    let name = c.req("name");
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
    let app_id = c.req("app_id");
    if !app_id.is_empty() && !apps.contains(&app_id) {
        c.err("app_id", format!("unknown app `{app_id}`"));
    }
    let name = c.req("name");
    if !name.is_empty()
        && let Some(why) = dns_name_problem(&name)
    {
        c.err("name", format!("`{name}` is not a DNS name: {why}"));
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
    if name.len() > 253 {
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
    let domain_id = c.req("domain_id");
    if !domain_id.is_empty() && !domains.contains(&domain_id) {
        c.err("domain_id", format!("unknown domain `{domain_id}`"));
    }
    let issuer = c.req("issuer");
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
    use super::dns_name_problem;

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
