//! `billrun export fec`: the year's ledger for the accountant and a tax audit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use super::{StoreArgs, env};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FecFormatArg {
    /// The FEC: tab-separated `<SIREN>FEC<YYYYMMDD>.txt` (article A47 A-1 of the LPF).
    Fec,
    /// The same entries as CSV, for accounting software.
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The year's ledger as a FEC (article A47 A-1 of the Livre des procédures fiscales).
    Fec {
        /// The financial year (the calendar year, closing on 31 December).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1970..=9998))]
        year: i32,
        /// The directory to write `<SIREN>FEC<YYYY>1231.txt` into.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[arg(long, value_enum, default_value_t = FecFormatArg::Fec)]
        format: FecFormatArg,
        /// The chart of accounts (default: accounting.toml in the jobs directory, else built-in).
        #[arg(long)]
        accounting: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs a parsed `ExportCommand`; returns the process exit code.
pub(super) async fn run(cmd: ExportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ExportCommand::Fec {
            year,
            output,
            format,
            accounting,
            store,
        } => {
            let env = env(&store).await?;
            let (chart, chart_name) =
                billrun::reports::load_chart(accounting.as_deref(), env.jobs.dir.as_deref())?;
            let format = match format {
                FecFormatArg::Fec => billrun::reports::FecFormat::Fec,
                FecFormatArg::Csv => billrun::reports::FecFormat::Csv,
            };
            let done = billrun::reports::export_fec(
                &env.db,
                &chart,
                chart_name,
                &env.jobs.invoice.settings.seller.siren,
                year,
                &output,
                format,
            )
            .await?;
            println!(
                "{}: {} entries, {} lines, debit {} = credit {} EUR (chart of accounts: {})",
                done.path.display(),
                done.entries,
                done.lines,
                done.debit,
                done.credit,
                done.chart
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
