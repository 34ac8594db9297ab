//! `billrun webhooks replay`: Stripe events exported from the dashboard (one event JSON per
//! line), applied as the daemon's `POST /webhooks/stripe` applies them (`billrun::webhooks`):
//! same store, same code, minus the signature check (the file comes from the operator).
//!
//! The file is read whole first: a line that is not a Stripe event refuses the whole file
//! (exit 2, naming `FILE:LINE`), nothing applied. Then each event is applied in its own
//! transaction, in the file's order (the order does not matter: an attempt only moves
//! forward); an event that cannot be applied is reported and the others still are (exit 1), and
//! running the same file again applies what is left (the rest are duplicates).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Serialize;

use billrun::config::BadInput;
use billrun::store::webhooks::Source;
use billrun::stripe_webhook::{Action, Event, EventOutcome};
use billrun::webhooks::Planned;

use super::parse::parse_time;
use super::{EXIT_ITEMS_FAILED, OutputFormat, StoreArgs, env, print_json};

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Apply Stripe events exported from the dashboard (NDJSON: one event a line); each is
    /// reported applied, no_change, duplicate, ignored, recorded or unmatched (with --dry-run:
    /// would_apply, would_record, no_change, duplicate, ignored or unmatched).
    Replay {
        /// The NDJSON file of events.
        #[arg(long = "from", value_name = "FILE.ndjson")]
        from: PathBuf,
        /// The clock (RFC 3339) of the settlements (dunning schedule, timeline); default: now.
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        /// Say what each event would do; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// What became of an event, or what a dry run says of it.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
enum Said {
    Done(EventOutcome),
    Planned(Planned),
}

impl Said {
    fn as_str(self) -> &'static str {
        match self {
            Said::Done(o) => o.as_str(),
            Said::Planned(p) => p.as_str(),
        }
    }
}

/// One event of the file and what became of it.
#[derive(Debug, Serialize)]
struct Line {
    line: usize,
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    outcome: Option<Said>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The events of an NDJSON file, each with its line number; the first bad line refuses the
/// file.
fn read_events(path: &std::path::Path) -> anyhow::Result<Vec<(usize, Event, Action)>> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| BadInput(format!("{name}: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        // serde's message may quote the line (a customer's data): its category and column only.
        let event = Event::parse(line.as_bytes()).map_err(|e| {
            BadInput(format!(
                "{name}:{n}: not a Stripe event ({:?} error at column {}): nothing was applied",
                e.classify(),
                e.column()
            ))
        })?;
        let action = event
            .action()
            .map_err(|e| BadInput(format!("{name}:{n}: {e}: nothing was applied")))?;
        if event.created_at().is_none() {
            return Err(BadInput(format!(
                "{name}:{n}: event {}: `created` is not a time: nothing was applied",
                event.id
            ))
            .into());
        }
        out.push((n, event, action));
    }
    Ok(out)
}

pub(super) async fn run(cmd: WebhooksCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        WebhooksCommand::Replay {
            from,
            now,
            dry_run,
            format,
            store,
        } => {
            let events = read_events(&from)?;
            let env = env(&store).await?;
            let now = now.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now()));
            let schedule = billrun::core::collection::RetrySchedule {
                offsets_days: env.jobs.collect.settings.retry_offsets_days.clone(),
            };
            let mut lines = Vec::with_capacity(events.len());
            // A dry-run writes nothing, so an id twice in the file is found here.
            let mut seen = HashSet::new();
            for (n, event, action) in &events {
                let result = if dry_run {
                    if seen.insert(event.id.clone()) {
                        billrun::webhooks::plan(&env.db, event, action)
                            .await
                            .map(Said::Planned)
                    } else {
                        Ok(Said::Planned(Planned::Duplicate))
                    }
                } else {
                    billrun::webhooks::apply(&env.db, &schedule, event, action, Source::Replay, now)
                        .await
                        .map(Said::Done)
                        .with_context(|| format!("{}:{n}: event {}", from.display(), event.id))
                };
                let (outcome, error) = match result {
                    Ok(o) => (Some(o), None),
                    Err(e) => (None, Some(format!("{e:#}"))),
                };
                lines.push(Line {
                    line: *n,
                    event_id: event.id.clone(),
                    kind: event.kind.clone(),
                    outcome,
                    error,
                });
            }
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for l in &lines {
                *counts
                    .entry(l.outcome.map_or("failed", Said::as_str))
                    .or_default() += 1;
            }
            let failed = lines.iter().any(|l| l.error.is_some());
            match format {
                OutputFormat::Json => print_json(&serde_json::json!({
                    "file": from.display().to_string(),
                    "dry_run": dry_run,
                    "events": lines,
                    "counts": counts,
                }))?,
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = lines
                        .iter()
                        .map(|l| {
                            vec![
                                l.line.to_string(),
                                l.event_id.clone(),
                                l.kind.clone(),
                                l.outcome.map_or_else(
                                    || format!("failed: {}", l.error.as_deref().unwrap_or("")),
                                    |o| o.as_str().to_string(),
                                ),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        billrun::views::table(&["LINE", "EVENT", "TYPE", "OUTCOME"], &rows)
                    );
                    let summary: Vec<String> =
                        counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
                    println!(
                        "{}{} event(s): {}",
                        if dry_run {
                            "dry run, nothing written: "
                        } else {
                            ""
                        },
                        lines.len(),
                        summary.join(", ")
                    );
                }
            }
            Ok(if failed {
                ExitCode::from(EXIT_ITEMS_FAILED)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
