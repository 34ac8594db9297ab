//! `billrun import domains`: the DNS names an app answers on.

use std::collections::HashSet;

use super::ImportKind;
use super::check::Check;
use super::read::Fields;
use super::record::{Record, referenced};
use crate::core::bounds::{self, excerpt};
use crate::core::ids::AppId;
use crate::model::Domain;
use crate::store::{Db, Tx, accounts};

impl Record for Domain {
    const KIND: ImportKind = ImportKind::Domains;
    const NAME: &'static str = "domain";
    const COLUMNS: &'static [&'static str] = &["id", "app_id", "name"];
    const REQUIRED: &'static [&'static str] = &["id", "app_id", "name"];

    /// The stored apps that the file names.
    type Known = HashSet<String>;

    async fn known(db: &Db, records: &[(usize, Fields)]) -> anyhow::Result<HashSet<String>> {
        accounts::existing_app_ids(db, referenced(records, "app_id")).await
    }

    fn parse(c: &mut Check<'_>, apps: &HashSet<String>) -> Option<Domain> {
        let id = c.id("id");
        let app_id = c.reference("app_id", "app", apps);
        let name = c.req("name");
        if !name.is_empty()
            && let Some(why) = dns_name_problem(&name)
        {
            c.err(
                "name",
                format!("`{}` is not a DNS name: {why}", excerpt(&name)),
            );
        }
        Some(Domain {
            id,
            app_id: AppId(app_id),
            name,
        })
    }

    fn key(&self) -> String {
        self.id.clone()
    }

    async fn insert(&self, tx: &mut Tx) -> anyhow::Result<bool> {
        accounts::insert_domain(tx, self).await
    }

    async fn stored(&self, tx: &mut Tx) -> anyhow::Result<Option<Domain>> {
        Ok(accounts::get_domain(&mut *tx, &self.id)
            .await?
            .map(|row| row.to_domain()))
    }

    fn compared(&self) -> Vec<(&'static str, String)> {
        vec![
            ("app_id", self.app_id.to_string()),
            ("name", self.name.clone()),
        ]
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
