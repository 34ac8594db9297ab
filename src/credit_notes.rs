//! Issuing a credit note (*avoir*, issue 22): the workflow at the I/O edge. It loads the
//! invoice, asks the core what may be credited and how it is settled (`core::credit_note`),
//! then in one transaction numbers the credit note in its own gapless series, stores it with
//! its lines and PDF, lowers what the invoice owes (void when fully credited), gives credit
//! back, shrinks a referral reward earned from the invoice, records the timeline event and
//! queues the email; gateway refunds are recorded in the same transaction and asked of Stripe
//! only after it commits, under keys derived from the credit note, so that whatever crashes
//! or is retried, a payment is refunded once. A dry-run does all of it and rolls back.

use anyhow::Context;
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::closing::Refused;
use crate::config::BadInput;
use crate::core::credit_note::{
    self, CreditError, CreditLineKind, CreditRequest, Creditable, GatewayRefundStatus, Paid,
    RefundMethod, SettleError,
};
use crate::core::document::{
    CreditNote, CreditNoteLine, CreditNoteRefund, InvoiceStatus, RefundStatus, RerouteTo,
};
use crate::core::ids::{CreditNoteId, InvoiceId};
use crate::core::money::{Money, format_minor};
use crate::core::timeline::TimelineKind;
use crate::gateway::{Gateway, RefundOutcome, RefundRequest};
use crate::jobs::Env;
use crate::store::credit_notes::{self as store, CreditNoteRow, NewCreditNote, RefundRow};
use crate::store::invoices::{self, InvoiceRow};
use crate::store::{Db, Tx, events};

/// The longest reason a credit note takes (it is printed on the PDF).
pub const MAX_REASON_CHARS: usize = 500;

/// What the operator asks.
#[derive(Debug, Clone)]
pub struct Request {
    /// The invoice's number (or id).
    pub invoice: String,
    pub reason: String,
    /// Line indexes from 0.
    pub what: CreditRequest,
    pub method: RefundMethod,
    pub now: DateTime<Utc>,
    pub dry_run: bool,
}

/// A gateway refund asked after commit, and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct RefundReport {
    pub payment_intent: String,
    pub amount: String,
    pub status: GatewayRefundStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Issues a credit note (or, in a dry-run, shows exactly what it would be and changes
/// nothing). Refusals (more than is left, a payment in flight, a refund the payments cannot
/// take) are [`Refused`]: exit code 4.
pub async fn issue(env: &Env, req: &Request) -> anyhow::Result<CreditNote> {
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(BadInput("--reason: a credit note says why it is issued".into()).into());
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(BadInput(format!(
            "--reason: at most {MAX_REASON_CHARS} characters ({} given)",
            reason.chars().count()
        ))
        .into());
    }
    let found = invoices::require(&env.db, &req.invoice).await?;

    let mut tx = env.db.begin().await?;
    if req.dry_run {
        // Decided exactly as a real run decides it, then nothing is written: not even a
        // sequence moves (PostgreSQL's are not rolled back), so nothing changes anywhere.
        let plan = match decide(&mut tx, found.id, req).await {
            Ok(d) => d,
            Err(e) => {
                tx.rollback().await.ok();
                return Err(e);
            }
        };
        tx.rollback().await?;
        let doc = plan.document(req, reason, None);
        // The PDF it would store renders (or the dry-run says why not).
        crate::documents::credit_note_pdf::render(&doc, &env.jobs.invoice.settings.seller)
            .context("rendering the PDF the credit note would have")?;
        return Ok(doc);
    }
    let outcome = match decide(&mut tx, found.id, req).await {
        Ok(d) => store_decision(env, &mut tx, &d, reason, req).await,
        Err(e) => Err(e),
    };
    let (id, number) = match outcome {
        Ok(v) => v,
        Err(e) => {
            tx.rollback().await.ok();
            return Err(e);
        }
    };
    tx.commit().await?;
    info!(credit_note.number = %number, invoice.number = %found.number, account.id = %found.account_id,
        "credit note issued");

    // After commit: the gateway refunds recorded with it.
    let refunds = store::refunds_of(&env.db, id).await?;
    if !refunds.is_empty() {
        let gateway = crate::jobs::collect::build_gateway(env)?;
        for r in &refunds {
            ask_refund(&env.db, &gateway, r, &number, &found.number, req.now).await?;
        }
    }
    let row = store::get(&env.db, id)
        .await?
        .context("the credit note just issued")?;
    store::load_document(&env.db, &row).await
}

