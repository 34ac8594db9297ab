//! Finalizing invoices: numbering them (gapless, per year) and storing them with their lines,
//! discounts and brought-forward balances; the one insert of invoices and of lines per
//! backend ([`finalize_group`]; a single finalization is a group of one).

use anyhow::Context;
use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::InvoiceStatus;
use crate::core::einvoice::PaymentMeans;
use crate::core::ids::InvoiceId;
use crate::core::invoice::{Line, Totals};
use crate::core::period::Period;
use crate::model::Account;
use crate::store::Tx;
use crate::with_db;

/// An invoice ready to be finalized: everything but its id and number.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub account: Account,
    pub period: Period,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub lines: Vec<Line>,
    /// Referral rewards used on this invoice.
    pub discounts: Vec<DiscountLine>,
    /// Small balances of earlier invoices brought onto this one: (from invoice id, its number, amount).
    pub brought_forward: Vec<(i64, String, i64)>,
    pub totals: Totals,
    pub issued_at: DateTime<Utc>,
    pub due_at: NaiveDate,
    /// The VIES consultation number its reverse charge rests on (reverse charge only).
    pub vies_consultation: Option<String>,
    /// How it is expected to be paid (EN 16931 BG-16): set from the account's payment method
    /// and credit in the finalizing transaction ([`record_payment_means`]); a draft holds what
    /// its amount alone says.
    pub payment_means: PaymentMeans,
    /// EN 16931 BT-89: the SEPA mandate reference of the account's SEPA debit method.
    pub sepa_mandate: Option<String>,
}

impl NewInvoice {
    pub fn brought_forward_minor(&self) -> i64 {
        self.brought_forward.iter().map(|b| b.2).sum()
    }

    /// What the account owes on this invoice when it is issued.
    pub fn amount_due_minor(&self) -> i64 {
        self.totals.total + self.brought_forward_minor()
    }

    /// Its status when it is issued: paid when nothing is due, open otherwise.
    pub fn issued_status(&self) -> InvoiceStatus {
        if self.amount_due_minor() == 0 {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Open
        }
    }
}

/// A discount line: a referral reward used on an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountLine {
    pub description: String,
    pub reward_id: Option<i64>,
    pub amount_minor: i64,
}

/// Formats an invoice number: `2026-000042`.
pub fn format_number(year: i32, n: i64) -> String {
    format!("{year:04}-{n:06}")
}

/// Finalizes an invoice: numbers it and stores it with its lines, discounts and brought-forward
/// balances, in the caller's transaction: [`finalize_group`] with a group of one. Returns
/// `None` when the account already has an invoice for the period, or another run used a reward
/// or balance first (the caller must then roll back, which gives the number back).
pub async fn finalize(
    tx: &mut Tx,
    inv: &NewInvoice,
) -> anyhow::Result<Option<(InvoiceId, String)>> {
    let done = finalize_group(tx, std::slice::from_ref(inv)).await?;
    Ok(done.and_then(|d| d.into_iter().next()))
}

/// Keeps the VIES consultation number a reverse-charge invoice rests on (few invoices: one
/// statement each, none without one).
async fn set_vies_consultation(
    tx: &mut Tx,
    id: i64,
    consultation: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(c) = consultation {
        with_db!(&mut *tx, conn => sqlx::query("UPDATE invoices SET vies_consultation = $2 WHERE id = $1")
            .bind(id).bind(c).execute(conn).await?.rows_affected());
    }
    Ok(())
}

