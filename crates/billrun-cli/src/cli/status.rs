//! `billrun jobs` and `billrun runs`: each job's schedule and last run, and the history of runs.

use std::process::ExitCode;

use chrono::Utc;

use billrun::jobs::{self, JobName};
use billrun::views;

use super::{OutputFormat, StoreArgs, env, print_json};

/// `billrun jobs`: each job's schedule, next fire time and last run.
pub(super) async fn jobs(format: OutputFormat, store: StoreArgs) -> anyhow::Result<ExitCode> {
    let env = env(&store).await?;
    let now = billrun::core::period::whole_seconds(Utc::now());
    let mut rows = Vec::new();
    for job in jobs::ALL_JOBS {
        let meta = env.jobs.meta(job.as_str()).expect("every job has a file");
        let next = billrun::core::schedule::Schedule::parse(meta.schedule)
            .ok()
            .and_then(|s| s.next_after(now));
        let last = billrun::store::runs::list(&env.db, Some(job.as_str()), 1)
            .await?
            .into_iter()
            .next();
        rows.push(serde_json::json!({
            "job": job.as_str(),
            "enabled": meta.enabled,
            "schedule": meta.schedule,
            "next_fire_at": if meta.enabled { next } else { None },
            "last_run": last,
        }));
    }
    match format {
        OutputFormat::Json => print_json(&rows)?,
        OutputFormat::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let last = &r["last_run"];
                    vec![
                        r["job"].as_str().unwrap_or("").to_string(),
                        if r["enabled"] == true {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        r["schedule"].as_str().unwrap_or("").to_string(),
                        r["next_fire_at"].as_str().unwrap_or("-").to_string(),
                        if last.is_null() {
                            "never".to_string()
                        } else {
                            format!(
                                "#{} {} {}: {}",
                                last["id"],
                                last["status"].as_str().unwrap_or(""),
                                last["started_at"].as_str().unwrap_or(""),
                                last["summary"]
                                    .as_str()
                                    .or(last["error"].as_str())
                                    .unwrap_or("")
                            )
                        },
                    ]
                })
                .collect();
            print!(
                "{}",
                views::table(
                    &["JOB", "ENABLED", "SCHEDULE (UTC)", "NEXT FIRE", "LAST RUN"],
                    &table
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `billrun runs`: the history of runs, newest first.
pub(super) async fn runs(
    job: Option<JobName>,
    limit: i64,
    format: OutputFormat,
    store: StoreArgs,
) -> anyhow::Result<ExitCode> {
    let env = env(&store).await?;
    let rows = billrun::store::runs::list(&env.db, job.map(JobName::as_str), limit.max(1)).await?;
    match format {
        OutputFormat::Json => print_json(&rows)?,
        OutputFormat::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.job.clone(),
                        r.trigger.clone(),
                        r.scheduled_at.map_or("-".into(), |t| t.to_rfc3339()),
                        r.status.to_string(),
                        r.started_at.to_rfc3339(),
                        r.finished_at.map_or("-".into(), |t| t.to_rfc3339()),
                        r.owner.clone(),
                        r.error.clone().or(r.summary.clone()).unwrap_or_default(),
                    ]
                })
                .collect();
            print!(
                "{}",
                views::table(
                    &[
                        "ID",
                        "JOB",
                        "TRIGGER",
                        "TICK",
                        "STATUS",
                        "STARTED",
                        "FINISHED",
                        "OWNER",
                        "SUMMARY / ERROR"
                    ],
                    &table
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
