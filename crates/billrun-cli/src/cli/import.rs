//! `billrun import KIND FILE`: records from a CSV or NDJSON file.

use std::path::PathBuf;
use std::process::ExitCode;

use billrun::import::{ImportKind, Rejected};

use super::{EXIT_ITEMS_FAILED, OutputFormat, StoreArgs, env, print_json};

/// Runs a parsed `import`; returns the process exit code.
pub(super) async fn run(
    kind: ImportKind,
    file: PathBuf,
    skip_invalid: bool,
    format: OutputFormat,
    store: StoreArgs,
) -> anyhow::Result<ExitCode> {
    let env = env(&store).await?;
    let report = match billrun::import::import_file(&env.db, kind, &file, skip_invalid).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(rej) = e.downcast_ref::<Rejected>() {
                for l in &rej.errors {
                    eprintln!("{l}");
                }
            }
            return Err(e);
        }
    };
    match format {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Table => {
            for l in &report.rejected {
                eprintln!("rejected {l}");
            }
            println!(
                "{}: {} record(s): {} imported, {} updated, {} unchanged, {} rejected",
                report.file,
                report.records,
                report.inserted,
                report.updated,
                report.unchanged,
                report.rejected_records
            );
        }
    }
    if !report.rejected.is_empty() {
        return Ok(ExitCode::from(EXIT_ITEMS_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}
