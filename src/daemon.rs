//! `billrun daemon`: runs the enabled jobs on their schedules (tokio-cron-scheduler, UTC).
//!
//! - Each tick is claimed in `job_runs` (see [`crate::runner`]): with several daemons on one
//!   PostgreSQL each tick runs once; runs of one job never overlap.
//! - At start, a tick missed while every daemon was down runs once (catch-up), if it is at
//!   most `catch_up_hours` old (a setting in each `jobs/<job>.toml`).
//! - SIGTERM or SIGINT: no new tick starts, the runs in hand finish their current batch and
//!   stop; the daemon exits 0 once they have, or after `--shutdown-timeout` seconds.
//! - `/healthz` (the store answers) and `/metrics` (Prometheus) on `--listen`, loopback by
//!   default; `POST /webhooks/stripe` on the same listener when `STRIPE_WEBHOOK_SECRET` is set
//!   (Stripe's events, signature checked: [`crate::webhooks`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio::sync::RwLock;
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{error, info, warn};

use crate::core::period::{Period, whole_seconds};
use crate::core::schedule::Schedule;
use crate::jobs::{ALL_JOBS, Env, JobName, RunOptions, Stop};
use crate::runner::{self, Claim, Trigger};

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub listen: SocketAddr,
    pub shutdown_timeout: Duration,
    /// The webhook endpoint's signing secret (`whsec_…`, `STRIPE_WEBHOOK_SECRET`); without it
    /// `POST /webhooks/stripe` answers 503.
    pub webhook_secret: Option<crate::jobs::Secret>,
}

/// The largest webhook body read (Stripe's events are a few kilobytes); more is refused (413).
pub const MAX_WEBHOOK_BODY_BYTES: usize = 1024 * 1024;

struct Shared {
    env: Env,
    owner: String,
    stop: Stop,
    /// Each run holds a read guard; shutdown takes the write guard to wait for them.
    in_flight: RwLock<()>,
    webhook_secret: Option<crate::jobs::Secret>,
}

