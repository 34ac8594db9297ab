//! Prometheus metrics of this process's runs, served by the daemon at `/metrics` in the text
//! exposition format. Kept by hand (a few counters and sums) rather than through a metrics
//! crate: what is counted comes from each run's report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::jobs::{Count, JobName, JobReport};
use crate::store::runs::RunStatus;
use crate::stripe_webhook::{EventOutcome, EventType};

/// What became of one event posted to the daemon's `POST /webhooks/stripe`
/// (`billrun_stripe_webhook_events_total{outcome=…}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WebhookDelivery {
    /// Stored (or found stored already): what applying it did.
    Event(EventOutcome),
    /// Refused with 400: a bad or stale signature, not a Stripe event, a malformed one.
    Rejected,
    /// Could not be applied (500, rolled back): Stripe sends it again.
    Failed,
}

impl WebhookDelivery {
    fn as_str(self) -> &'static str {
        match self {
            WebhookDelivery::Event(outcome) => outcome.as_str(),
            WebhookDelivery::Rejected => "rejected",
            WebhookDelivery::Failed => "failed",
        }
    }
}

#[derive(Default)]
struct State {
    /// (job, status) → runs.
    runs: BTreeMap<(String, String), u64>,
    /// job → (Σ seconds, count).
    durations: BTreeMap<String, (f64, u64)>,
    /// job → unix time of the last run that succeeded.
    last_success: BTreeMap<String, i64>,
    invoices_issued: u64,
    /// outcome → charges.
    charges: BTreeMap<String, u64>,
    /// status → emails.
    emails: BTreeMap<String, u64>,
    /// job → failed items and failed runs.
    errors: BTreeMap<String, u64>,
    /// (event type, `None` when refused before it was read; outcome) → events.
    webhook_events: BTreeMap<(Option<EventType>, WebhookDelivery), u64>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Counts one finished run.
pub fn record_run(job: JobName, status: RunStatus, took: Duration, report: Option<&JobReport>) {
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let s = guard.get_or_insert_with(State::default);
    let j = job.as_str().to_string();
    *s.runs
        .entry((j.clone(), status.as_str().to_string()))
        .or_default() += 1;
    let d = s.durations.entry(j.clone()).or_default();
    d.0 += took.as_secs_f64();
    d.1 += 1;
    match status {
        RunStatus::Succeeded => {
            s.last_success
                .insert(j.clone(), chrono::Utc::now().timestamp());
        }
        RunStatus::Running | RunStatus::Failed | RunStatus::Interrupted => {}
    }
    let errors = match report {
        Some(r) => r.failures.len() as u64,
        None => 1,
    };
    *s.errors.entry(j).or_default() += errors;
    let Some(r) = report else { return };
    for &key in exported(job) {
        let n = r.counts.get(&key).copied().unwrap_or(0);
        match metric(key) {
            Some(Metric::InvoicesIssued) => s.invoices_issued += n,
            Some(Metric::Charges(outcome)) => {
                *s.charges.entry(outcome.to_string()).or_default() += n
            }
            Some(Metric::Emails(status)) => *s.emails.entry(status.to_string()).or_default() += n,
            None => {}
        }
    }
}

/// Counts one event posted to `POST /webhooks/stripe`.
pub fn record_webhook(event_type: Option<EventType>, delivery: WebhookDelivery) {
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let s = guard.get_or_insert_with(State::default);
    *s.webhook_events.entry((event_type, delivery)).or_default() += 1;
}

/// The counts a job's runs add to the metrics (each shown, at zero too, once the job ran).
fn exported(job: JobName) -> &'static [Count] {
    match job {
        JobName::Invoice => &[Count::Invoiced],
        JobName::Collect => &[
            Count::Paid,
            Count::FailedAttempts,
            Count::Pending,
            Count::OutcomeUnknown,
            Count::CarriedForward,
            Count::Waived,
        ],
        JobName::Deliver => &[Count::Sent, Count::Rejected, Count::ToRetry],
        JobName::Suspend | JobName::Hds | JobName::Delete | JobName::VatCheck => &[],
    }
}

