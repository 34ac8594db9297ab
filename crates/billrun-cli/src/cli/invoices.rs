//! `billrun invoices`: list, show and write out issued invoices: their PDF (a Factur-X), their
//! CII XML, or a period of them for a certified platform (*plateforme agréée*).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use billrun::core::period::Period;
use billrun::store::invoice_document;
use billrun::store::invoices::{self, InvoiceStatus, ListFilter};
use billrun::views::{self, InvoiceView};

use chrono::{DateTime, Utc};

use billrun::config::BadInput;
use billrun::core::credit_note::{CreditRequest, RefundMethod};

use super::parse::{amount_arg, parse_status, parse_time, reason_arg, refund_arg};
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
    /// Issue a credit note (*avoir*) correcting an invoice: the whole of what is left
    /// (`--full`), parts of its lines (`--line N --amount X`, repeated), or a commercial gesture
    /// (`--amount X` alone). Amounts exclude VAT; the VAT follows at the invoice's own rate.
    /// What the invoice still owes falls first; what was paid is refunded as `--refund` says.
    CreditNote {
        /// The invoice's number (2026-000001) or id.
        key: String,
        /// Why (printed on the credit note).
        #[arg(long, value_parser = reason_arg)]
        reason: String,
        /// Credit whatever is left to credit on the invoice.
        #[arg(long, conflicts_with_all = ["line", "amount"])]
        full: bool,
        /// An invoice line (from 1, as `invoices show` lists them), paired in order with an
        /// `--amount`.
        #[arg(long)]
        line: Vec<u32>,
        /// In euros, excluding VAT: 12.34.
        #[arg(long, value_parser = amount_arg)]
        amount: Vec<String>,
        /// Where what was paid goes back: `auto` as it was paid, `card` (the card or SEPA
        /// account that paid, through Stripe), `credit` (the prepaid credit), `none`
        /// (settled outside billrun, recorded).
        #[arg(long, value_parser = refund_arg, default_value = "auto")]
        refund: RefundMethod,
        /// The clock (RFC 3339): the credit note's issue date; default: now.
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        /// Show exactly what would be issued, refunded and changed; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
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
async fn cii_xml(env: &billrun::jobs::Env, row: &invoices::InvoiceRow) -> anyhow::Result<String> {
    let inv = invoice_document::load(&env.db, row).await?.as_issued();
    Ok(billrun::documents::cii::to_xml(
        &inv,
        &env.jobs.invoice.settings.seller,
    ))
}

/// Writes a period's invoices into `dir`, a page at a time, and `manifest.json` last (its
/// presence says the batch is whole). Returns how many were written.
async fn export(
    env: &billrun::jobs::Env,
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
                    // Rendered and stored now if the run that issued it stopped before.
                    let (pdf, _) = billrun::jobs::documents::invoice_pdf(env, row.id)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("invoice {} is gone", row.number))?;
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
            // Rendered and stored now if the run that issued it stopped before.
            let (pdf, _) = billrun::jobs::documents::invoice_pdf(&env, row.id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("invoice {} is gone", row.number))?;
            let sha = billrun::store::documents::sha256_hex(&pdf);
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
        InvoicesCommand::CreditNote {
            key,
            reason,
            full,
            line,
            amount,
            refund,
            now,
            dry_run,
            format,
            store,
        } => {
            let what = credit_request(full, &line, &amount)?;
            let env = env(&store).await?;
            let req = billrun::credit_notes::Request {
                invoice: key,
                reason,
                what,
                method: refund,
                now: now.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now())),
                dry_run,
            };
            let cn = billrun::credit_notes::issue(&env, &req).await?;
            match format {
                OutputFormat::Json => print_json(&views::CreditNoteView::of(&cn))?,
                OutputFormat::Table => print!("{}", views::credit_note_text(&cn)),
            }
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

/// What `--full`, `--line` and `--amount` ask, or why they make no sense together.
fn credit_request(full: bool, lines: &[u32], amounts: &[String]) -> anyhow::Result<CreditRequest> {
    let minor = |a: &String| {
        billrun::core::money::parse_major(a).map_err(|e| BadInput(format!("--amount: {e}")))
    };
    if full {
        return Ok(CreditRequest::Full);
    }
    if lines.is_empty() {
        return match amounts {
            [one] => Ok(CreditRequest::Amount(minor(one)?)),
            [] => Err(BadInput(
                "say what to credit: --full, --line N --amount X (repeated), or --amount X for a commercial gesture".into(),
            )
            .into()),
            _ => Err(BadInput(
                "several --amount without --line: give one --line per --amount, or one --amount for a gesture".into(),
            )
            .into()),
        };
    }
    if lines.len() != amounts.len() {
        return Err(BadInput(format!(
            "{} --line for {} --amount: each --line takes the --amount that follows it",
            lines.len(),
            amounts.len()
        ))
        .into());
    }
    let mut parts = Vec::with_capacity(lines.len());
    for (l, a) in lines.iter().zip(amounts) {
        if *l == 0 {
            return Err(BadInput(
                "--line counts from 1, as `invoices show` lists the lines".into(),
            )
            .into());
        }
        parts.push((*l as usize - 1, minor(a)?));
    }
    Ok(CreditRequest::Lines(parts))
}