/// What a credit note will be, decided in the transaction with the invoice locked: its
/// amounts, lines and settlement, and the payments a gateway refund draws on.
struct Decision {
    inv: InvoiceRow,
    draft: credit_note::CreditDraft,
    settlement: credit_note::Settlement,
    /// (kind, invoice line position, description, amount excluding VAT).
    lines: Vec<(CreditLineKind, Option<i32>, String, i64)>,
    payments: Vec<(i64, String, i64)>,
    prior_notes: Vec<CreditNoteRow>,
}

impl Decision {
    /// The credit note as a document, before it is stored (`id` and number `None` in a
    /// dry-run, whose refund is `planned`).
    fn document(&self, req: &Request, reason: &str, issued: Option<(i64, &str)>) -> CreditNote {
        let inv = &self.inv;
        let m = |minor| Money::new(minor, inv.currency);
        let s = &self.settlement;
        let refunded = s.gateway + s.credit + s.outside;
        CreditNote {
            id: issued.map(|i| CreditNoteId(i.0)),
            number: issued.map(|i| i.1.to_string()),
            invoice_id: InvoiceId(inv.id),
            invoice_number: inv.number.clone(),
            invoice_issued_at: inv.issued_at,
            invoice_period: inv.period,
            account_id: inv.account_id.clone(),
            issued_at: req.now,
            reason: reason.to_string(),
            currency: inv.currency,
            language: inv.language,
            buyer: crate::store::invoice_document::from_row(inv, &[]).buyer,
            lines: self
                .lines
                .iter()
                .map(|(kind, pos, description, amount)| CreditNoteLine {
                    description: description.clone(),
                    invoice_line: pos.and_then(|p| u32::try_from(p).ok()),
                    kind: *kind,
                    amount: m(*amount),
                })
                .collect(),
            subtotal: m(self.draft.subtotal),
            vat_case: inv.tax_case,
            tax_rate: inv.tax_rate.0,
            tax: m(self.draft.tax),
            total: m(self.draft.total),
            refund: CreditNoteRefund {
                method: req.method,
                reduce_due: m(s.reduce_due),
                to_payment_method: m(s.gateway),
                to_credit: m(s.credit),
                outside: m(s.outside),
                status: if refunded == 0 {
                    RefundStatus::NotNeeded
                } else {
                    RefundStatus::Planned
                },
                rerouted: Vec::new(),
            },
        }
    }
}

async fn decide(tx: &mut Tx, invoice_id: i64, req: &Request) -> anyhow::Result<Decision> {
    store::lock_invoice(tx, invoice_id).await?;
    let inv = invoices::get(&mut *tx, invoice_id)
        .await?
        .context("the invoice just found")?;
    match inv.status {
        InvoiceStatus::Pending => {
            return Err(Refused(format!(
                "invoice {} has a payment in flight (SEPA processing or an outcome not known yet): credit it once that payment settles",
                inv.number
            ))
            .into());
        }
        InvoiceStatus::Open
        | InvoiceStatus::Paid
        | InvoiceStatus::Unpaid
        | InvoiceStatus::CarriedForward
        | InvoiceStatus::Void => {}
    }
    // An attempt whose outcome is not known yet may still take the money: crediting before it
    // settles could lower what is owed below what is then collected.
    if store::attempts_in_flight(&mut *tx, invoice_id).await? > 0 {
        return Err(Refused(format!(
            "invoice {} has a payment attempt whose outcome is not known yet: credit it once the collect job has settled it",
            inv.number
        ))
        .into());
    }
    let lines = invoices::lines(&mut *tx, invoice_id).await?;
    let prior = store::lines_of_invoice(&mut *tx, invoice_id).await?;
    let prior_notes = store::of_invoice(&mut *tx, invoice_id).await?;
    let mut credited_lines = vec![0i64; lines.len()];
    let mut credited_other = 0i64;
    for l in &prior {
        match (l.kind, l.invoice_line) {
            (CreditLineKind::Line, Some(pos)) => {
                if let Some(i) = lines.iter().position(|x| x.position == pos) {
                    credited_lines[i] += l.amount_minor;
                }
            }
            (CreditLineKind::Line, None)
            | (CreditLineKind::Gesture, _)
            | (CreditLineKind::Deduction, _) => credited_other += l.amount_minor,
        }
    }
    let creditable = Creditable {
        line_amounts: lines.iter().map(|l| l.amount_minor).collect(),
        discount: inv.discount_minor,
        tax_rate: inv.tax_rate.0,
        tax: inv.tax_minor,
        credited_lines,
        credited_other,
        credited_tax: prior_notes.iter().map(|n| n.tax_minor).sum(),
    };
    let draft =
        credit_note::draft(&creditable, &req.what).map_err(|e| refusal(&inv, &creditable, e))?;

    let payments = store::refundable_payments(&mut *tx, invoice_id).await?;
    let paid = Paid {
        amount_due: inv.amount_due_minor,
        by_gateway: payments.iter().map(|p| p.2.max(0)).sum(),
        by_credit: inv.credit_applied_minor - store::credit_refunded(&mut *tx, invoice_id).await?,
    };
    let settlement = credit_note::settle(draft.total, paid, req.method).map_err(|e| match e {
        SettleError::GatewayExceeded { asked, paid } => anyhow::Error::from(Refused(format!(
            "invoice {}: {} to refund to the payment method, but only {} was paid through it and not refunded yet (use --refund credit or --refund none for the rest)",
            inv.number,
            format_minor(asked),
            format_minor(paid)
        ))),
    })?;

    let lines = draft
        .lines
        .iter()
        .map(|l| {
            let line = l.invoice_line.map(|i| &lines[i]);
            (
                l.kind,
                line.map(|x| x.position),
                credit_note::describe(l.kind, line.map(|x| x.description.as_str()), inv.language),
                l.amount,
            )
        })
        .collect();
    Ok(Decision {
        inv,
        draft,
        settlement,
        lines,
        payments,
        prior_notes,
    })
}

