//! `billrun invoices`: list, show and write out issued invoices: their PDF (a Factur-X), their
//! CII XML, or a period of them for a certified platform (*plateforme agréée*).

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
    /// Print (or write) an invoice's e-invoice: UN/CEFACT CII XML at the EN 16931 profile, the
    /// XML its Factur-X PDF embeds.
    Xml {
        key: String,
        /// Where to write it; standard output when not given.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write every invoice of a period, one file each, with `manifest.json` (numbers, files,
    /// SHA-256): a batch for a certified platform.
    Export {
        #[arg(long)]
        period: Period,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// The directory to write into (created if missing).
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

/// What `invoices export` writes per invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The PDF stored when the invoice was finalized (a Factur-X PDF/A-3 with its XML).
    Facturx,
    /// The CII XML alone.
    Cii,
}

/// The CII XML of an invoice as it was issued (what its Factur-X PDF embeds).
async fn cii_xml(env: &crate::jobs::Env, row: &invoices::InvoiceRow) -> anyhow::Result<String> {
    let inv = invoice_document::load(&env.db, row).await?.as_issued();
    Ok(crate::documents::cii::to_xml(
        &inv,
        &env.jobs.invoice.settings.seller,
    ))
}

/// Writes a period's invoices into `dir`, a page at a time, and `manifest.json` last (its
/// presence says the batch is whole). Returns how many were written.
async fn export(
    env: &crate::jobs::Env,
    period: Period,
    format: ExportFormat,
    dir: &std::path::Path,
) -> anyhow::Result<usize> {
    use sha2::{Digest, Sha256};
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let filter = ListFilter {
        account: None,
        period: Some(period),
        status: None,
    };
    let mut manifest = Vec::new();
    let mut after: Option<String> = None;
    const PAGE: i64 = 500;
    loop {
        let rows = invoices::list_page(&env.db, &filter, after.as_deref(), PAGE).await?;
        for row in &rows {
            let (file, bytes) = match format {
                ExportFormat::Facturx => {
                    let (pdf, _) = crate::store::documents::get(&env.db, row.id)
                        .await?
                        .ok_or_else(|| {
                            anyhow::anyhow!("invoice {} has no stored document", row.number)
                        })?;
                    (format!("{}.pdf", row.number), pdf)
                }
                ExportFormat::Cii => (
                    format!("{}.xml", row.number),
                    cii_xml(env, row).await?.into_bytes(),
                ),
            };
            let path = dir.join(&file);
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            let sha256: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            manifest.push(serde_json::json!({
                "number": row.number,
                "file": file,
                "sha256": sha256,
            }));
        }
        match rows.last() {
            Some(last) if rows.len() as i64 >= PAGE => after = Some(last.number.clone()),
            _ => break,
        }
    }
    let count = manifest.len();
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "period": period.to_string(),
        "format": match format {
            ExportFormat::Facturx => "facturx",
            ExportFormat::Cii => "cii",
        },
        "invoices": manifest,
    }))?;
    let path = dir.join("manifest.json");
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(count)
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
        InvoicesCommand::Xml { key, output, store } => {
            let env = env(&store).await?;
            let row = require_invoice(&env.db, &key).await?;
            let xml = cii_xml(&env, &row).await?;
            match output {
                Some(path) => {
                    std::fs::write(&path, &xml)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!(
                        "{}: invoice {} (CII XML, EN 16931)",
                        path.display(),
                        row.number
                    );
                }
                None => print!("{xml}"),
            }
        }
        InvoicesCommand::Export {
            period,
            format,
            output,
            store,
        } => {
            let env = env(&store).await?;
            let n = export(&env, period, format, &output).await?;
            println!(
                "{n} invoice(s) of {period} written to {} with manifest.json",
                output.display()
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
