//! `billrun import usage`: containers and addons an app ran, from a start to an end (or still
//! running). A re-import may close a run, unless the time after its new end was invoiced.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::ImportKind;
use super::check::Check;
use super::read::Fields;
use super::record::{Record, Reimport, differences, referenced};
use crate::core::bounds::{self, excerpt};
use crate::core::ids::AppId;
use crate::core::pricing::{Catalog, UsageRecord};
use crate::store::{Db, Tx, accounts, catalog};

/// What validating usage needs from the store.
pub struct UsageKnown {
    /// The stored apps that the file names.
    pub apps: HashSet<String>,
    /// Every item used must be in it, with a price in force at its start.
    pub catalog: Catalog,
}

impl Record for UsageRecord {
    const KIND: ImportKind = ImportKind::Usage;
    const NAME: &'static str = "usage record";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "app_id",
        "kind",
        "item",
        "quantity",
        "started_at",
        "ended_at",
    ];
    const REQUIRED: &'static [&'static str] =
        &["id", "app_id", "kind", "item", "quantity", "started_at"];

    type Known = UsageKnown;

    async fn known(db: &Db, records: &[(usize, Fields)]) -> anyhow::Result<UsageKnown> {
        Ok(UsageKnown {
            apps: accounts::existing_app_ids(db, referenced(records, "app_id")).await?,
            catalog: catalog::load_catalog(db).await?,
        })
    }

    fn parse(c: &mut Check<'_>, known: &UsageKnown) -> Option<UsageRecord> {
        let id = c.id("id");
        let app_id = c.reference("app_id", "app", &known.apps);
        let kind = c.kind();
        let item = c.text("item", bounds::MAX_ITEM_CHARS);
        let quantity = quantity(c);
        let started_at = c.req_time("started_at");
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
            if !known.catalog.knows(k, &item) {
                c.err(
                    "item",
                    format!("unknown {k} `{}`: not in the catalog", excerpt(&item)),
                );
            } else if known.catalog.price_at(k, &item, s).is_none() {
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
        match (kind, quantity, started_at, ended_at) {
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
        }
    }

    fn key(&self) -> String {
        self.id.clone()
    }

    async fn insert(&self, tx: &mut Tx) -> anyhow::Result<bool> {
        accounts::insert_usage(tx, self).await
    }

    async fn stored(&self, tx: &mut Tx) -> anyhow::Result<Option<UsageRecord>> {
        Ok(accounts::get_usage(&mut *tx, &self.id)
            .await?
            .map(|row| row.to_usage()))
    }

    /// All but `ended_at`, which a re-import may set (see `reimport`).
    fn compared(&self) -> Vec<(&'static str, String)> {
        vec![
            ("app_id", self.app_id.to_string()),
            ("kind", self.kind.to_string()),
            ("item", self.item.clone()),
            ("quantity", self.quantity.to_string()),
            ("started_at", self.started_at.to_rfc3339()),
        ]
    }

    /// The same record, or a still-running one that now ends: closed, unless the account was
    /// invoiced past its new end (it was billed as running).
    async fn reimport(&self, old: &UsageRecord, tx: &mut Tx) -> anyhow::Result<Reimport> {
        Ok(match usage_change(old, self) {
            UsageChange::Same => Reimport::Unchanged,
            UsageChange::Closes(end) => {
                match accounts::invoiced_until(&mut *tx, self.app_id.as_str()).await? {
                    Some(until) if end < until => Reimport::Refused {
                        field: "ended_at",
                        message: format!(
                            "usage {} was billed as running until {until} (already invoiced); it cannot end earlier, at {end}",
                            self.id
                        ),
                    },
                    _ => {
                        accounts::close_usage(tx, &self.id, end).await?;
                        Reimport::Updated
                    }
                }
            }
            UsageChange::Differs(diff) => Reimport::conflict(&self.id, &diff),
        })
    }
}

/// A whole number of containers at once (an addon is 1), 0 to `MAX_QUANTITY`.
fn quantity(c: &mut Check<'_>) -> Option<i64> {
    let quantity_raw = c.req("quantity");
    match quantity_raw.parse::<i64>() {
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
    }
}

enum UsageChange {
    Same,
    /// A still-running record now has an end: the one update a re-import may make.
    Closes(DateTime<Utc>),
    Differs(String),
}

fn usage_change(old: &UsageRecord, new: &UsageRecord) -> UsageChange {
    if let Some(diff) = differences(&old.compared(), &new.compared()) {
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
