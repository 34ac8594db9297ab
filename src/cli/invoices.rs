//! `billrun invoices`: list, show and write out the PDF of issued invoices.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::core::period::Period;
use crate::store::invoice_document;
use crate::store::invoices::{self, InvoiceStatus, ListFilter};
use crate::views::{self, InvoiceView};

use super::parse::parse_status;
use super::{OutputFormat, StoreArgs, env, print_json, require_invoice};

#[derive(Debug, Subcommand)]
pub enum InvoicesCommand {
    /// List invoices.
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        period: Option<Period>,
        #[arg(long, value_parser = parse_status)]
        status: Option<InvoiceStatus>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write an invoice's PDF (the document stored when it was finalized).
    Pdf {
        key: String,
        /// Where to write it.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one invoice by number (2026-000001) or id.
    Show {
        key: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs a parsed `InvoicesCommand`; returns the process exit code.
pub(super) async fn run(cmd: InvoicesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        InvoicesCommand::List {
            account,
            period,
            status,
            format,
            store,
        } => {
            let env = env(&store).await?;
            let filter = ListFilter {
                account,
                period,
                status,
            };
            if let OutputFormat::Json = format {
                // Streamed, a page at a time (issue 25: memory grew with the platform).
                let out = std::io::BufWriter::new(std::io::stdout());
                views::write_invoice_list_json(&env.db, &filter, 500, out).await?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows = invoices::list(&env.db, &filter).await?;
            let mut all = Vec::with_capacity(rows.len());
            for r in &rows {
                all.push(invoice_document::load(&env.db, r).await?);
            }
            print!("{}", views::invoice_table(&all));
        }
        InvoicesCommand::Pdf { key, output, store } => {
            let env = env(&store).await?;
            let row = require_invoice(&env.db, &key).await?;
            let (pdf, sha) = crate::store::documents::get(&env.db, row.id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("invoice {} has no stored document", row.number))?;
            std::fs::write(&output, &pdf)
                .with_context(|| format!("writing {}", output.display()))?;
            println!(
                "{}: invoice {} ({} bytes, sha256 {sha})",
                output.display(),
                row.number,
                pdf.len()
            );
        }
        InvoicesCommand::Show { key, format, store } => {
            let env = env(&store).await?;
            let row = require_invoice(&env.db, &key).await?;
            let inv = invoice_document::load(&env.db, &row).await?;
            match format {
                OutputFormat::Json => print_json(&InvoiceView::of(&inv))?,
                OutputFormat::Table => print!("{}", views::invoice_text(&inv)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
