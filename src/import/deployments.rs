//! `billrun import deployments`: what was deployed on an app, and when.

use std::collections::HashSet;

use super::ImportKind;
use super::check::Check;
use super::read::Fields;
use super::record::{Record, referenced};
use crate::core::bounds;
use crate::core::ids::AppId;
use crate::model::Deployment;
use crate::store::{Db, Tx, accounts};

impl Record for Deployment {
    const KIND: ImportKind = ImportKind::Deployments;
    const NAME: &'static str = "deployment";
    const COLUMNS: &'static [&'static str] = &["id", "app_id", "git_ref", "created_at"];
    const REQUIRED: &'static [&'static str] = &["id", "app_id", "git_ref", "created_at"];

    /// The stored apps that the file names.
    type Known = HashSet<String>;

    async fn known(db: &Db, records: &[(usize, Fields)]) -> anyhow::Result<HashSet<String>> {
        accounts::existing_app_ids(db, referenced(records, "app_id")).await
    }

    fn parse(c: &mut Check<'_>, apps: &HashSet<String>) -> Option<Deployment> {
        let id = c.id("id");
        let app_id = c.reference("app_id", "app", apps);
        let git_ref = c.text("git_ref", bounds::MAX_REFERENCE_CHARS);
        let created_at = c.req_time("created_at");
        created_at.map(|created_at| Deployment {
            id,
            app_id: AppId(app_id),
            git_ref,
            created_at,
        })
    }

    fn key(&self) -> String {
        self.id.clone()
    }

    async fn insert(&self, tx: &mut Tx) -> anyhow::Result<bool> {
        accounts::insert_deployment(tx, self).await
    }

    async fn stored(&self, tx: &mut Tx) -> anyhow::Result<Option<Deployment>> {
        Ok(accounts::get_deployment(&mut *tx, &self.id)
            .await?
            .map(|row| row.to_deployment()))
    }

    fn compared(&self) -> Vec<(&'static str, String)> {
        vec![
            ("app_id", self.app_id.to_string()),
            ("git_ref", self.git_ref.clone()),
            ("created_at", self.created_at.to_rfc3339()),
        ]
    }
}