/// Records on each draft how it is expected to be paid (EN 16931 BG-16), from its account's
/// payment method and prepaid credit in the caller's (finalizing) transaction, so that what
/// the invoice records is what was on file when it was issued: nothing due, else credit that
/// covers the amount due (the collect job applies credit first), else the card (UNTDID 4461
/// code 48) or the SEPA debit (59, with its mandate reference, BT-89), else not defined (1).
/// One query for the drafts' accounts (a range of ids).
pub async fn record_payment_means(tx: &mut Tx, drafts: &mut [NewInvoice]) -> anyhow::Result<()> {
    let (Some(first), Some(last)) = (
        drafts.iter().map(|d| d.account.id.as_str()).min(),
        drafts.iter().map(|d| d.account.id.as_str()).max(),
    ) else {
        return Ok(());
    };
    let (first, last) = (first.to_string(), last.to_string());
    let rows: Vec<(String, i64, Option<String>, Option<String>)> = with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT a.id, a.credit_balance_minor, pm.kind, pm.sepa_mandate
         FROM accounts a LEFT JOIN payment_methods pm ON pm.account_id = a.id
         WHERE a.id >= $1 AND a.id <= $2")
        .bind(&first).bind(&last).fetch_all(c).await?);
    let on_file: std::collections::HashMap<&str, (i64, Option<&str>, Option<&str>)> = rows
        .iter()
        .map(|(id, credit, kind, mandate)| {
            (id.as_str(), (*credit, kind.as_deref(), mandate.as_deref()))
        })
        .collect();
    for d in drafts.iter_mut() {
        let (credit, kind, mandate) = on_file
            .get(d.account.id.as_str())
            .copied()
            .unwrap_or((0, None, None));
        d.payment_means = PaymentMeans::at_issue(d.amount_due_minor(), credit, kind);
        d.sepa_mandate = match d.payment_means {
            PaymentMeans::SepaDebit => mandate.map(str::to_string),
            PaymentMeans::Card
            | PaymentMeans::PrepaidCredit
            | PaymentMeans::NothingDue
            | PaymentMeans::NotDefined
            | PaymentMeans::Unrecorded => None,
        };
    }
    Ok(())
}