/// Stores a decided credit note with every effect, in the caller's transaction. Returns its
/// id and number.
async fn store_decision(
    env: &Env,
    tx: &mut Tx,
    d: &Decision,
    reason: &str,
    req: &Request,
) -> anyhow::Result<(i64, String)> {
    let (inv, draft, settlement, payments) = (&d.inv, &d.draft, &d.settlement, &d.payments);
    let invoice_id = inv.id;
    let number = store::next_number(tx, req.now.year()).await?;
    let new = NewCreditNote {
        number: &number,
        invoice_id,
        account_id: &inv.account_id,
        issued_at: req.now,
        reason,
        currency: inv.currency,
        language: inv.language,
        subtotal: draft.subtotal,
        tax_case: inv.tax_case,
        tax_rate: inv.tax_rate.0,
        tax: draft.tax,
        total: draft.total,
        method: req.method,
        reduce_due: settlement.reduce_due,
        refund_gateway: settlement.gateway,
        refund_credit: settlement.credit,
        refund_outside: settlement.outside,
        lines: d.lines.clone(),
    };
    let id = store::insert(tx, &new).await?;
    let status =
        store::apply_to_invoice(tx, invoice_id, draft.total, settlement.reduce_due).await?;
    store::refund_to_credit(
        tx,
        &inv.account_id,
        invoice_id,
        &number,
        settlement.credit,
        req.now,
    )
    .await?;
    // The gateway's part, payment by payment in the order they were made, never more than
    // each has left.
    let mut left = settlement.gateway;
    for (attempt_id, pi, refundable) in payments {
        if left == 0 {
            break;
        }
        let amount = left.min(*refundable);
        if amount > 0 {
            store::insert_refund(tx, id, *attempt_id, pi, amount, req.now).await?;
            left -= amount;
        }
    }
    anyhow::ensure!(
        left == 0,
        "the payments of invoice {} cannot take the refund decided ({} left over)",
        inv.number,
        format_minor(left)
    );
    shrink_reward(tx, inv, id, draft.subtotal, &d.prior_notes).await?;
    let message = format!(
        "Credit note {number} for invoice {}: {} credited ({reason})",
        inv.number,
        format_minor(draft.total)
    );
    events::record(
        tx,
        inv.account_id.as_str(),
        req.now,
        TimelineKind::CreditNoteIssued,
        Some(InvoiceId(invoice_id)),
        &message,
    )
    .await?;
    if status == InvoiceStatus::Void {
        events::record(
            tx,
            inv.account_id.as_str(),
            req.now,
            TimelineKind::InvoiceVoided,
            Some(InvoiceId(invoice_id)),
            &format!(
                "Invoice {} fully credited by {number}: nothing is owed on it",
                inv.number
            ),
        )
        .await?;
    }
    let mut doc = d.document(req, reason, Some((id, &number)));
    doc.refund.status = if settlement.gateway > 0 {
        RefundStatus::Pending
    } else if settlement.credit + settlement.outside > 0 {
        RefundStatus::Succeeded
    } else {
        RefundStatus::NotNeeded
    };
    let pdf = crate::documents::credit_note_pdf::render(&doc, &env.jobs.invoice.settings.seller)
        .with_context(|| format!("rendering the PDF of credit note {number}"))?;
    store::save_document(tx, id, &pdf, req.now).await?;
    queue_email(tx, &doc, inv, req.now).await?;
    Ok((id, number))
}

