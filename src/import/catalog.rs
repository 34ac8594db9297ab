//! `billrun import catalog`: the hourly price (and monthly cap) of a container size or an addon
//! plan from a date on.

use chrono::{Datelike, NaiveDate};

use super::ImportKind;
use super::check::Check;
use super::read::Fields;
use super::record::Record;
use crate::core::bounds::{self, excerpt};
use crate::core::pricing::PriceEntry;
use crate::store::{Db, Tx, catalog};

impl Record for PriceEntry {
    const KIND: ImportKind = ImportKind::Catalog;
    const NAME: &'static str = "price";
    const COLUMNS: &'static [&'static str] = &[
        "kind",
        "item",
        "hourly_price",
        "monthly_cap",
        "currency",
        "effective_from",
    ];
    const REQUIRED: &'static [&'static str] =
        &["kind", "item", "hourly_price", "currency", "effective_from"];

    /// A price refers to nothing stored.
    type Known = ();

    async fn known(_: &Db, _: &[(usize, Fields)]) -> anyhow::Result<()> {
        Ok(())
    }

    fn parse(c: &mut Check<'_>, _: &()) -> Option<PriceEntry> {
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
        let effective_from = effective_from(c);
        match (kind, hourly_price, monthly_cap, effective_from) {
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
        }
    }

    fn key(&self) -> String {
        format!("{} {} from {}", self.kind, self.item, self.effective_from)
    }

    async fn insert(&self, tx: &mut Tx) -> anyhow::Result<bool> {
        catalog::insert_price(tx, self).await
    }

    async fn stored(&self, tx: &mut Tx) -> anyhow::Result<Option<PriceEntry>> {
        Ok(
            catalog::get_price(&mut *tx, self.kind, &self.item, self.effective_from)
                .await?
                .map(|row| row.to_entry()),
        )
    }

    fn compared(&self) -> Vec<(&'static str, String)> {
        vec![
            ("hourly_price", self.hourly_price.normalize().to_string()),
            (
                "monthly_cap",
                self.monthly_cap
                    .map(|c| c.normalize().to_string())
                    .unwrap_or_default(),
            ),
        ]
    }
}

/// The first day the price is in force: a date (YYYY-MM-DD) in the years `MIN_YEAR` to
/// `MAX_YEAR`.
fn effective_from(c: &mut Check<'_>) -> Option<NaiveDate> {
    let from_raw = c.req("effective_from");
    match NaiveDate::parse_from_str(&from_raw, "%Y-%m-%d") {
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
    }
}
