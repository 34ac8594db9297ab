//! The `deliver` job: sends the outbox's pending emails.
//!
//! At the SMTP step delivery is **at-least-once**, on purpose. A row is claimed (status
//! `sending`, for `claim_seconds`) before it is sent and marked `sent` after the server accepts
//! it. Two deliverers never hold the same row at once, so in normal operation each email goes
//! out once. If a deliverer crashes after the server accepted a message but before the row was
//! marked, the claim expires and the row is sent again — with the same Message-ID, so that mail
//! systems and people can recognise the duplicate. The other choice (mark first, send after)
//! would lose that email instead; for invoices, payment failures and deletion confirmations a
//! rare duplicate is the lesser harm.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use tracing::{info, warn};

use super::documents::CannotRender;
use super::{Count, Env, Failure, JobName, JobReport, RunOptions};
use crate::config::BadInput;
use crate::core::email::EmailKind;
use crate::documents::email::{RenderedEmail, Templates};
use crate::store::delivery::{self, OutboxRow};
use crate::store::redact_url;

/// What the job did, or would do, with one email.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeliveryItem {
    pub outbox_id: i64,
    pub kind: EmailKind,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub outcome: DeliveryOutcome,
    pub error: Option<String>,
}

/// What the deliver job did (or would do) with one email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// A dry-run: it would send it.
    Planned,
    /// Accepted by the SMTP server.
    Sent,
    /// Not sent now: it stays pending for the next run.
    Retry,
    /// Rejected for good, or could not be built.
    Failed,
}