pub async fn run(env: Env, opts: DaemonOptions) -> anyhow::Result<()> {
    let shared = Arc::new(Shared {
        owner: runner::owner_id(),
        env,
        stop: Stop::default(),
        in_flight: RwLock::new(()),
        webhook_secret: opts.webhook_secret.clone(),
    });
    if shared.webhook_secret.is_none() {
        info!(
            "Stripe webhooks are off: STRIPE_WEBHOOK_SECRET is not set (POST /webhooks/stripe answers 503)"
        );
    }
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("listening on {} (--listen)", opts.listen))?;
    // With port 0 the system picks one: say which (tests and supervisors read it).
    let bound = listener
        .local_addr()
        .context("reading the listening address")?;
    let http = tokio::spawn(serve(listener, shared.clone()));

    let mut scheduler = JobScheduler::new()
        .await
        .context("starting the scheduler")?;
    let mut enabled = Vec::new();
    for &job in ALL_JOBS {
        let meta = shared
            .env
            .jobs
            .meta(job.as_str())
            .expect("every job has a file");
        if !meta.enabled {
            info!(job = job.as_str(), "disabled in its jobs file");
            continue;
        }
        let schedule = Schedule::parse(meta.schedule).map_err(crate::config::BadInput)?;
        let sh = shared.clone();
        let sched = schedule.clone();
        let cron_job = Job::new_async(schedule.six_fields.as_str(), move |_id, _lock| {
            let sh = sh.clone();
            let sched = sched.clone();
            Box::pin(async move {
                // The tick this firing belongs to (the timer may wake a hair early or late).
                let now = Utc::now() + chrono::Duration::milliseconds(500);
                if let Some(tick) = sched.latest_at_or_before(whole_seconds(now)) {
                    tick_once(sh, job, tick, Trigger::Schedule).await;
                }
            })
        })
        .map_err(|e| anyhow::anyhow!("scheduling {}: {e}", job.as_str()))?;
        scheduler
            .add(cron_job)
            .await
            .map_err(|e| anyhow::anyhow!("scheduling {}: {e}", job.as_str()))?;
        enabled.push((job, schedule, meta.catch_up_hours));
    }

    // Catch-up: the latest tick of each job, if no process claimed it.
    let now = whole_seconds(Utc::now());
    for (job, schedule, hours) in &enabled {
        let last = crate::store::runs::last_tick(&shared.env.db, job.as_str()).await?;
        if let Some(tick) =
            schedule.missed_tick(now, last, chrono::Duration::hours(i64::from(*hours)))
        {
            info!(job = job.as_str(), tick = %tick, "catching up a tick missed while no daemon ran");
            tokio::spawn(tick_once(shared.clone(), *job, tick, Trigger::CatchUp));
        }
    }

    scheduler.start().await.context("starting the scheduler")?;
    info!(listen = %bound, jobs = enabled.len(), owner = %shared.owner, "daemon started");
    eprintln!(
        "billrun daemon: {} job(s) scheduled, /healthz and /metrics on http://{bound}",
        enabled.len()
    );

    shutdown_signal().await;
    info!("shutdown requested: no new runs; waiting for the runs in hand");
    shared.stop.request();
    if let Err(e) = scheduler.shutdown().await {
        warn!(error = %e, "stopping the scheduler");
    }
    match tokio::time::timeout(opts.shutdown_timeout, shared.in_flight.write()).await {
        Ok(_) => info!("every run finished; exiting"),
        Err(_) => warn!(
            seconds = opts.shutdown_timeout.as_secs(),
            "runs still going at the shutdown timeout: exiting anyway (they are marked interrupted once stale)"
        ),
    }
    http.abort();
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Claims and runs one tick, unless shutting down, another process has it, or the job is busy.
async fn tick_once(sh: Arc<Shared>, job: JobName, tick: DateTime<Utc>, trigger: Trigger) {
    if sh.stop.requested() {
        return;
    }
    let Ok(_guard) = sh.in_flight.try_read() else {
        return; // shutting down
    };
    let now = whole_seconds(Utc::now());
    let claim = match runner::claim(&sh.env.db, job, Some(tick), trigger, now, &sh.owner).await {
        Ok(c) => c,
        Err(e) => {
            error!(job = job.as_str(), tick = %tick, error = %format!("{e:#}"), "cannot claim the tick");
            crate::metrics::record_run(
                job,
                crate::store::runs::RunStatus::Failed,
                Duration::ZERO,
                None,
            );
            return;
        }
    };
    let run_id = match claim {
        Claim::Won(id) => id,
        Claim::TickTaken(row) => {
            info!(job = job.as_str(), tick = %tick, by = %row.owner, "tick taken by another process");
            return;
        }
        Claim::Busy(row) => {
            info!(job = job.as_str(), tick = %tick, running = row.id, "skipped: the previous run is still going");
            return;
        }
    };
    if sh.stop.requested() {
        // The stop came while the claim was being written (on SQLite a claim waits for the
        // write lock the previous run's last batch holds): no run starts after a stop, so the
        // claim is given back rather than recorded as a run that did nothing.
        if let Err(e) = crate::store::runs::release(&sh.env.db, run_id, &sh.owner).await {
            warn!(job = job.as_str(), run.id = run_id, error = %format!("{e:#}"), "cannot give back the claim");
        }
        return;
    }
    let mut opts = RunOptions::at(now);
    opts.stop = sh.stop.clone();
    // Only the summary is logged: the run keeps no per-invoice views.
    opts.counts_only = true;
    if job == JobName::Invoice {
        opts.period = Some(Period::previous_to(tick));
    }
    match runner::execute(&sh.env, job, &opts, run_id).await {
        Ok(report) => info!(job = job.as_str(), run.id = run_id, "{}", report.summary()),
        Err(e) => {
            error!(job = job.as_str(), run.id = run_id, error = %format!("{e:#}"), "run failed")
        }
    }
}

/// The daemon's HTTP/1.1 server (hyper): `GET /healthz`, `GET /metrics` and
/// `POST /webhooks/stripe`.
async fn serve(listener: tokio::net::TcpListener, sh: Arc<Shared>) {
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let sh = sh.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| respond(req, sh.clone()));
            // A client that sends its head slowly is cut off, as the hand-written server did.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .keep_alive(false)
                .serve_connection(TokioIo::new(sock), service)
                .await;
        });
    }
}

type Body = http_body_util::Full<bytes::Bytes>;