/// The referral reward earned from the invoice shrinks by the credited share of its taxable
/// base; what the referrer already used stays used, and what is left to use never goes below
/// zero (`core::credit_note::shrink_reward`).
async fn shrink_reward(
    tx: &mut Tx,
    inv: &InvoiceRow,
    credit_note_id: i64,
    subtotal: i64,
    prior_notes: &[CreditNoteRow],
) -> anyhow::Result<()> {
    let Some((reward_id, amount, remaining, reduced, cut)) =
        store::reward_of_invoice(tx, inv.id).await?
    else {
        return Ok(());
    };
    let used = amount - remaining - cut;
    let credited_net = prior_notes.iter().map(|n| n.subtotal_minor).sum::<i64>() + subtotal;
    let (now, left) =
        credit_note::shrink_reward(amount, used, inv.taxable_base_minor(), credited_net);
    let reduction = (amount - reduced) - now;
    let remaining_cut = (remaining - left).max(0);
    if reduction > 0 || remaining_cut > 0 {
        store::reduce_reward(
            tx,
            reward_id,
            credit_note_id,
            reduction.max(0),
            remaining_cut,
        )
        .await?;
    }
    Ok(())
}

/// The email that sends the credit note (its PDF attached by the deliver job), once per credit
/// note.
async fn queue_email(
    tx: &mut Tx,
    cn: &CreditNote,
    inv: &InvoiceRow,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let Some(account) = crate::store::accounts::get_account(&mut *tx, &inv.account_id).await?
    else {
        return Ok(());
    };
    if account.email.is_empty() {
        return Ok(());
    }
    let number = cn.number.as_deref().unwrap_or_default();
    crate::store::outbox::enqueue(
        tx,
        &crate::store::outbox::NewEmail {
            account_id: &inv.account_id,
            kind: crate::core::email::EmailKind::CreditNoteIssued,
            dedupe_key: format!("credit_note_issued:{number}"),
            language: cn.language,
            to_address: &account.email,
            invoice_id: Some(inv.id),
            data: email_data(cn),
            at,
        },
    )
    .await?;
    Ok(())
}

/// The data of the `credit_note_issued` email: the documents crate's keys, and the credit
/// note's id for the deliver job to attach its stored PDF.
pub fn email_data(cn: &CreditNote) -> serde_json::Value {
    let mut data = crate::documents::email::credit_note_issued_data(cn);
    data.insert("credit_note_id".into(), cn.id.map(|i| i.0).into());
    serde_json::Value::Object(data)
}

/// A refusal of the core's rules, in euros and naming what is left to credit.
fn refusal(inv: &InvoiceRow, c: &Creditable, e: CreditError) -> anyhow::Error {
    let left = c.left().unwrap_or(0);
    let text = match e {
        CreditError::NotPositive => "nothing to credit: an amount must be above zero".to_string(),
        CreditError::NoSuchLine(line, n) => format!("the invoice has no line {line} (it has {n})"),
        CreditError::LineExceeded { line, asked, left } => format!(
            "line {line}: {} asked, {} left to credit on it (excluding VAT)",
            format_minor(asked),
            format_minor(left)
        ),
        CreditError::InvoiceExceeded { asked, left } => format!(
            "{} asked, {} left to credit on the invoice (excluding VAT)",
            format_minor(asked),
            format_minor(left)
        ),
        CreditError::NothingLeft => "it is already fully credited".to_string(),
        CreditError::Overflow(o) => o.to_string(),
    };
    Refused(format!(
        "invoice {}: {text}; {} left to credit in all (excluding VAT)",
        inv.number,
        format_minor(left)
    ))
    .into()
}