/// Where a count goes in the metrics.
enum Metric {
    InvoicesIssued,
    /// `billrun_charges_total` with this outcome.
    Charges(&'static str),
    /// `billrun_emails_total` with this status.
    Emails(&'static str),
}

/// Every count's place in the metrics, or `None`: a new count is placed (or left out) on
/// purpose.
fn metric(key: Count) -> Option<Metric> {
    Some(match key {
        Count::Invoiced => Metric::InvoicesIssued,
        Count::Paid => Metric::Charges("succeeded"),
        Count::FailedAttempts => Metric::Charges("failed"),
        Count::Pending => Metric::Charges("processing"),
        Count::OutcomeUnknown => Metric::Charges("unknown"),
        Count::CarriedForward => Metric::Charges("carried_forward"),
        Count::Waived => Metric::Charges("waived"),
        Count::Sent => Metric::Emails("sent"),
        Count::Rejected => Metric::Emails("rejected"),
        Count::ToRetry => Metric::Emails("to_retry"),
        Count::WouldInvoice
        | Count::AlreadyInvoiced
        | Count::AccountDeleted
        | Count::NothingToBill
        | Count::RegroupedOneByOne
        | Count::WouldCollect
        | Count::HandledByAnotherRun
        | Count::WaitingForRetry
        | Count::RetriesExhausted
        | Count::WouldSuspend
        | Count::WouldReactivate
        | Count::WouldWarn
        | Count::WouldQueueDeletion
        | Count::Suspended
        | Count::Reactivated
        | Count::Warned
        | Count::QueuedForDeletion
        | Count::Unchanged
        | Count::WouldRemind
        | Count::Reminded
        | Count::WouldDelete
        | Count::WouldWaitForEmails
        | Count::Deleted
        | Count::WaitingForEmails
        | Count::WouldSend
        | Count::HeldByAnotherDeliverer
        | Count::WouldCheck
        | Count::Valid
        | Count::Invalid
        | Count::Unavailable => return None,
    })
}

/// The metrics in Prometheus' text format.
pub fn render() -> String {
    let guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let empty = State::default();
    let s = guard.as_ref().unwrap_or(&empty);
    let mut out = String::new();
    let head = |name: &str, kind: &str, help: &str, out: &mut String| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    head(
        "billrun_job_runs_total",
        "counter",
        "Job runs finished, by job and status.",
        &mut out,
    );
    for ((job, status), n) in &s.runs {
        let _ = writeln!(
            out,
            "billrun_job_runs_total{{job=\"{job}\",status=\"{status}\"}} {n}"
        );
    }
    head(
        "billrun_job_run_duration_seconds",
        "summary",
        "Wall time of job runs.",
        &mut out,
    );
    for (job, (sum, n)) in &s.durations {
        let _ = writeln!(
            out,
            "billrun_job_run_duration_seconds_sum{{job=\"{job}\"}} {sum:.6}"
        );
        let _ = writeln!(
            out,
            "billrun_job_run_duration_seconds_count{{job=\"{job}\"}} {n}"
        );
    }
    head(
        "billrun_job_last_success_timestamp_seconds",
        "gauge",
        "When each job last succeeded (unix time).",
        &mut out,
    );
    for (job, t) in &s.last_success {
        let _ = writeln!(
            out,
            "billrun_job_last_success_timestamp_seconds{{job=\"{job}\"}} {t}"
        );
    }
    head(
        "billrun_invoices_issued_total",
        "counter",
        "Invoices finalized.",
        &mut out,
    );
    let _ = writeln!(out, "billrun_invoices_issued_total {}", s.invoices_issued);
    head(
        "billrun_charges_total",
        "counter",
        "Collection outcomes, by outcome.",
        &mut out,
    );
    for (outcome, n) in &s.charges {
        let _ = writeln!(out, "billrun_charges_total{{outcome=\"{outcome}\"}} {n}");
    }
    head(
        "billrun_emails_total",
        "counter",
        "Emails handed to SMTP, by result.",
        &mut out,
    );
    for (status, n) in &s.emails {
        let _ = writeln!(out, "billrun_emails_total{{status=\"{status}\"}} {n}");
    }
    head(
        "billrun_errors_total",
        "counter",
        "Items that failed and runs that could not run, by job.",
        &mut out,
    );
    for (job, n) in &s.errors {
        let _ = writeln!(out, "billrun_errors_total{{job=\"{job}\"}} {n}");
    }
    head(
        "billrun_stripe_webhook_events_total",
        "counter",
        "Events posted to POST /webhooks/stripe, by event type (`unknown`: refused before it was read; `other`: a type billrun does not handle) and outcome.",
        &mut out,
    );
    for ((event_type, delivery), n) in &s.webhook_events {
        let _ = writeln!(
            out,
            "billrun_stripe_webhook_events_total{{type=\"{}\",outcome=\"{}\"}} {n}",
            event_type.map_or("unknown", EventType::as_str),
            delivery.as_str()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_their_outcomes_are_counted() {
        let opts = crate::jobs::RunOptions::at(chrono::Utc::now());
        let mut r = JobReport::new(JobName::Collect, &opts);
        r.counts.insert(Count::Paid, 3);
        r.counts.insert(Count::FailedAttempts, 2);
        record_run(
            JobName::Collect,
            RunStatus::Succeeded,
            Duration::from_millis(1500),
            Some(&r),
        );
        record_run(
            JobName::Invoice,
            RunStatus::Failed,
            Duration::from_millis(10),
            None,
        );
        let text = render();
        assert!(
            text.contains("billrun_job_runs_total{job=\"collect\",status=\"succeeded\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("billrun_job_runs_total{job=\"invoice\",status=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("billrun_charges_total{outcome=\"succeeded\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("billrun_charges_total{outcome=\"failed\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("billrun_errors_total{job=\"invoice\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("billrun_job_run_duration_seconds_count{job=\"collect\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE billrun_job_runs_total counter"),
            "{text}"
        );
    }

    #[test]
    fn stripe_webhook_events_are_counted_by_type_and_outcome() {
        record_webhook(
            Some(EventType::PaymentIntentSucceeded),
            WebhookDelivery::Event(EventOutcome::Applied),
        );
        record_webhook(
            Some(EventType::PaymentIntentSucceeded),
            WebhookDelivery::Event(EventOutcome::Applied),
        );
        record_webhook(None, WebhookDelivery::Rejected);
        let text = render();
        assert!(
            text.contains("billrun_stripe_webhook_events_total{type=\"payment_intent.succeeded\",outcome=\"applied\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "billrun_stripe_webhook_events_total{type=\"unknown\",outcome=\"rejected\"} 1"
            ),
            "{text}"
        );
    }
}
