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

use super::{OutputFormat, StoreArgs, env, print_json};

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