/// Finalizes invoices together, in the caller's transaction: numbers them in the drafts' order
/// and stores each with its lines, discounts and brought-forward balances, in a few multi-row
/// statements (the only insert of invoices and of lines, per backend; [`finalize`] is a group
/// of one). All or nothing: `None` when any of them cannot be finalized (the account already
/// has an invoice for the period, or another run used a reward or balance first); the caller
/// must then roll back, which gives every number back (the invoice job then finalizes them one
/// by one).
pub async fn finalize_group(
    tx: &mut Tx,
    drafts: &[NewInvoice],
) -> anyhow::Result<Option<Vec<(InvoiceId, String)>>> {
    // Numbers: a block per year, taken in the drafts' order. The counter row stays locked
    // until the transaction ends, so numbers are gapless and in commit order.
    let mut numbers: Vec<String> = Vec::with_capacity(drafts.len());
    let mut i = 0;
    while i < drafts.len() {
        let year = drafts[i].issued_at.year();
        let run = drafts[i..]
            .iter()
            .take_while(|d| d.issued_at.year() == year)
            .count();
        let (last,): (i64,) = with_db!(&mut *tx, c => sqlx::query_as(
            "INSERT INTO invoice_sequences (year, last_value) VALUES ($1, $2)
             ON CONFLICT (year) DO UPDATE SET last_value = invoice_sequences.last_value + excluded.last_value
             RETURNING last_value")
            .bind(year).bind(run as i64).fetch_one(c).await?);
        let first = last - run as i64 + 1;
        numbers.extend((first..=last).map(|n| format_number(year, n)));
        i += run;
    }

    // The invoices, with their ids back by number.
    let mut ids: std::collections::HashMap<String, i64> =
        std::collections::HashMap::with_capacity(drafts.len());
    let indexed: Vec<(&NewInvoice, &String)> = drafts.iter().zip(&numbers).collect();
    if let Tx::Postgres(t) = tx {
        // PostgreSQL: one statement with one array per column (a multi-row VALUES would bind
        // thousands of parameters, each parsed apart).
        let Some(rows) = pg::insert_invoices(t, &indexed).await? else {
            return Ok(None);
        };
        ids.extend(rows.into_iter().map(|(id, number)| (number, id)));
    }
    if let Tx::Sqlite(t) = tx {
        // SQLite: the invoices and their lines through the connection's own handle, in the
        // transaction (see `sqlite_bulk`).
        let mut handle = t.lock_handle().await?;
        let written = sqlite_group::write(&mut handle, &indexed)?;
        drop(handle);
        let Some(written) = written else {
            return Ok(None);
        };
        ids.extend(numbers.iter().cloned().zip(written));
    }
    let ids: Vec<i64> = numbers
        .iter()
        .map(|n| ids.get(n).copied().context("an inserted invoice's id"))
        .collect::<anyhow::Result<_>>()?;

    // Their lines (on SQLite they went in with their invoices).
    if let Tx::Postgres(t) = tx {
        let lines: Vec<(i64, i32, &Line)> = drafts
            .iter()
            .zip(&ids)
            .flat_map(|(inv, id)| {
                inv.lines
                    .iter()
                    .enumerate()
                    .map(move |(i, l)| (*id, i as i32 + 1, l))
            })
            .collect();
        pg::insert_lines(t, &lines).await?;
    }

    // Discounts and balances brought forward: few, one by one.
    for (inv, &id) in drafts.iter().zip(&ids) {
        for (i, d) in inv.discounts.iter().enumerate() {
            if let Some(reward) = d.reward_id
                && !crate::store::collection::use_reward(tx, reward, d.amount_minor).await?
            {
                return Ok(None);
            }
            with_db!(&mut *tx, c => sqlx::query(
                "INSERT INTO invoice_discounts (invoice_id, position, description, reward_id, amount_minor) VALUES ($1, $2, $3, $4, $5)")
                .bind(id).bind(i as i32 + 1).bind(&d.description).bind(d.reward_id).bind(d.amount_minor)
                .execute(c).await?.rows_affected());
        }
        for (from, _, _) in &inv.brought_forward {
            if !crate::store::collection::take_transfer(tx, *from, id).await? {
                return Ok(None);
            }
        }
        set_vies_consultation(tx, id, inv.vies_consultation.as_deref()).await?;
    }
    Ok(Some(ids.into_iter().map(InvoiceId).zip(numbers).collect()))
}

/// SQLite's writes of [`finalize_group`]: each invoice then its lines, one prepared statement
/// per table stepped once per row, on the locked connection.
mod sqlite_group {
    use sqlx::sqlite::LockedSqliteHandle;

    use super::NewInvoice;
    use crate::store::sqlite_bulk::{Raw, Val};

    /// The invoices' ids in order; `None` (the caller rolls back) unless every one was inserted.
    pub(super) fn write(
        handle: &mut LockedSqliteHandle<'_>,
        rows: &[(&NewInvoice, &String)],
    ) -> anyhow::Result<Option<Vec<i64>>> {
        let raw = Raw::new(handle);
        // Currency EUR, nothing applied, paid or carried yet (as the PostgreSQL statement).
        let mut invoice = raw.prepare(
            "INSERT INTO invoices (number, account_id, period, period_start, period_end, status, currency, language,
                buyer_name, buyer_company, buyer_address, buyer_country, buyer_vat_number, subtotal_minor,
                discount_minor, tax_case, tax_rate, tax_minor, total_minor, brought_forward_minor, credit_applied_minor,
                amount_paid_minor, carried_forward_minor, amount_due_minor, issued_at, due_at, buyer_siren,
                buyer_electronic_address, buyer_electronic_address_scheme, payment_means, sepa_mandate)
             VALUES (?, ?, ?, ?, ?, ?, 'EUR', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (account_id, period) DO NOTHING",
            "inserting invoices",
        )?;
        let mut line = raw.prepare(
            "INSERT INTO invoice_lines (invoice_id, position, description, app_id, kind, item, quantity_hours, unit_price, amount_minor)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            "inserting invoice lines",
        )?;
        let mut ids = Vec::with_capacity(rows.len());
        for (inv, number) in rows {
            let (t, a) = (&inv.totals, &inv.account);
            let due = inv.amount_due_minor();
            let status = inv.issued_status();
            let period = inv.period.to_string();
            let inserted = invoice.run(&[
                Val::text(number),
                Val::text(a.id.as_str()),
                Val::text(&period),
                Val::time(inv.period_start),
                Val::time(inv.period_end),
                Val::text(status.as_str()),
                Val::text(a.language.as_str()),
                Val::text(&a.name),
                Val::opt_text(a.company.as_deref()),
                Val::text(&a.address),
                Val::text(&a.country),
                Val::opt_text(a.vat_number.as_deref()),
                Val::Int(t.subtotal),
                Val::Int(t.discount),
                Val::text(t.tax_case.as_str()),
                Val::decimal(t.tax_rate),
                Val::Int(t.tax),
                Val::Int(t.total),
                Val::Int(inv.brought_forward_minor()),
                Val::Int(due),
                Val::time(inv.issued_at),
                Val::date(inv.due_at),
                Val::opt_text(a.siren.as_deref()),
                Val::opt_text(a.electronic_address.as_ref().map(|e| e.id.as_str())),
                Val::opt_text(a.electronic_address.as_ref().map(|e| e.scheme.as_str())),
                Val::text(inv.payment_means.as_str()),
                Val::opt_text(inv.sepa_mandate.as_deref()),
            ])?;
            if inserted != 1 {
                return Ok(None);
            }
            let id = invoice.last_rowid();
            ids.push(id);
            for (i, l) in inv.lines.iter().enumerate() {
                line.run(&[
                    Val::Int(id),
                    Val::Int(i as i64 + 1),
                    Val::text(&l.description),
                    Val::opt_text(l.app_id.as_ref().map(|a| a.as_str())),
                    Val::text(l.kind.as_str()),
                    Val::text(&l.item),
                    Val::decimal(l.quantity_hours),
                    Val::decimal(l.unit_price),
                    Val::Int(l.amount.minor),
                ])?;
            }
        }
        Ok(Some(ids))
    }
}

/// PostgreSQL's bulk inserts of [`finalize_group`]: `INSERT … SELECT … FROM UNNEST(arrays)`,
/// one array per column, rows in the arrays' order.
mod pg {
    use chrono::{DateTime, NaiveDate, Utc};
    use rust_decimal::Decimal;
    use sqlx::PgConnection;

    use super::NewInvoice;
    use crate::core::invoice::Line;
    use crate::store::pg_copy::CopyRows;

    /// The invoices' rows; `None` unless every one was inserted
    /// (an account already invoiced for the period: the statement fails on the unique key,
    /// and the caller rolls back). Not `ON CONFLICT … DO NOTHING`: that checks each row's key
    /// before inserting it and logs one more record per row to confirm it, a fifth of this
    /// statement's time, for a conflict that happens only when another run got there first.
    pub(super) async fn insert_invoices(
        c: &mut PgConnection,
        rows: &[(&NewInvoice, &String)],
    ) -> anyhow::Result<Option<Vec<(i64, String)>>> {
        let n = rows.len();
        let mut number: Vec<&str> = Vec::with_capacity(n);
        let mut account_id: Vec<&str> = Vec::with_capacity(n);
        let mut period: Vec<String> = Vec::with_capacity(n);
        let mut period_start: Vec<DateTime<Utc>> = Vec::with_capacity(n);
        let mut period_end: Vec<DateTime<Utc>> = Vec::with_capacity(n);
        let mut status: Vec<&str> = Vec::with_capacity(n);
        let mut language: Vec<&str> = Vec::with_capacity(n);
        let mut buyer_name: Vec<&str> = Vec::with_capacity(n);
        let mut buyer_company: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut buyer_address: Vec<&str> = Vec::with_capacity(n);
        let mut buyer_country: Vec<&str> = Vec::with_capacity(n);
        let mut buyer_vat_number: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut subtotal: Vec<i64> = Vec::with_capacity(n);
        let mut discount: Vec<i64> = Vec::with_capacity(n);
        let mut tax_case: Vec<&str> = Vec::with_capacity(n);
        let mut tax_rate: Vec<Decimal> = Vec::with_capacity(n);
        let mut tax: Vec<i64> = Vec::with_capacity(n);
        let mut total: Vec<i64> = Vec::with_capacity(n);
        let mut brought_forward: Vec<i64> = Vec::with_capacity(n);
        let mut amount_due: Vec<i64> = Vec::with_capacity(n);
        let mut issued_at: Vec<DateTime<Utc>> = Vec::with_capacity(n);
        let mut due_at: Vec<NaiveDate> = Vec::with_capacity(n);
        let mut buyer_siren: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut buyer_address_id: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut buyer_address_scheme: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut payment_means: Vec<&str> = Vec::with_capacity(n);
        let mut sepa_mandate: Vec<Option<&str>> = Vec::with_capacity(n);
        for (inv, num) in rows {
            let (t, a) = (&inv.totals, &inv.account);
            let due = inv.amount_due_minor();
            number.push(num.as_str());
            account_id.push(a.id.as_str());
            period.push(inv.period.to_string());
            period_start.push(inv.period_start);
            period_end.push(inv.period_end);
            status.push(inv.issued_status().as_str());
            language.push(a.language.as_str());
            buyer_name.push(&a.name);
            buyer_company.push(a.company.as_deref());
            buyer_address.push(&a.address);
            buyer_country.push(&a.country);
            buyer_vat_number.push(a.vat_number.as_deref());
            subtotal.push(t.subtotal);
            discount.push(t.discount);
            tax_case.push(t.tax_case.as_str());
            tax_rate.push(t.tax_rate);
            tax.push(t.tax);
            total.push(t.total);
            brought_forward.push(inv.brought_forward_minor());
            amount_due.push(due);
            issued_at.push(inv.issued_at);
            due_at.push(inv.due_at);
            buyer_siren.push(a.siren.as_deref());
            buyer_address_id.push(a.electronic_address.as_ref().map(|e| e.id.as_str()));
            buyer_address_scheme.push(a.electronic_address.as_ref().map(|e| e.scheme.as_str()));
            payment_means.push(inv.payment_means.as_str());
            sepa_mandate.push(inv.sepa_mandate.as_deref());
        }
        let returned: Result<Vec<(i64, String)>, sqlx::Error> = sqlx::query_as(
            "INSERT INTO invoices (number, account_id, period, period_start, period_end, status, currency, language,
                buyer_name, buyer_company, buyer_address, buyer_country, buyer_vat_number, subtotal_minor,
                discount_minor, tax_case, tax_rate, tax_minor, total_minor, brought_forward_minor, credit_applied_minor,
                amount_paid_minor, carried_forward_minor, amount_due_minor, issued_at, due_at, buyer_siren,
                buyer_electronic_address, buyer_electronic_address_scheme, payment_means, sepa_mandate)
             SELECT v.number, v.account_id, v.period, v.period_start, v.period_end, v.status, 'EUR', v.language,
                v.buyer_name, v.buyer_company, v.buyer_address, v.buyer_country, v.buyer_vat_number, v.subtotal,
                v.discount, v.tax_case, v.tax_rate, v.tax, v.total, v.brought_forward, 0, 0, 0, v.amount_due,
                v.issued_at, v.due_at, v.buyer_siren, v.buyer_address_id, v.buyer_address_scheme, v.payment_means,
                v.sepa_mandate
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[],
                $14::bigint[], $15::text[], $16::numeric[], $17::bigint[], $18::bigint[], $19::bigint[],
                $20::bigint[], $21::timestamptz[], $22::date[], $23::text[], $24::text[], $25::text[],
                $26::text[], $27::text[])
                WITH ORDINALITY AS v(number, account_id, period, period_start, period_end, status, language,
                    buyer_name, buyer_company, buyer_address, buyer_country, buyer_vat_number, subtotal, discount,
                    tax_case, tax_rate, tax, total, brought_forward, amount_due, issued_at, due_at, buyer_siren,
                    buyer_address_id, buyer_address_scheme, payment_means, sepa_mandate, ord)
             ORDER BY v.ord
             RETURNING id, number",
        )
        .bind(number)
        .bind(account_id)
        .bind(period)
        .bind(period_start)
        .bind(period_end)
        .bind(status)
        .bind(language)
        .bind(buyer_name)
        .bind(buyer_company)
        .bind(buyer_address)
        .bind(buyer_country)
        .bind(buyer_vat_number)
        .bind(subtotal)
        .bind(discount)
        .bind(tax_case)
        .bind(tax_rate)
        .bind(tax)
        .bind(total)
        .bind(brought_forward)
        .bind(amount_due)
        .bind(issued_at)
        .bind(due_at)
        .bind(buyer_siren)
        .bind(buyer_address_id)
        .bind(buyer_address_scheme)
        .bind(payment_means)
        .bind(sepa_mandate)
        .fetch_all(c)
        .await;
        match returned {
            Ok(returned) => Ok((returned.len() == n).then_some(returned)),
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("23505")
                    && e.constraint() == Some("invoices_account_id_period_key") =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The lines: (invoice id, position, line), sent with `COPY … FROM STDIN`: PostgreSQL's
    /// fastest way in, and no array of decimals to decode.
    pub(super) async fn insert_lines(
        c: &mut PgConnection,
        lines: &[(i64, i32, &Line)],
    ) -> anyhow::Result<()> {
        let mut rows = CopyRows::with_capacity(lines.len() * 128);
        for (id, pos, l) in lines {
            rows.int(*id)
                .int(i64::from(*pos))
                .text(&l.description)
                .opt_text(l.app_id.as_ref().map(|a| a.as_str()))
                .text(l.kind.as_str())
                .text(&l.item)
                .decimal(l.quantity_hours)
                .decimal(l.unit_price)
                .int(l.amount.minor)
                .end_row();
        }
        rows.send(
            c,
            "COPY invoice_lines (invoice_id, position, description, app_id, kind, item, quantity_hours, unit_price, amount_minor)
             FROM STDIN",
        )
        .await?;
        Ok(())
    }
}
