//! `billrun report`: the tax returns (OSS, French VAT), read-only.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use billrun::core::period::Period;

use super::{OutputFormat, StoreArgs, env, print_json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OssFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The quarter's OSS return: per member state and rate, the taxable amount and VAT of the
    /// invoices issued to EU consumers (article 369 sexies of Directive 2006/112/EC) less the
    /// quarter's credit notes on them; credit notes on earlier quarters' invoices as
    /// corrections naming the period (article 61 of Regulation (EU) 282/2011).
    Oss {
        /// The quarter: 2026-Q4.
        #[arg(long)]
        quarter: billrun::core::tax_returns::Quarter,
        #[arg(long, value_enum, default_value_t = OssFormat::Table)]
        format: OssFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The month's figures for the French VAT return (form 3310-CA3), from the invoices issued
    /// in it less the credit notes issued in it (article 272-1 of the CGI).
    Vat {
        /// The month: 2026-10.
        #[arg(long)]
        period: Period,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs a parsed `ReportCommand`; returns the process exit code.
pub(super) async fn run(cmd: ReportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ReportCommand::Oss {
            quarter,
            format,
            store,
        } => {
            let env = env(&store).await?;
            let view = billrun::reports::OssView::of(
                &billrun::reports::oss_return(&env.db, quarter).await?,
            );
            match format {
                OssFormat::Table => print!("{}", view.table()),
                OssFormat::Json => print_json(&view)?,
                OssFormat::Csv => print!("{}", view.csv()?),
            }
        }
        ReportCommand::Vat {
            period,
            format,
            store,
        } => {
            let env = env(&store).await?;
            let view = billrun::reports::VatView::of(
                &billrun::reports::vat_return(&env.db, period).await?,
            );
            match format {
                OutputFormat::Table => print!("{}", view.table()),
                OutputFormat::Json => print_json(&view)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
