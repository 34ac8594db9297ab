//! `billrun import accounts`: who is billed, and who referred them.

use std::collections::HashSet;

use super::check::Check;
use super::read::Fields;
use super::record::{Record, referenced};
use super::{ImportKind, LineError};
use crate::core::bounds::{self, excerpt};
use crate::core::countries::is_iso_country;
use crate::core::einvoice::{ElectronicAddress, validate_siren};
use crate::core::ids::AccountId;
use crate::core::invoice::Language;
use crate::core::vat_number;
use crate::model::Account;
use crate::store::{Db, Tx, accounts};

impl Record for Account {
    const KIND: ImportKind = ImportKind::Accounts;
    const NAME: &'static str = "account";
    const COLUMNS: &'static [&'static str] = &[
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
        "siren",
        "electronic_address",
        "electronic_address_scheme",
    ];
    const REQUIRED: &'static [&'static str] = &[
        "id",
        "email",
        "name",
        "address",
        "country",
        "language",
        "created_at",
    ];

    /// The stored accounts that the file's referrals name.
    type Known = HashSet<String>;

    async fn known(db: &Db, records: &[(usize, Fields)]) -> anyhow::Result<HashSet<String>> {
        accounts::existing_account_ids(db, referenced(records, "referred_by")).await
    }

    fn parse(c: &mut Check<'_>, _: &HashSet<String>) -> Option<Account> {
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
        let created_at = c.req_time("created_at");
        let referred_by = c.opt("referred_by").map(|_| c.id("referred_by"));
        if referred_by.as_deref() == Some(id.as_str()) {
            c.err("referred_by", "an account cannot refer itself".into());
        }
        let siren = parse_siren(c, &country, company.as_deref(), vat_number.as_deref());
        let electronic_address = parse_electronic_address(c, siren.as_deref());
        match (lang, created_at) {
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
                siren,
                electronic_address,
            }),
            _ => None,
        }
    }

    /// A referral must point to an account already stored or valid in this file; refusing one
    /// account may refuse those it referred, so this repeats until nothing more is refused.
    fn refuse_together(
        mut valid: Vec<(usize, Account)>,
        known: &HashSet<String>,
        file: &str,
        errors: &mut Vec<LineError>,
    ) -> Vec<(usize, Account)> {
        loop {
            // Lines of the refused (a record's line is its own).
            let mut refused = HashSet::new();
            let in_file: HashSet<&str> = valid.iter().map(|(_, a)| a.id.as_str()).collect();
            for (line, a) in &valid {
                if let Some(r) = &a.referred_by
                    && !known.contains(r.as_str())
                    && !in_file.contains(r.as_str())
                {
                    errors.push(LineError::new(
                        file,
                        *line,
                        "referred_by",
                        format!("unknown account `{}`", excerpt(r.as_str())),
                    ));
                    refused.insert(*line);
                }
            }
            if refused.is_empty() {
                return valid;
            }
            valid.retain(|(line, _)| !refused.contains(line));
        }
    }

    fn key(&self) -> String {
        self.id.to_string()
    }

    async fn insert(&self, tx: &mut Tx) -> anyhow::Result<bool> {
        accounts::insert_account(tx, self).await
    }

    async fn stored(&self, tx: &mut Tx) -> anyhow::Result<Option<Account>> {
        Ok(accounts::get_account(&mut *tx, self.id.as_str())
            .await?
            .map(|row| row.to_account()))
    }

    fn compared(&self) -> Vec<(&'static str, String)> {
        vec![
            ("email", self.email.clone()),
            ("name", self.name.clone()),
            ("company", self.company.clone().unwrap_or_default()),
            ("address", self.address.clone()),
            ("country", self.country.clone()),
            ("vat_number", self.vat_number.clone().unwrap_or_default()),
            ("language", self.language.to_string()),
            ("created_at", self.created_at.to_rfc3339()),
            (
                "referred_by",
                self.referred_by
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
            ),
            ("siren", self.siren.clone().unwrap_or_default()),
            (
                "electronic_address",
                self.electronic_address
                    .as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            ),
        ]
    }
}

/// The optional `siren` (EN 16931 BT-47): 9 digits whose Luhn key is right (INSEE's check,
/// `core::einvoice::validate_siren`), stored without spaces. A SIREN is the number of a legal
/// unit in France's SIRENE register, so it is refused on an account outside France (`country`
/// not FR) and on a consumer's (no `company`): the e-invoice would name a register the buyer
/// is not in. With a French VAT number, the SIREN is the number's last 9 digits (article 286
/// ter of the CGI: FR + 2-digit key + SIREN).
fn parse_siren(
    c: &mut Check<'_>,
    country: &str,
    company: Option<&str>,
    vat_number: Option<&str>,
) -> Option<String> {
    let raw = c.opt_text("siren", 20)?;
    let siren = match validate_siren(&raw) {
        Ok(s) => s,
        Err(e) => {
            c.err("siren", e.to_string());
            return None;
        }
    };
    if country != "FR" {
        c.err(
            "siren",
            format!(
                "a SIREN identifies a French company; this account's country is `{}`",
                excerpt(country)
            ),
        );
        return None;
    }
    if company.is_none_or(|co| co.trim().is_empty()) {
        c.err(
            "siren",
            "a SIREN identifies a company: give the account's `company` (a consumer has none)"
                .into(),
        );
        return None;
    }
    if let Some(vat) = vat_number
        && let Some(rest) = vat.strip_prefix("FR")
        && rest.len() == 11
        && rest[2..] != siren
    {
        c.err(
            "siren",
            format!(
                "`{siren}` is not the SIREN of the VAT number `{}` (its last 9 digits)",
                excerpt(vat)
            ),
        );
        return None;
    }
    Some(siren)
}

/// The optional `electronic_address` and `electronic_address_scheme` (EN 16931 BT-49 and
/// BT-49-1; BR-63: an address has a scheme): both or neither, held to the French CTC rules
/// (`ElectronicAddress::validate`: BR-FR-21, 23, 25).
fn parse_electronic_address(c: &mut Check<'_>, siren: Option<&str>) -> Option<ElectronicAddress> {
    let id = c.opt_text("electronic_address", 125);
    let scheme = c.opt_text("electronic_address_scheme", 4);
    match (id, scheme) {
        (None, None) => None,
        (Some(_), None) => {
            c.err(
                "electronic_address_scheme",
                "is empty: an electronic address needs its scheme (EN 16931 BR-63), e.g. 0225"
                    .into(),
            );
            None
        }
        (None, Some(_)) => {
            c.err(
                "electronic_address",
                "is empty while electronic_address_scheme is given".into(),
            );
            None
        }
        (Some(id), Some(scheme)) => {
            let a = ElectronicAddress { scheme, id };
            match a.validate(siren) {
                Ok(()) => Some(a),
                Err(e) => {
                    c.err("electronic_address", e.to_string());
                    None
                }
            }
        }
    }
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
