//! `billrun account`: an account's timeline, its HDS point of contact, and its deletion.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use billrun::config::BadInput;
use billrun::store::{accounts, events};
use billrun::views;

use super::parse::{email_arg, name_arg, parse_time, phone_arg};
use super::{EXIT_REFUSED, OutputFormat, StoreArgs, env, print_json, require_account};

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Show an account and its timeline.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The designated healthcare data (HDS) point of contact; designating counts as a review.
    #[command(name = "hds-contact", subcommand)]
    HdsContact(HdsContactCommand),
    /// Ask for the account's deletion: refused while it owns apps or owes anything; otherwise
    /// bills the usage not billed yet, collects it at once and, once nothing is due, emails a
    /// confirmation token (exit code 4 when refused).
    #[command(name = "request-deletion")]
    RequestDeletion {
        id: String,
        /// The clock (RFC 3339); default: now.
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Confirm a deletion with the emailed token: deactivates the account and queues the
    /// deletion of its data (exit code 4 for a wrong, used or expired token).
    #[command(name = "confirm-deletion")]
    ConfirmDeletion {
        id: String,
        token: String,
        /// The clock (RFC 3339); default: now.
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Record that the HDS point of contact was reviewed (stops the reminders for 12 months).
    #[command(name = "hds-review")]
    HdsReview {
        id: String,
        /// When (RFC 3339); default: now.
        #[arg(long, value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum HdsContactCommand {
    /// Designate or replace the contact.
    Set {
        id: String,
        #[arg(long, value_parser = name_arg)]
        name: String,
        #[arg(long, value_parser = email_arg)]
        email: String,
        #[arg(long, value_parser = phone_arg)]
        phone: String,
        /// When (RFC 3339); default: now.
        #[arg(long, value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs a parsed `AccountCommand`; returns the process exit code.
pub(super) async fn run(cmd: AccountCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AccountCommand::Show { id, format, store } => {
            let env = env(&store).await?;
            let acc = require_account(&env.db, &id).await?;
            let apps = accounts::apps_of(&env.db, &id).await?;
            let timeline = events::timeline(&env.db, &id).await?;
            match format {
                OutputFormat::Json => print_json(&serde_json::json!({
                    "id": acc.id, "email": acc.email, "name": acc.name, "company": acc.company,
                    "address": acc.address, "country": acc.country, "vat_number": acc.vat_number,
                    "language": acc.language, "created_at": acc.created_at, "referred_by": acc.referred_by,
                    "status": acc.status,
                    "siren": acc.siren,
                    "electronic_address": acc.electronic_address().map(|a| serde_json::json!({"scheme": a.scheme, "id": a.id})),
                    "apps": apps.iter().map(|a| serde_json::json!({"id": a.id, "name": a.name})).collect::<Vec<_>>(),
                    "timeline": timeline,
                }))?,
                OutputFormat::Table => {
                    println!("Account {}  ({})", acc.id, acc.status);
                    println!(
                        "{} <{}>{}",
                        acc.name,
                        acc.email,
                        acc.company
                            .as_ref()
                            .map(|c| format!(", {c}"))
                            .unwrap_or_default()
                    );
                    println!(
                        "{}, {}{}",
                        acc.address,
                        acc.country,
                        acc.vat_number
                            .as_ref()
                            .map(|v| format!(", VAT {v}"))
                            .unwrap_or_default()
                    );
                    // The e-invoicing identifiers (EN 16931 BT-47, BT-49), when given.
                    if acc.siren.is_some() || acc.electronic_address.is_some() {
                        let mut parts = Vec::new();
                        if let Some(s) = &acc.siren {
                            parts.push(format!("SIREN {s}"));
                        }
                        if let Some(a) = acc.electronic_address() {
                            parts.push(format!("e-invoice address {} (scheme {})", a.id, a.scheme));
                        }
                        println!("{}", parts.join(", "));
                    }
                    println!(
                        "language {}, created {}{}",
                        acc.language,
                        acc.created_at.to_rfc3339(),
                        acc.referred_by
                            .as_ref()
                            .map(|r| format!(", referred by {r}"))
                            .unwrap_or_default()
                    );
                    println!(
                        "apps: {}",
                        if apps.is_empty() {
                            "none".to_string()
                        } else {
                            apps.iter()
                                .map(|a| format!("{} ({})", a.name, a.id))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    );
                    println!();
                    let rows: Vec<Vec<String>> = timeline
                        .iter()
                        .map(|e| vec![e.at.to_rfc3339(), e.kind.to_string(), e.message.clone()])
                        .collect();
                    print!("{}", views::table(&["AT", "EVENT", "MESSAGE"], &rows));
                }
            }
        }
        AccountCommand::HdsContact(HdsContactCommand::Set {
            id,
            name,
            email,
            phone,
            at,
            store,
        }) => {
            let env = env(&store).await?;
            require_account(&env.db, &id).await?;
            if name.trim().is_empty() || phone.trim().is_empty() {
                return Err(BadInput("--name and --phone must not be empty".into()).into());
            }
            if email.parse::<lettre::Address>().is_err() {
                return Err(BadInput(format!("--email: `{email}` is not an email address")).into());
            }
            let at = at.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now()));
            let mut tx = env.db.begin().await?;
            billrun::store::hds::set(&mut tx, &id, &name, &email, &phone, at).await?;
            events::record(
                &mut tx,
                &id,
                at,
                billrun::core::timeline::TimelineKind::HdsContactSet,
                None,
                &format!("HDS point of contact designated: {name}"),
            )
            .await?;
            tx.commit().await?;
            println!(
                "HDS point of contact of {id}: {name} <{email}>, {phone} (reviewed {})",
                at.format("%Y-%m-%d")
            );
        }
        AccountCommand::HdsReview { id, at, store } => {
            let env = env(&store).await?;
            let at = at.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now()));
            let mut tx = env.db.begin().await?;
            if !billrun::store::hds::review(&mut tx, &id, at).await? {
                return Err(BadInput(format!("account `{id}` has no HDS point of contact: set one with `billrun account hds-contact set`")).into());
            }
            events::record(
                &mut tx,
                &id,
                at,
                billrun::core::timeline::TimelineKind::HdsContactReviewed,
                None,
                "HDS point of contact reviewed",
            )
            .await?;
            tx.commit().await?;
            println!(
                "HDS point of contact of {id} reviewed on {}",
                at.format("%Y-%m-%d")
            );
        }
        AccountCommand::RequestDeletion {
            id,
            now,
            format,
            store,
        } => {
            let env = env(&store).await?;
            let now = now.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now()));
            let report = billrun::closing::request(&env, &id, now).await?;
            match format {
                OutputFormat::Json => print_json(&report)?,
                OutputFormat::Table => {
                    if !report.final_invoices.is_empty() {
                        println!("Final invoice(s):");
                        print!("{}", views::invoice_table(&report.final_invoices));
                    }
                    for w in &report.waived_balances {
                        println!("waived (below the €0.50 minimum, account closing): {w}");
                    }
                    match &report.outcome {
                        billrun::closing::RequestOutcome::ConfirmationSent { expires_at } => {
                            println!(
                                "nothing is due: a confirmation email was queued for account {id}; its token is valid until {}",
                                expires_at.to_rfc3339()
                            )
                        }
                        billrun::closing::RequestOutcome::AwaitingPayment { invoices } => {
                            let list: Vec<String> = invoices
                                .iter()
                                .map(|i| {
                                    format!(
                                        "{} ({}, {} EUR due)",
                                        i.number,
                                        i.status,
                                        billrun::core::money::format_minor(i.amount_due_minor)
                                    )
                                })
                                .collect();
                            println!(
                                "the final invoice could not be collected yet: {}; request the deletion again once it is paid",
                                list.join(", ")
                            );
                        }
                    }
                }
            }
            if let billrun::closing::RequestOutcome::AwaitingPayment { .. } = report.outcome {
                return Ok(ExitCode::from(EXIT_REFUSED));
            }
        }
        AccountCommand::ConfirmDeletion {
            id,
            token,
            now,
            store,
        } => {
            let env = env(&store).await?;
            let now = now.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now()));
            billrun::closing::confirm(&env, &id, &token, now).await?;
            println!("account {id} deactivated; its data is queued for deletion (the delete job)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
