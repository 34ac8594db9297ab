//! The price catalog.

use chrono::NaiveDate;
use sqlx::FromRow;

use super::{Conn, DbDecimal, Tx};
use crate::core::pricing::{Catalog, PriceEntry, UsageKind};
use crate::with_db;

#[derive(Debug, Clone, FromRow)]
pub struct PriceRow {
    #[sqlx(try_from = "String")]
    pub kind: UsageKind,
    pub item: String,
    pub hourly_price: DbDecimal,
    pub monthly_cap: Option<DbDecimal>,
    pub currency: String,
    pub effective_from: NaiveDate,
}

impl PriceRow {
    pub fn to_entry(&self) -> PriceEntry {
        PriceEntry {
            kind: self.kind,
            item: self.item.clone(),
            hourly_price: self.hourly_price.0,
            monthly_cap: self.monthly_cap.map(|c| c.0),
            effective_from: self.effective_from,
        }
    }
}

const COLUMNS: &str = "kind, item, hourly_price, monthly_cap, currency, effective_from";

pub async fn insert_price(tx: &mut Tx, p: &PriceEntry) -> anyhow::Result<bool> {
    let n = with_db!(&mut *tx, c => sqlx::query(
        "INSERT INTO catalog_prices (kind, item, hourly_price, monthly_cap, currency, effective_from)
         VALUES ($1, $2, $3, $4, 'EUR', $5) ON CONFLICT (kind, item, effective_from) DO NOTHING")
        .bind(p.kind.as_str()).bind(&p.item).bind(DbDecimal(p.hourly_price))
        .bind(p.monthly_cap.map(DbDecimal)).bind(p.effective_from)
        .execute(c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn get_price(
    conn: impl Into<Conn<'_>>,
    kind: UsageKind,
    item: &str,
    from: NaiveDate,
) -> anyhow::Result<Option<PriceRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM catalog_prices WHERE kind = $1 AND item = $2 AND effective_from = $3"
    ));
    Ok(with_db!(conn, c => sqlx::query_as::<_, PriceRow>(sql)
        .bind(kind.as_str()).bind(item).bind(from).fetch_optional(c).await?))
}

pub async fn load_catalog(db: impl Into<Conn<'_>>) -> anyhow::Result<Catalog> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM catalog_prices ORDER BY kind, item, effective_from"
    ));
    let rows: Vec<PriceRow> =
        with_db!(db, p => sqlx::query_as::<_, PriceRow>(sql).fetch_all(p).await?);
    Ok(Catalog::new(rows.iter().map(PriceRow::to_entry)))
}
