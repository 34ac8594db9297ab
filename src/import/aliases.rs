//! `billrun import aliases`: other names of an account.

use std::collections::HashSet;

use super::ImportKind;
use super::check::Check;
use super::read::Fields;
use super::record::{Record, referenced};
use crate::core::bounds;
use crate::core::ids::AccountId;
use crate::model::Alias;
use crate::store::{Db, Tx, accounts};

impl Record for Alias {
    const KIND: ImportKind = ImportKind::Aliases;
    const NAME: &'static str = "alias";
    const COLUMNS: &'static [&'static str] = &["id", "account_id", "name"];
    const REQUIRED: &'static [&'static str] = &["id", "account_id", "name"];

    /// The stored accounts that the file names.
    type Known = HashSet<String>;

    async fn known(db: &Db, records: &[(usize, Fields)]) -> anyhow::Result<HashSet<String>> {
        accounts::existing_account_ids(db, referenced(records, "account_id")).await
    }

    fn parse(c: &mut Check<'_>, accounts: &HashSet<String>) -> Option<Alias> {
        let id = c.id("id");
        let account_id = c.reference("account_id", "account", accounts);
        let name = c.text("name", bounds::MAX_NAME_CHARS);
        Some(Alias {
            id,
            account_id: AccountId(account_id),
            name,
        })
    }

    fn key(&self) -> String {
        self.id.clone()
    }

    async fn insert(&self, tx: &mut Tx) -> anyhow::Result<bool> {
        accounts::insert_alias(tx, self).await
    }

    async fn stored(&self, tx: &mut Tx) -> anyhow::Result<Option<Alias>> {
        Ok(accounts::get_alias(&mut *tx, &self.id)
            .await?
            .map(|row| row.to_alias()))
    }

    fn compared(&self) -> Vec<(&'static str, String)> {
        vec![
            ("account_id", self.account_id.to_string()),
            ("name", self.name.clone()),
        ]
    }
}
