//! VIES consultations (`vies_checks`): each answer about an account's VAT number, kept as
//! evidence (article 18 of Implementing Regulation (EU) 282/2011).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, Tx};
use crate::core::vat::ViesAnswer;
use crate::with_db;

/// VIES's answer about a number: `valid`, `invalid`, or `unavailable` (the member state's
/// service down, a timeout: no answer on the number itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViesOutcome {
    Valid,
    Invalid,
    Unavailable,
}

impl ViesOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ViesOutcome::Valid => "valid",
            ViesOutcome::Invalid => "invalid",
            ViesOutcome::Unavailable => "unavailable",
        }
    }
}

/// One consultation to record.
#[derive(Debug, Clone)]
pub struct NewViesCheck<'a> {
    pub account_id: &'a str,
    pub vat_number: &'a str,
    pub checked_at: DateTime<Utc>,
    pub outcome: ViesOutcome,
    pub request_date: Option<&'a str>,
    pub consultation_number: Option<&'a str>,
    pub name: Option<&'a str>,
    pub address: Option<&'a str>,
    pub detail: Option<&'a str>,
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct ViesCheckRow {
    pub id: i64,
    pub account_id: String,
    pub vat_number: String,
    pub checked_at: DateTime<Utc>,
    pub outcome: String,
    pub request_date: Option<String>,
    pub consultation_number: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub detail: Option<String>,
}

const COLUMNS: &str = "id, account_id, vat_number, checked_at, outcome, request_date, consultation_number, name, address, detail";

pub async fn record(tx: &mut Tx, c: &NewViesCheck<'_>) -> anyhow::Result<()> {
    with_db!(&mut *tx, conn => sqlx::query(
        "INSERT INTO vies_checks (account_id, vat_number, checked_at, outcome, request_date, consultation_number, name, address, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(c.account_id).bind(c.vat_number).bind(c.checked_at).bind(c.outcome.as_str())
        .bind(c.request_date).bind(c.consultation_number).bind(c.name).bind(c.address).bind(c.detail)
        .execute(conn).await?.rows_affected());
    Ok(())
}

/// Every consultation of an account, oldest first.
pub async fn for_account(
    db: impl Into<Conn<'_>>,
    account: &str,
) -> anyhow::Result<Vec<ViesCheckRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM vies_checks WHERE account_id = $1 ORDER BY checked_at, id");
    Ok(
        with_db!(db, p => sqlx::query_as::<_, ViesCheckRow>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(account).fetch_all(p).await?),
    )
}

/// VIES's last conclusive answer (`valid` or `invalid`) at `now` (none given later counts)
/// for each account with an id in `[first, last]`.
pub async fn last_answers_in_range(
    db: impl Into<Conn<'_>>,
    first: &str,
    last: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<HashMap<String, ViesAnswer>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM vies_checks
         WHERE account_id BETWEEN $1 AND $2 AND outcome IN ('valid', 'invalid') AND checked_at <= $3
         ORDER BY account_id, checked_at, id"
    );
    let rows = with_db!(db, p => sqlx::query_as::<_, ViesCheckRow>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(first).bind(last).bind(now).fetch_all(p).await?);
    let mut out = HashMap::new();
    for r in rows {
        // Ordered oldest first: the last one stays.
        out.insert(
            r.account_id.clone(),
            ViesAnswer {
                valid: r.outcome == "valid",
                vat_number: r.vat_number,
                checked_at: r.checked_at,
                consultation: r.consultation_number,
            },
        );
    }
    Ok(out)
}

/// The business accounts with a VAT number of an EU member state other than France, in id
/// order: what the vat-check job asks VIES about.
pub async fn accounts_to_check(
    db: impl Into<Conn<'_>>,
) -> anyhow::Result<Vec<(String, String, String)>> {
    Ok(
        with_db!(db, p => sqlx::query_as::<_, (String, String, String)>(
        "SELECT id, country, vat_number FROM accounts
         WHERE vat_number IS NOT NULL AND vat_number <> '' AND status <> 'deleted' ORDER BY id")
        .fetch_all(p).await?),
    )
}
