//! `billrun credit-notes`: list, show and write out issued credit notes (*avoirs*). They are
//! issued by `billrun invoices credit-note`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use billrun::config::BadInput;
use billrun::core::period::Period;
use billrun::store::credit_notes::{self, CreditNoteRow, ListFilter};
use billrun::views::{self, CreditNoteView};

use billrun::core::document::RerouteTo;
use chrono::{DateTime, Utc};

use super::parse::{parse_time, reason_arg};
use super::{OutputFormat, StoreArgs, env, print_json};

fn reroute_arg(s: &str) -> Result<RerouteTo, String> {
    RerouteTo::parse(s).ok_or_else(|| format!("`{s}`: expected credit or none"))
}

#[derive(Debug, Subcommand)]
pub enum CreditNotesCommand {
    /// List credit notes, in number order.
    List {
        #[arg(long)]
        account: Option<String>,
        /// Issued in this month (2026-11).
        #[arg(long)]
        period: Option<Period>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one credit note by number (AV-2026-000001).
    Show {
        number: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Settle a credit note's failed refund through the gateway (Stripe answered `failed`:
    /// a closed card, a closed account): `--to credit` gives it to the account's prepaid
    /// credit, `--to none` records that it was paid outside billrun (say how in `--reason`).
    /// Only a failed refund can be re-routed (exit 4 otherwise).
    Refund {
        number: String,
        /// Where the money goes instead: `credit` or `none`.
        #[arg(long, value_parser = reroute_arg)]
        to: RerouteTo,
        /// Why, or how it was paid (required with `--to none`).
        #[arg(long, value_parser = reason_arg)]
        reason: Option<String>,
        /// The clock (RFC 3339): the re-route's date (and the FEC's); default: now.
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        /// Show what would be settled; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write a credit note's PDF (the document stored when it was issued).
    Pdf {
        number: String,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

async fn require(db: &billrun::store::Db, number: &str) -> anyhow::Result<CreditNoteRow> {
    Ok(credit_notes::find(db, number).await?.ok_or_else(|| {
        BadInput(format!(
            "no credit note `{}`",
            billrun::core::bounds::excerpt(number)
        ))
    })?)
}

/// Runs a parsed `CreditNotesCommand`; returns the process exit code.
pub(super) async fn run(cmd: CreditNotesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CreditNotesCommand::List {
            account,
            period,
            format,
            store,
        } => {
            let env = env(&store).await?;
            let filter = ListFilter {
                account,
                issued: period.map(|p| (p.start(), p.end())),
            };
            let mut all = Vec::new();
            for row in credit_notes::list(&env.db, &filter).await? {
                all.push(credit_notes::load_document(&env.db, &row).await?);
            }
            match format {
                OutputFormat::Json => {
                    print_json(&all.iter().map(CreditNoteView::of).collect::<Vec<_>>())?
                }
                OutputFormat::Table => print!("{}", views::credit_note_table(&all)),
            }
        }
        CreditNotesCommand::Show {
            number,
            format,
            store,
        } => {
            let env = env(&store).await?;
            let row = require(&env.db, &number).await?;
            let cn = credit_notes::load_document(&env.db, &row).await?;
            match format {
                OutputFormat::Json => print_json(&CreditNoteView::of(&cn))?,
                OutputFormat::Table => print!("{}", views::credit_note_text(&cn)),
            }
        }
        CreditNotesCommand::Refund {
            number,
            to,
            reason,
            now,
            dry_run,
            format,
            store,
        } => {
            let env = env(&store).await?;
            let req = billrun::credit_notes::RerouteRequest {
                credit_note: number,
                to,
                reason,
                now: now.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now())),
                dry_run,
            };
            let r = billrun::credit_notes::reroute(&env, &req).await?;
            match format {
                OutputFormat::Json => print_json(&r)?,
                OutputFormat::Table => {
                    let verb = if r.dry_run { "would be" } else { "was" };
                    let whereto = match to {
                        RerouteTo::Credit => "given to the prepaid credit",
                        RerouteTo::None => "recorded as paid outside billrun",
                    };
                    for f in &r.refunds {
                        println!(
                            "{}: failed refund of {} on {} ({}) {verb} {whereto}",
                            r.credit_note,
                            f.amount,
                            f.payment_intent,
                            f.message
                                .as_deref()
                                .unwrap_or("no reason given by the gateway")
                        );
                    }
                    if let Some(b) = &r.credit_balance {
                        println!("account {}: prepaid credit {b}", r.account_id);
                    }
                    if r.dry_run {
                        println!("dry-run: nothing written");
                    }
                }
            }
        }
        CreditNotesCommand::Pdf {
            number,
            output,
            store,
        } => {
            let env = env(&store).await?;
            let row = require(&env.db, &number).await?;
            let (pdf, sha) = credit_notes::document(&env.db, row.id)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!("credit note {} has no stored document", row.number)
                })?;
            std::fs::write(&output, &pdf)
                .with_context(|| format!("writing {}", output.display()))?;
            println!(
                "{}: credit note {} ({} bytes, sha256 {sha})",
                output.display(),
                row.number,
                pdf.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