/// Asks the gateway for one recorded refund and records its answer. An unknown answer stays
/// open: the collect job asks again under the same key ([`retry_open_refunds`]).
pub async fn ask_refund(
    db: &Db,
    gateway: &Gateway,
    r: &RefundRow,
    credit_note_number: &str,
    invoice_number: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<RefundReport> {
    let outcome = gateway
        .refund(&RefundRequest {
            idempotency_key: r.idempotency_key.clone(),
            payment_intent: r.payment_intent_id.clone(),
            amount_minor: r.amount_minor,
            credit_note_number: credit_note_number.to_string(),
            invoice_number: invoice_number.to_string(),
        })
        .await;
    use GatewayRefundStatus as G;
    let (status, refund, message) = match outcome {
        Ok(RefundOutcome::Succeeded { refund }) => (G::Succeeded, Some(refund), None),
        Ok(RefundOutcome::Pending { refund }) => (G::Pending, Some(refund), None),
        Ok(RefundOutcome::Failed { refund, reason }) => (G::Failed, refund, Some(reason)),
        Ok(RefundOutcome::Unknown { reason }) => (G::Unknown, None, Some(reason)),
        Err(e) => (G::Unknown, None, Some(e.to_string())),
    };
    match status {
        G::Failed | G::Unknown => warn!(credit_note.number = %credit_note_number, refund.id = r.id,
            amount_minor = r.amount_minor, status = status.as_str(),
            reason = message.as_deref().unwrap_or(""), "refund not made"),
        G::Succeeded | G::Pending | G::Requested | G::Rerouted => info!(
            credit_note.number = %credit_note_number, refund.id = r.id,
            amount_minor = r.amount_minor, status = status.as_str(), "refund asked"),
    }
    let mut tx = db.begin().await?;
    store::settle_refund(
        &mut tx,
        r.id,
        status,
        refund.as_deref(),
        message.as_deref(),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(RefundReport {
        payment_intent: r.payment_intent_id.clone(),
        amount: format_minor(r.amount_minor),
        status,
        message,
    })
}

/// Asks again every refund with no conclusive answer (a crash after commit, a timeout, a 5xx):
/// the same request under the same key, so each is made once. The collect job runs it first.
pub async fn retry_open_refunds(
    env: &Env,
    gateway: &Gateway,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<RefundReport>> {
    let mut out = Vec::new();
    for r in store::open_refunds(&env.db).await? {
        let Some(cn) = store::get(&env.db, r.credit_note_id).await? else {
            continue;
        };
        let inv = invoices::get(&env.db, cn.invoice_id)
            .await?
            .context("a credit note's invoice")?;
        out.push(ask_refund(&env.db, gateway, &r, &cn.number, &inv.number, now).await?);
    }
    Ok(out)
}

/// What the operator asks of a failed gateway refund (`credit-notes refund`).
#[derive(Debug, Clone)]
pub struct RerouteRequest {
    /// The credit note's number (AV-2026-000001).
    pub credit_note: String,
    pub to: RerouteTo,
    pub reason: Option<String>,
    pub now: DateTime<Utc>,
    pub dry_run: bool,
}

/// What was (or, in a dry-run, would be) re-routed.
#[derive(Debug, Clone, Serialize)]
pub struct RerouteReport {
    pub credit_note: String,
    pub account_id: String,
    pub to: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub dry_run: bool,
    pub refunds: Vec<RefundReport>,
    /// What was (would be) given to the prepaid credit in all.
    pub amount: String,
    /// The account's prepaid credit after it (`--to credit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_balance: Option<String>,
}

/// Settles a credit note's `failed` gateway refunds otherwise: to the account's prepaid credit
/// (a `refund` row of the credit ledger, booked in the FEC 411/4191 on that day) or outside
/// billrun (recorded with its reason; no entry, as `--refund none`). One transaction with its
/// timeline event. Only a failed refund is re-routed: a requested, pending or unknown one may
/// still succeed, a succeeded one is done, a re-routed one was settled ([`Refused`], exit 4).
/// A dry-run reads and writes nothing.
pub async fn reroute(env: &Env, req: &RerouteRequest) -> anyhow::Result<RerouteReport> {
    let reason = match req.reason.as_deref().map(str::trim) {
        Some("") => {
            return Err(BadInput("--reason: say why, or leave it out".into()).into());
        }
        Some(r) if r.chars().count() > MAX_REASON_CHARS => {
            return Err(BadInput(format!(
                "--reason: at most {MAX_REASON_CHARS} characters ({} given)",
                r.chars().count()
            ))
            .into());
        }
        Some(r) => Some(r.to_string()),
        None => None,
    };
    if req.to == RerouteTo::None && reason.is_none() {
        return Err(BadInput(
            "--to none: --reason says how it was paid outside billrun (e.g. the bank transfer)"
                .into(),
        )
        .into());
    }
    let cn = store::find(&env.db, &req.credit_note)
        .await?
        .ok_or_else(|| {
            BadInput(format!(
                "no credit note `{}`",
                crate::core::bounds::excerpt(&req.credit_note)
            ))
        })?;
    let mut tx = env.db.begin().await?;
    let outcome = reroute_in(&mut tx, &cn, req, reason.as_deref()).await;
    match outcome {
        Ok(report) if !req.dry_run => {
            tx.commit().await?;
            info!(credit_note.number = %cn.number, account.id = %cn.account_id, to = report.to,
                amount = %report.amount, "failed refund re-routed");
            Ok(report)
        }
        Ok(report) => {
            tx.rollback().await?;
            Ok(report)
        }
        Err(e) => {
            tx.rollback().await.ok();
            Err(e)
        }
    }
}

async fn reroute_in(
    tx: &mut Tx,
    cn: &CreditNoteRow,
    req: &RerouteRequest,
    reason: Option<&str>,
) -> anyhow::Result<RerouteReport> {
    store::lock_invoice(tx, cn.invoice_id).await?;
    let refunds = store::refunds_of(&mut *tx, cn.id).await?;
    let failed: Vec<&RefundRow> = refunds
        .iter()
        .filter(|r| r.status == GatewayRefundStatus::Failed)
        .collect();
    if failed.is_empty() {
        let statuses = if refunds.is_empty() {
            "it has no refund through the gateway".to_string()
        } else {
            let list: Vec<String> = refunds
                .iter()
                .map(|r| {
                    format!(
                        "{} on {}: {}",
                        format_minor(r.amount_minor),
                        r.payment_intent_id,
                        r.status
                    )
                })
                .collect();
            format!("its refunds are {}", list.join(", "))
        };
        return Err(Refused(format!(
            "credit note {}: no failed refund to settle ({statuses}); only a failed one can be re-routed: a requested, pending or unknown one may still succeed, a succeeded or re-routed one is settled",
            cn.number
        ))
        .into());
    }
    let total: i64 = failed.iter().map(|r| r.amount_minor).sum();
    let mut credit_balance = None;
    if !req.dry_run {
        for r in &failed {
            anyhow::ensure!(
                store::reroute_refund(tx, r.id, req.to, reason, req.now).await?,
                "refund {} of credit note {} changed while it was re-routed",
                r.id,
                cn.number
            );
            match req.to {
                RerouteTo::Credit => {
                    store::give_credit(
                        tx,
                        cn.account_id.as_str(),
                        cn.invoice_id,
                        &store::reroute_reference(&cn.number, r.id),
                        r.amount_minor,
                        req.now,
                    )
                    .await?;
                }
                RerouteTo::None => {}
            }
        }
        let message = match req.to {
            RerouteTo::Credit => format!(
                "Failed refund of credit note {} given to the prepaid credit instead: {}{}",
                cn.number,
                format_minor(total),
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
            RerouteTo::None => format!(
                "Failed refund of credit note {} paid outside billrun: {} ({})",
                cn.number,
                format_minor(total),
                reason.unwrap_or_default()
            ),
        };
        events::record(
            tx,
            cn.account_id.as_str(),
            req.now,
            TimelineKind::CreditNoteRefundRerouted,
            Some(InvoiceId(cn.invoice_id)),
            &message,
        )
        .await?;
    }
    if req.to == RerouteTo::Credit {
        let balance =
            crate::store::collection::credit_balance(&mut *tx, cn.account_id.as_str()).await?;
        // In a dry-run nothing was written: what the balance would be.
        let after = if req.dry_run {
            balance + total
        } else {
            balance
        };
        credit_balance = Some(format_minor(after));
    }
    Ok(RerouteReport {
        credit_note: cn.number.clone(),
        account_id: cn.account_id.to_string(),
        to: req.to.as_str(),
        reason: reason.map(str::to_string),
        dry_run: req.dry_run,
        refunds: failed
            .iter()
            .map(|r| RefundReport {
                payment_intent: r.payment_intent_id.clone(),
                amount: format_minor(r.amount_minor),
                status: if req.dry_run {
                    GatewayRefundStatus::Failed
                } else {
                    GatewayRefundStatus::Rerouted
                },
                message: r.failure_message.clone(),
            })
            .collect(),
        amount: format_minor(total),
        credit_balance,
    })
}
