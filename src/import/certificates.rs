//! `billrun import certificates`: the TLS certificate of a domain (import domains first).

use std::collections::HashSet;

use super::ImportKind;
use super::check::Check;
use super::read::Fields;
use super::record::{Record, referenced};
use crate::core::bounds;
use crate::model::Certificate;
use crate::store::{Db, Tx, accounts};

impl Record for Certificate {
    const KIND: ImportKind = ImportKind::Certificates;
    const NAME: &'static str = "certificate";
    const COLUMNS: &'static [&'static str] = &["id", "domain_id", "issuer", "expires_at"];
    const REQUIRED: &'static [&'static str] = &["id", "domain_id", "issuer", "expires_at"];

    /// The stored domains that the file names: a domain must be stored before its certificate.
    type Known = HashSet<String>;

    async fn known(db: &Db, records: &[(usize, Fields)]) -> anyhow::Result<HashSet<String>> {
        accounts::existing_domain_ids(db, referenced(records, "domain_id")).await
    }

    fn parse(c: &mut Check<'_>, domains: &HashSet<String>) -> Option<Certificate> {
        let id = c.id("id");
        let domain_id = c.reference("domain_id", "domain", domains);
        let issuer = c.text("issuer", bounds::MAX_NAME_CHARS);
        let expires_at = c.req_time("expires_at");
        expires_at.map(|expires_at| Certificate {
            id,
            domain_id,
            issuer,
            expires_at,
        })
    }

    fn key(&self) -> String {
        self.id.clone()
    }

    async fn insert(&self, tx: &mut Tx) -> anyhow::Result<bool> {
        accounts::insert_certificate(tx, self).await
    }

    async fn stored(&self, tx: &mut Tx) -> anyhow::Result<Option<Certificate>> {
        Ok(accounts::get_certificate(&mut *tx, &self.id)
            .await?
            .map(|row| row.to_certificate()))
    }

    fn compared(&self) -> Vec<(&'static str, String)> {
        vec![
            ("domain_id", self.domain_id.clone()),
            ("issuer", self.issuer.clone()),
            ("expires_at", self.expires_at.to_rfc3339()),
        ]
    }
}