impl DeliveryOutcome {
    /// The outcome's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Planned => "planned",
            DeliveryOutcome::Sent => "sent",
            DeliveryOutcome::Retry => "retry",
            DeliveryOutcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for DeliveryOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

enum Transport {
    /// The transport and the server's port (see [`smtp_port`]).
    Smtp(AsyncSmtpTransport<Tokio1Executor>, Option<u16>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// The SMTP URL in force: `BILLRUN_SMTP_URL` (given by the caller) or the setting.
fn transport(env: &Env) -> anyhow::Result<(Transport, String)> {
    let s = &env.jobs.deliver.settings;
    let url = env
        .smtp_url
        .as_ref()
        .map_or_else(|| s.smtp_url.clone(), |u| u.0.clone());
    if url.trim().is_empty() {
        std::fs::create_dir_all(&s.outbox_dir)
            .with_context(|| format!("creating {}", s.outbox_dir))?;
        return Ok((
            Transport::Files(AsyncFileTransport::new(&s.outbox_dir)),
            format!(".eml files in {}/", s.outbox_dir),
        ));
    }
    let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
        .map_err(|e| BadInput(format!("bad SMTP URL `{}`: {e}", redact_url(&url))))?
        .timeout(Some(Duration::from_secs(s.smtp_timeout_seconds)))
        .pool_config(PoolConfig::new().max_size(s.concurrency.max(1)))
        .build();
    Ok((Transport::Smtp(t, smtp_port(&url)), redact_url(&url)))
}

/// The port lettre connects to for `url`: the URL's, else its default for the scheme and `tls`
/// (smtp 25, smtp with `tls=required|opportunistic` 587, smtps 465).
///
/// lettre does not set `TCP_NODELAY` and writes a message's end (`\r\n.\r\n`) apart from its
/// body: Nagle's algorithm then holds that end until the server acknowledges the body, and a
/// server that delays its ACKs (Linux's default) adds ~40 ms to every message (README
/// "Benchmarks", `--smtp-delayed-ack`). After each send the job sets `TCP_NODELAY` on its
/// sockets to this port, as the PostgreSQL pool does (`crate::nodelay`): a pooled connection
/// waits at most once.
fn smtp_port(url: &str) -> Option<u16> {
    let u = url::Url::parse(url).ok()?;
    let tls = u
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    u.port().or(match (u.scheme(), tls.as_deref()) {
        ("smtp", None) => Some(25),
        ("smtp", Some(_)) => Some(587),
        ("smtps", _) => Some(465),
        _ => None,
    })
}

pub async fn run(env: &Env, opts: &RunOptions) -> anyhow::Result<JobReport> {
    let mut report = JobReport::new(JobName::Deliver, opts);
    let s = &env.jobs.deliver.settings;
    let from: Mailbox = s
        .from
        .parse()
        .map_err(|e| BadInput(format!("deliver.toml: from: {e}")))?;
    let templates = match &env.templates_dir {
        Some(dir) => Templates::from_dir(dir)?,
        None => Templates::builtin(),
    };
    let (transport, label) = if opts.dry_run {
        (None, String::new())
    } else {
        let (t, l) = transport(env)?;
        (Some(t), l)
    };
    if !opts.dry_run {
        report.notes.push(format!("delivering to {label}"));
    }
    let token = format!(
        "deliverer-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let lane = Lane {
        env,
        opts,
        templates: &templates,
        from: &from,
        transport: transport.as_ref(),
        token: &token,
    };
    // Several accounts at once: each email waits on a handful of round trips (the claim, the
    // PDF, the SMTP exchange, the mark), so one at a time left the job idle. An account's
    // emails stay in queue order, one after the other. Dry runs touch nothing: one lane.
    let width = if opts.dry_run {
        1
    } else {
        s.concurrency.max(1) as usize
    };
    let mut after = 0;
    loop {
        if opts.stop.requested() {
            report.stop_early();
            break;
        }
        let rows = delivery::due(&env.db, opts.now, after, i64::from(s.batch_size)).await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        let mut by_account: Vec<Vec<(usize, OutboxRow)>> = Vec::new();
        let mut lane_of: HashMap<String, usize> = HashMap::new();
        for (i, row) in rows.into_iter().enumerate() {
            if !opts.accounts.is_empty()
                && !opts.accounts.iter().any(|a| a.as_str() == row.account_id)
            {
                continue;
            }
            let l = *lane_of.entry(row.account_id.clone()).or_insert_with(|| {
                by_account.push(Vec::new());
                by_account.len() - 1
            });
            by_account[l].push((i, row));
        }
        let lane = &lane;
        let done = futures_util::stream::iter(by_account.into_iter().map(|rows| async move {
            let mut done = Vec::with_capacity(rows.len());
            for (i, row) in rows {
                let outcome = lane.deliver_one(row).await;
                let failed = outcome.is_err();
                done.push((i, outcome));
                if failed {
                    // The account's later emails wait for the next run, in order.
                    break;
                }
            }
            done
        }))
        .buffer_unordered(width)
        .collect::<Vec<_>>()
        .await;
        // Reported in queue order, whatever order the accounts finished in; a store error
        // ends the run once every lane has finished what it started.
        let mut done: Vec<_> = done.into_iter().flatten().collect();
        done.sort_by_key(|(i, _)| *i);
        let mut error = None;
        for (_, outcome) in done {
            match outcome {
                Ok(d) => {
                    if let Some(c) = d.count {
                        report.bump(c);
                    }
                    report.failures.extend(d.failure);
                    report.deliveries.extend(d.item);
                }
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        // `--counts-only` (the daemon, the bench): each batch's items are dropped once
        // counted, so that a run over a large outbox keeps flat memory.
        if opts.counts_only {
            report.deliveries.clear();
        }
    }
    if report.counts.get(&Count::ToRetry).is_some_and(|n| *n > 0) {
        warn!(
            count = report.counts[&Count::ToRetry],
            "some emails could not be sent now; they stay pending"
        );
    }
    Ok(report)
}

/// What one email's delivery adds to the report.
struct Delivered {
    count: Option<Count>,
    failure: Option<Failure>,
    item: Option<DeliveryItem>,
}

/// What every email of a run shares.
struct Lane<'a> {
    env: &'a Env,
    opts: &'a RunOptions,
    templates: &'a Templates,
    from: &'a Mailbox,
    /// None on a dry run.
    transport: Option<&'a Transport>,
    token: &'a str,
}

impl Lane<'_> {
    /// Claims, builds, sends and marks one email. An error is the store's: the row stays
    /// claimed and goes out again once its claim expires.
    async fn deliver_one(&self, row: OutboxRow) -> anyhow::Result<Delivered> {
        let (env, opts) = (self.env, self.opts);
        let s = &env.jobs.deliver.settings;
        let message_id = row
            .message_id
            .clone()
            .unwrap_or_else(|| message_id_for(&row, self.from));
        let mut it = DeliveryItem {
            outbox_id: row.id,
            kind: row.kind,
            to: row.to_address.clone(),
            subject: String::new(),
            message_id: message_id.clone(),
            outcome: DeliveryOutcome::Planned,
            error: None,
        };
        let failure = |reason: &str| Failure {
            item: format!("email {} ({})", row.id, row.kind),
            error: reason.to_string(),
        };
        let rendered = render(env, self.templates, &row);
        if let Ok(m) = &rendered {
            it.subject = m.subject.clone();
        }
        let Some(transport) = self.transport else {
            if let Err(e) = &rendered {
                it.error = Some(format!("{e:#}"));
            }
            return Ok(Delivered {
                count: Some(Count::WouldSend),
                failure: None,
                item: Some(it),
            });
        };
        let until = opts.now + chrono::Duration::seconds(s.claim_seconds as i64);
        if !delivery::claim(&env.db, row.id, self.token, opts.now, until, &message_id).await? {
            return Ok(Delivered {
                count: Some(Count::HeldByAnotherDeliverer),
                failure: None,
                item: None,
            });
        }
        let attachment = match (row.kind, row.invoice_id) {
            (EmailKind::InvoiceIssued, Some(invoice_id)) => attachment(env, invoice_id).await,
            (EmailKind::CreditNoteIssued, _) => credit_note_attachment(env, &row.data).await,
            // Every invoice email names its invoice; the other kinds attach nothing.
            (EmailKind::InvoiceIssued, None)
            | (
                EmailKind::PaymentSucceeded
                | EmailKind::PaymentFailed
                | EmailKind::ActionRequired
                | EmailKind::AccountSuspended
                | EmailKind::DataDeletionWarning
                | EmailKind::AccountDeletionConfirmation
                | EmailKind::AccountDeleted
                | EmailKind::HdsReviewReminder
                | EmailKind::PaymentDisputed,
                _,
            ) => Ok(None),
        };
        // A PDF that cannot be rendered fails the email as a template problem does; any other
        // error is the store's.
        let attachment = match attachment {
            Err(e) if !e.is::<CannotRender>() => return Err(e),
            a => a,
        };
        let message = match rendered
            .and_then(|m| build(m, self.from, &row, &message_id, opts.now, attachment?))
        {
            Ok(m) => m,
            Err(e) => {
                // A template or data problem does not heal by retrying: failed, with the reason.
                let reason = format!("cannot build the email: {e:#}");
                delivery::mark_failed(&env.db, row.id, self.token, &reason).await?;
                warn!(outbox.id = row.id, account.id = %row.account_id, error = %reason, "email failed");
                it.outcome = DeliveryOutcome::Failed;
                it.error = Some(reason.clone());
                return Ok(Delivered {
                    count: None,
                    failure: Some(failure(&reason)),
                    item: Some(it),
                });
            }
        };
        let sent = match transport {
            Transport::Smtp(t, port) => {
                let sent = t.send(message).await;
                if let Some(port) = port {
                    crate::nodelay::set_on_sockets_to(*port);
                }
                sent.map(|_| ()).map_err(SendError::Smtp)
            }
            Transport::Files(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Other(e.to_string())),
        };
        let (count, failed) = match sent {
            Ok(()) => {
                delivery::mark_sent(&env.db, row.id, self.token, opts.now).await?;
                info!(outbox.id = row.id, account.id = %row.account_id, kind = %row.kind, "email sent");
                it.outcome = DeliveryOutcome::Sent;
                (Some(Count::Sent), None)
            }
            Err(SendError::Smtp(e)) if e.is_permanent() => {
                let reason = format!("rejected by the SMTP server: {e}");
                delivery::mark_failed(&env.db, row.id, self.token, &reason).await?;
                warn!(outbox.id = row.id, account.id = %row.account_id, error = %reason, "email rejected");
                it.outcome = DeliveryOutcome::Failed;
                it.error = Some(reason.clone());
                (Some(Count::Rejected), Some(failure(&reason)))
            }
            Err(e) => {
                let reason = e.to_string();
                let attempts = row.attempts as u32 + 1;
                if attempts >= s.max_attempts {
                    let reason = format!("gave up after {attempts} attempts: {reason}");
                    delivery::mark_failed(&env.db, row.id, self.token, &reason).await?;
                    it.outcome = DeliveryOutcome::Failed;
                    it.error = Some(reason.clone());
                    (None, Some(failure(&reason)))
                } else {
                    let wait = s.retry_backoff_seconds
                        [(attempts as usize - 1).min(s.retry_backoff_seconds.len() - 1)];
                    let next = opts.now + chrono::Duration::seconds(wait as i64);
                    delivery::mark_retry(&env.db, row.id, self.token, next, &reason).await?;
                    it.outcome = DeliveryOutcome::Retry;
                    it.error = Some(reason);
                    (Some(Count::ToRetry), None)
                }
            }
        };
        Ok(Delivered {
            count,
            failure: failed,
            item: Some(it),
        })
    }
}

enum SendError {
    Smtp(lettre::transport::smtp::Error),
    Other(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Smtp(e) => write!(f, "SMTP: {e}"),
            SendError::Other(e) => f.write_str(e),
        }
    }
}

/// A stable Message-ID: the same row always gets the same one.
fn message_id_for(row: &OutboxRow, from: &Mailbox) -> String {
    let domain = from.email.domain().to_string();
    let hash = crate::store::documents::sha256_hex(row.dedupe_key.as_bytes());
    format!("<billrun.{}.{}@{domain}>", row.id, &hash[..12])
}

/// The invoice's PDF, named after its number: the stored one, or rendered and stored now when
/// the process that issued the invoice stopped before its documents step. An invoice email
/// never leaves without its PDF.
async fn attachment(env: &Env, invoice_id: i64) -> anyhow::Result<Option<(String, Vec<u8>)>> {
    Ok(super::documents::invoice_pdf(env, invoice_id)
        .await?
        .map(|(pdf, number)| (format!("invoice-{number}.pdf"), pdf)))
}

/// The credit note's stored PDF, named after its number (the email's data names the credit
/// note).
async fn credit_note_attachment(
    env: &Env,
    data: &str,
) -> anyhow::Result<Option<(String, Vec<u8>)>> {
    let data: serde_json::Value = serde_json::from_str(data).context("outbox data is not JSON")?;
    let Some(id) = data
        .get("credit_note_id")
        .and_then(serde_json::Value::as_i64)
    else {
        return Ok(None);
    };
    let Some(row) = crate::store::credit_notes::get(&env.db, id).await? else {
        return Ok(None);
    };
    Ok(crate::store::credit_notes::document(&env.db, id)
        .await?
        .map(|(pdf, _)| (format!("credit-note-{}.pdf", row.number), pdf)))
}

/// Renders the row's template with its data and the common values.
fn render(env: &Env, templates: &Templates, row: &OutboxRow) -> anyhow::Result<RenderedEmail> {
    let s = &env.jobs.deliver.settings;
    let mut data: serde_json::Value =
        serde_json::from_str(&row.data).context("outbox data is not JSON")?;
    let obj = data
        .as_object_mut()
        .context("outbox data is not an object")?;
    // An email queued for an account being deleted carries the name it was queued with (the
    // profile is stripped before the farewell email goes out).
    obj.entry("account_name")
        .or_insert_with(|| row.account_name.clone().into());
    obj.insert(
        "seller_name".into(),
        env.jobs.invoice.settings.seller.name.clone().into(),
    );
    obj.insert("dashboard_url".into(), s.dashboard_url.clone().into());
    obj.insert("support_email".into(), s.support_email.clone().into());
    Ok(templates.render(row.kind, &row.language, &data)?)
}

fn build(
    email: RenderedEmail,
    from: &Mailbox,
    row: &OutboxRow,
    message_id: &str,
    now: DateTime<Utc>,
    attachment: Option<(String, Vec<u8>)>,
) -> anyhow::Result<Message> {
    let to: Mailbox = row
        .to_address
        .parse()
        .with_context(|| format!("bad address `{}`", row.to_address))?;
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject)
        .message_id(Some(message_id.to_string()))
        .date(std::time::SystemTime::from(now));
    let body = MultiPart::alternative_plain_html(email.text, email.html);
    let message = match attachment {
        Some((name, pdf)) => {
            builder.multipart(MultiPart::mixed().multipart(body).singlepart(
                Attachment::new(name).body(pdf, ContentType::parse("application/pdf")?),
            ))?
        }
        None => builder.multipart(body)?,
    };
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::smtp_port;

    #[test]
    fn the_smtp_port_is_the_one_lettre_connects_to() {
        assert_eq!(smtp_port("smtp://127.0.0.1:2525"), Some(2525));
        assert_eq!(smtp_port("smtp://user:pass@mail.example.com"), Some(25));
        assert_eq!(smtp_port("smtp://mail.example.com?tls=required"), Some(587));
        assert_eq!(
            smtp_port("smtp://mail.example.com:2587?tls=opportunistic"),
            Some(2587)
        );
        assert_eq!(smtp_port("smtps://mail.example.com"), Some(465));
        assert_eq!(smtp_port("not a url"), None);
    }
}
