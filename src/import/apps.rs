//! `billrun import apps`: what an account runs; its usage is billed to the account.

use std::collections::HashSet;

use super::ImportKind;
use super::check::Check;
use super::read::Fields;
use super::record::{Record, referenced};
use crate::core::bounds;
use crate::core::ids::{AccountId, AppId};
use crate::model::App;
use crate::store::{Db, Tx, accounts};

impl Record for App {
    const KIND: ImportKind = ImportKind::Apps;
    const NAME: &'static str = "app";
    const COLUMNS: &'static [&'static str] = &["id", "name", "account_id"];
    const REQUIRED: &'static [&'static str] = &["id", "name", "account_id"];

    /// The stored accounts that the file names.
    type Known = HashSet<String>;

    async fn known(db: &Db, records: &[(usize, Fields)]) -> anyhow::Result<HashSet<String>> {
        accounts::existing_account_ids(db, referenced(records, "account_id")).await
    }

    fn parse(c: &mut Check<'_>, accounts: &HashSet<String>) -> Option<App> {
        let id = c.id("id");
        let name = c.text("name", bounds::MAX_NAME_CHARS);
        let account_id = c.reference("account_id", "account", accounts);
        Some(App {
            id: AppId(id),
            name,
            account_id: AccountId(account_id),
        })
    }

    fn key(&self) -> String {
        self.id.to_string()
    }

    async fn insert(&self, tx: &mut Tx) -> anyhow::Result<bool> {
        accounts::insert_app(tx, self).await
    }

    async fn stored(&self, tx: &mut Tx) -> anyhow::Result<Option<App>> {
        Ok(accounts::get_app(&mut *tx, self.id.as_str())
            .await?
            .map(|row| row.to_app()))
    }

    fn compared(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("account_id", self.account_id.to_string()),
        ]
    }
}