fn reply(status: u16, content_type: &str, body: String) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(Body::new(bytes::Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn respond(
    req: hyper::Request<hyper::body::Incoming>,
    sh: Arc<Shared>,
) -> Result<hyper::Response<Body>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    Ok(match path.as_str() {
        "/healthz" => match sh.env.db.ping().await {
            Ok(()) => reply(200, "text/plain", "ok\n".to_string()),
            Err(e) => reply(503, "text/plain", format!("store unreachable: {e:#}\n")),
        },
        "/metrics" => reply(200, "text/plain; version=0.0.4", crate::metrics::render()),
        "/webhooks/stripe" => stripe_webhook(req, &sh).await,
        _ => reply(404, "text/plain", "not found\n".to_string()),
    })
}

/// `POST /webhooks/stripe`: Stripe API "Receive Stripe events in your webhook endpoint". The
/// raw body is checked against `Stripe-Signature` (Stripe API "Check the webhook signatures",
/// 300 s tolerance), then the event is stored and applied in one transaction; the 200 is sent
/// after its commit, so an event Stripe saw acknowledged is never lost. Any non-2xx answer makes
/// Stripe send the event again later. Nothing secret is logged: not the header, the secret or
/// the body. Each event refused (400), stored or failed (500) is counted in `/metrics`
/// (`billrun_stripe_webhook_events_total`).
async fn stripe_webhook(
    req: hyper::Request<hyper::body::Incoming>,
    sh: &Shared,
) -> hyper::Response<Body> {
    use crate::metrics::{WebhookDelivery, record_webhook};
    use crate::stripe_webhook::{Event, verify};
    use http_body_util::BodyExt;
    let text = |status: u16, body: &str| reply(status, "text/plain", format!("{body}\n"));
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_WEBHOOK_BODY_BYTES as u64) {
        warn!(bytes = declared, "Stripe webhook refused: body too large");
        return text(413, "body too large");
    }
    let method = req.method().clone();
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Read (bounded) before any answer, so that the connection is not closed on unread data.
    let limited = http_body_util::Limited::new(req.into_body(), MAX_WEBHOOK_BODY_BYTES);
    let body = match tokio::time::timeout(Duration::from_secs(30), limited.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            warn!("Stripe webhook refused: body too large");
            return text(413, "body too large");
        }
        Ok(Err(_)) => return text(400, "unreadable body"),
        Err(_) => return text(408, "body not received in time"),
    };
    if method != hyper::Method::POST {
        return text(405, "method not allowed: POST only");
    }
    let Some(secret) = &sh.webhook_secret else {
        // Not configured: 503, so that Stripe keeps the events and sends them again once the
        // secret is set (it retries for up to three days).
        return text(
            503,
            "Stripe webhooks are off: STRIPE_WEBHOOK_SECRET is not set",
        );
    };
    if let Err(e) = verify(signature.as_deref(), &body, &secret.0, Utc::now()) {
        // The reason only (missing, mismatch, stale): never the header, secret or body.
        warn!(reason = %e, "Stripe webhook refused: bad signature");
        record_webhook(None, WebhookDelivery::Rejected);
        return text(400, "bad signature");
    }
    let event = match Event::parse(&body) {
        Ok(e) => e,
        Err(e) => {
            // serde's message may quote the body: its category and position only.
            warn!(error.kind = ?e.classify(), line = e.line(), column = e.column(), "Stripe webhook refused: not a Stripe event");
            record_webhook(None, WebhookDelivery::Rejected);
            return text(400, "not a Stripe event");
        }
    };
    let action = match event.action() {
        Ok(a) => a,
        Err(e) => {
            warn!(event.id = %event.id, error = %e, "Stripe webhook refused: malformed event");
            record_webhook(Some(event.event_type()), WebhookDelivery::Rejected);
            return text(400, "malformed event");
        }
    };
    let schedule = crate::core::collection::RetrySchedule {
        offsets_days: sh.env.jobs.collect.settings.retry_offsets_days.clone(),
    };
    let now = whole_seconds(Utc::now());
    match crate::webhooks::apply(
        &sh.env.db,
        &schedule,
        &event,
        &action,
        crate::store::webhooks::Source::Webhook,
        now,
    )
    .await
    {
        Ok(outcome) => {
            record_webhook(Some(event.event_type()), WebhookDelivery::Event(outcome));
            reply(
                200,
                "application/json",
                format!(
                    "{}\n",
                    serde_json::json!({"received": true, "outcome": outcome.as_str()})
                ),
            )
        }
        Err(e) => {
            // Rolled back: Stripe sends the event again.
            record_webhook(Some(event.event_type()), WebhookDelivery::Failed);
            error!(event.id = %event.id, error = %format!("{e:#}"), "cannot apply a Stripe event");
            text(500, "cannot apply the event; send it again")
        }
    }
}
