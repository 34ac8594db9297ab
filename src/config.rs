//! Each job's schedule and settings, read from `jobs/<job>.toml` (data an operator edits).
//! A bad file fails at start, naming the file, the line and the reason.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A configuration or input error: reported with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile<S> {
    pub schedule: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The daemon runs a tick missed while every daemon was down once at start, if it is
    /// at most this many hours old.
    #[serde(default = "default_catch_up_hours")]
    pub catch_up_hours: u32,
    pub settings: S,
    /// The file's text, for error lines.
    #[serde(skip)]
    pub text: String,
}

fn default_catch_up_hours() -> u32 {
    36
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceSettings {
    pub due_days: u32,
    pub batch_size: u32,
    /// An EU business whose VAT number VIES has not confirmed recently: bill VAT or hold.
    #[serde(default)]
    pub on_unverified: crate::core::vat::OnUnverified,
    /// Scale-out (`--join`): a process whose heartbeat is older than this is taken for dead.
    #[serde(default = "default_scale_out_stale_seconds")]
    pub scale_out_stale_seconds: u32,
    pub seller: SellerSettings,
}

/// Scale-out: a process of a shared run beats about every second; ten seconds of silence is a
/// dead process, not a slow one (see `runner::beat_every`).
fn default_scale_out_stale_seconds() -> u32 {
    10
}

/// The seller printed on invoices: the core's (`jobs/invoice.toml`'s `[settings.seller]`).
pub type SellerSettings = crate::core::document::Seller;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayChoice {
    Auto,
    Stripe,
    Simulated,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectSettings {
    pub retry_offsets_days: Vec<u32>,
    pub gateway: GatewayChoice,
    pub stripe_base_url: String,
    pub production: bool,
    pub request_timeout_seconds: u64,
    pub transient_tries: u32,
    pub transient_backoff_ms: u64,
    pub batch_size: u32,
    /// Accounts collected at once, each with at most one charge in flight (both stores).
    #[serde(default = "default_collect_concurrency")]
    pub concurrency: u32,
    /// Stripe requests per second, shared by the collect and delete jobs (0: no limit).
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_second: u32,
    /// The simulated gateway's answer time: `0`, milliseconds, or `lognormal:MEDIAN_MS:SIGMA`.
    #[serde(default = "default_simulated_latency")]
    pub simulated_latency: String,
    /// Percent of the simulated gateway's requests that get no conclusive answer.
    #[serde(default)]
    pub simulated_fault_percent: u32,
    /// Scale-out (`--join`): a process whose heartbeat is older than this is taken for dead.
    #[serde(default = "default_scale_out_stale_seconds")]
    pub scale_out_stale_seconds: u32,
}

fn default_collect_concurrency() -> u32 {
    32
}

/// Stripe allows about 100 requests per second in live mode (25 in test mode): 80 leaves room
/// for the dashboard's own calls.
fn default_rate_limit() -> u32 {
    80
}

fn default_simulated_latency() -> String {
    "0".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverSettings {
    pub smtp_url: String,
    pub outbox_dir: String,
    pub from: String,
    pub dashboard_url: String,
    pub support_email: String,
    pub batch_size: u32,
    pub claim_seconds: u64,
    pub retry_backoff_seconds: Vec<u64>,
    pub max_attempts: u32,
    pub smtp_timeout_seconds: u64,
    /// Accounts whose emails are sent at once, each over its own SMTP connection; an
    /// account's emails go one after the other, in the order they were queued.
    #[serde(default = "default_deliver_concurrency")]
    pub concurrency: u32,
}

fn default_deliver_concurrency() -> u32 {
    4
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspendSettings {
    pub grace_days: u32,
    pub warning_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HdsSettings {
    pub review_months: u32,
    pub reminder_every_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteSettings {
    pub batch_size: u32,
    pub confirmation_hours: u32,
    pub confirm_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VatCheckSettings {
    pub vies_base_url: String,
    pub max_age_days: u32,
    pub request_timeout_seconds: u64,
    /// Sent as VIES's requester, so that it answers with a consultation number; empty: the
    /// seller's VAT number.
    #[serde(default)]
    pub requester_vat_number: String,
}

#[derive(Debug, Clone, Copy)]
pub struct JobMeta<'a> {
    pub schedule: &'a str,
    pub enabled: bool,
    pub catch_up_hours: u32,
}

/// Every job's file.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub dir: Option<PathBuf>,
    pub invoice: JobFile<InvoiceSettings>,
    pub collect: JobFile<CollectSettings>,
    pub deliver: JobFile<DeliverSettings>,
    pub suspend: JobFile<SuspendSettings>,
    pub hds: JobFile<HdsSettings>,
    pub delete: JobFile<DeleteSettings>,
    pub vat_check: JobFile<VatCheckSettings>,
}

const DEFAULT_INVOICE: &str = include_str!("../jobs/invoice.toml");
const DEFAULT_COLLECT: &str = include_str!("../jobs/collect.toml");
const DEFAULT_DELIVER: &str = include_str!("../jobs/deliver.toml");
const DEFAULT_SUSPEND: &str = include_str!("../jobs/suspend.toml");
const DEFAULT_HDS: &str = include_str!("../jobs/hds.toml");
const DEFAULT_DELETE: &str = include_str!("../jobs/delete.toml");
const DEFAULT_VAT_CHECK: &str = include_str!("../jobs/vat-check.toml");

impl JobsConfig {
    /// Reads the jobs directory. When `dir` is `None`, `./jobs` is used if it exists, else the
    /// defaults built into the binary (the repository's `jobs/` files).
    pub fn load(dir: Option<&Path>) -> Result<JobsConfig, BadInput> {
        let dir = match dir {
            Some(d) if !d.is_dir() => {
                return Err(BadInput(format!(
                    "jobs directory {} does not exist",
                    d.display()
                )));
            }
            Some(d) => Some(d.to_path_buf()),
            None => Some(PathBuf::from("jobs")).filter(|d| d.is_dir()),
        };
        let invoice = load_file(dir.as_deref(), "invoice", DEFAULT_INVOICE)?;
        let collect = load_file(dir.as_deref(), "collect", DEFAULT_COLLECT)?;
        let deliver = load_file(dir.as_deref(), "deliver", DEFAULT_DELIVER)?;
        let suspend = load_file(dir.as_deref(), "suspend", DEFAULT_SUSPEND)?;
        let hds = load_file(dir.as_deref(), "hds", DEFAULT_HDS)?;
        let delete = load_file(dir.as_deref(), "delete", DEFAULT_DELETE)?;
        let vat_check = load_file(dir.as_deref(), "vat-check", DEFAULT_VAT_CHECK)?;
        let cfg = JobsConfig {
            dir,
            invoice,
            collect,
            deliver,
            suspend,
            hds,
            delete,
            vat_check,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The built-in defaults, ignoring any directory.
    pub fn defaults() -> JobsConfig {
        JobsConfig {
            dir: None,
            invoice: parse("invoice.toml (built-in)", DEFAULT_INVOICE)
                .expect("built-in invoice.toml is valid"),
            collect: parse("collect.toml (built-in)", DEFAULT_COLLECT)
                .expect("built-in collect.toml is valid"),
            deliver: parse("deliver.toml (built-in)", DEFAULT_DELIVER)
                .expect("built-in deliver.toml is valid"),
            suspend: parse("suspend.toml (built-in)", DEFAULT_SUSPEND)
                .expect("built-in suspend.toml is valid"),
            hds: parse("hds.toml (built-in)", DEFAULT_HDS).expect("built-in hds.toml is valid"),
            delete: parse("delete.toml (built-in)", DEFAULT_DELETE)
                .expect("built-in delete.toml is valid"),
            vat_check: parse("vat-check.toml (built-in)", DEFAULT_VAT_CHECK)
                .expect("built-in vat-check.toml is valid"),
        }
    }

    fn validate(&self) -> Result<(), BadInput> {
        let file = self.file_name("invoice");
        check_schedule(&file, &self.invoice.text, &self.invoice.schedule)?;
        if self.invoice.settings.batch_size == 0
            || self.invoice.settings.scale_out_stale_seconds == 0
        {
            return Err(BadInput(format!(
                "{file}: settings.batch_size and settings.scale_out_stale_seconds must be at least 1"
            )));
        }
        let seller = &self.invoice.settings.seller;
        // The seller's identifiers are printed on every invoice and written in its Factur-X
        // XML (BT-30, BT-31, BT-34): a typo would be on every document, stored once and never
        // rewritten. The SIREN first, with the Luhn key as the buyer's is checked at import:
        // the other identifiers are checked against it.
        let siren = crate::core::einvoice::validate_siren(&seller.siren)
            .map_err(|e| BadInput(format!("{file}: settings.seller.siren: {e}")))?;
        check_rcs(seller).map_err(|e| BadInput(format!("{file}: settings.seller.rcs: {e}")))?;
        // The SIRET: the SIREN, the establishment's NIC, INSEE's Luhn key over the 14 digits
        // (and INSEE's exception for La Poste, SIREN 356 000 000: the digit sum a multiple of 5).
        crate::core::einvoice::validate_siret(&seller.siret, &siren)
            .map_err(|e| BadInput(format!("{file}: settings.seller.siret: {e}")))?;
        check_vat_number(&seller.vat_number, &siren)
            .map_err(|e| BadInput(format!("{file}: settings.seller.vat_number: {e}")))?;
        // BT-34 (BR-FR-13): the seller's electronic address, held to the French CTC rules
        // (BR-FR-23/25 for any scheme; scheme 0225, the French directory's, begins with the
        // seller's SIREN: BR-FR-21/22), by the core's check, the buyer's at import.
        if let Some(a) = &seller.electronic_address {
            a.validate(Some(&siren)).map_err(|e| {
                BadInput(format!("{file}: settings.seller.electronic_address: {e}"))
            })?;
            // Scheme 0002 (ISO 6523 ICD 0002, SIRENE) addresses a company by its SIREN: another
            // company's number would send the seller's e-invoices to that company. Checked here,
            // not in the core's check, which imports also apply to buyers.
            if a.scheme == "0002" && !a.id.starts_with(&siren) {
                return Err(BadInput(format!(
                    "{file}: settings.seller.electronic_address: `{}` (scheme 0002, SIRENE) must begin with the seller's SIREN `{siren}`",
                    a.id
                )));
            }
        }
        // BT-90: the SEPA creditor identifier, its check digits (ISO 7064 MOD 97-10).
        if let Some(ics) = &seller.sepa_creditor_id {
            crate::core::einvoice::validate_creditor_id(ics)
                .map_err(|e| BadInput(format!("{file}: settings.seller.sepa_creditor_id: {e}")))?;
        }
        let file = self.file_name("collect");
        let c = &self.collect.settings;
        check_schedule(&file, &self.collect.text, &self.collect.schedule)?;
        if c.batch_size == 0
            || c.transient_tries == 0
            || c.concurrency == 0
            || c.scale_out_stale_seconds == 0
        {
            return Err(BadInput(format!(
                "{file}: settings.batch_size, settings.transient_tries, settings.concurrency and settings.scale_out_stale_seconds must be at least 1"
            )));
        }
        if c.retry_offsets_days.contains(&0) {
            return Err(BadInput(format!(
                "{file}: settings.retry_offsets_days must be whole days of at least 1"
            )));
        }
        if let Err(e) = c.simulated_latency.parse::<crate::gateway::Latency>() {
            return Err(BadInput(format!("{file}: settings.simulated_latency: {e}")));
        }
        if c.simulated_fault_percent > 100 {
            return Err(BadInput(format!(
                "{file}: settings.simulated_fault_percent must be between 0 and 100"
            )));
        }
        let file = self.file_name("deliver");
        let d = &self.deliver.settings;
        check_schedule(&file, &self.deliver.text, &self.deliver.schedule)?;
        if d.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(BadInput(format!(
                "{file}: settings.from `{}` is not an email address",
                d.from
            )));
        }
        if d.batch_size == 0 || d.max_attempts == 0 || d.concurrency == 0 {
            return Err(BadInput(format!(
                "{file}: settings.batch_size, settings.max_attempts and settings.concurrency must be at least 1"
            )));
        }
        if d.retry_backoff_seconds.is_empty() {
            return Err(BadInput(format!(
                "{file}: settings.retry_backoff_seconds needs at least one wait"
            )));
        }
        let file_s = self.file_name("suspend");
        check_schedule(&file_s, &self.suspend.text, &self.suspend.schedule)?;
        if self.suspend.settings.warning_days > self.suspend.settings.grace_days {
            return Err(BadInput(format!(
                "{file_s}: settings.warning_days must not exceed settings.grace_days"
            )));
        }
        let file_h = self.file_name("hds");
        check_schedule(&file_h, &self.hds.text, &self.hds.schedule)?;
        if self.hds.settings.review_months == 0 || self.hds.settings.reminder_every_days == 0 {
            return Err(BadInput(format!(
                "{file_h}: settings.review_months and settings.reminder_every_days must be at least 1"
            )));
        }
        let file_d = self.file_name("delete");
        let del = &self.delete.settings;
        check_schedule(&file_d, &self.delete.text, &self.delete.schedule)?;
        if del.batch_size == 0 || del.confirmation_hours == 0 {
            return Err(BadInput(format!(
                "{file_d}: settings.batch_size and settings.confirmation_hours must be at least 1"
            )));
        }
        if !del.confirm_url.contains("{token}") {
            return Err(BadInput(format!(
                "{file_d}: settings.confirm_url must contain {{token}}"
            )));
        }
        let file_v = self.file_name("vat-check");
        let v = &self.vat_check.settings;
        check_schedule(&file_v, &self.vat_check.text, &self.vat_check.schedule)?;
        if v.request_timeout_seconds == 0 {
            return Err(BadInput(format!(
                "{file_v}: settings.request_timeout_seconds must be at least 1"
            )));
        }
        if !(v.vies_base_url.starts_with("https://") || v.vies_base_url.starts_with("http://")) {
            return Err(BadInput(format!(
                "{file_v}: settings.vies_base_url `{}` must be an http(s) URL",
                v.vies_base_url
            )));
        }
        if d.batch_size == 0 || d.retry_backoff_seconds.is_empty() || d.max_attempts == 0 {
            return Err(BadInput(format!(
                "{file}: settings.batch_size, settings.max_attempts and settings.retry_backoff_seconds must not be empty or zero"
            )));
        }
        Ok(())
    }

    /// A job's schedule, whether it is enabled, and its catch-up window.
    pub fn meta(&self, job: &str) -> Option<JobMeta<'_>> {
        fn m<S>(f: &JobFile<S>) -> JobMeta<'_> {
            JobMeta {
                schedule: &f.schedule,
                enabled: f.enabled,
                catch_up_hours: f.catch_up_hours,
            }
        }
        Some(match job {
            "invoice" => m(&self.invoice),
            "collect" => m(&self.collect),
            "deliver" => m(&self.deliver),
            "suspend" => m(&self.suspend),
            "hds" => m(&self.hds),
            "delete" => m(&self.delete),
            "vat-check" => m(&self.vat_check),
            _ => return None,
        })
    }

    pub fn file_name(&self, job: &str) -> String {
        match &self.dir {
            Some(d) => d.join(format!("{job}.toml")).display().to_string(),
            None => format!("{job}.toml (built-in)"),
        }
    }
}

fn load_file<S: DeserializeOwned>(
    dir: Option<&Path>,
    job: &str,
    default: &str,
) -> Result<JobFile<S>, BadInput> {
    // A jobs directory holds every job's file: a missing one is an error, never a silent
    // fall-back to the built-in copy (which would run that job, enabled, with settings the
    // operator never saw). `enabled = false` in its file is how a job is turned off.
    match dir.map(|d| d.join(format!("{job}.toml"))) {
        Some(path) if !path.exists() => Err(BadInput(format!(
            "{}: missing: the jobs directory {} needs a file for every job (set `enabled = false` in it to turn the job off)",
            path.display(),
            dir.map(|d| d.display().to_string()).unwrap_or_default()
        ))),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))?;
            parse(&path.display().to_string(), &text)
        }
        None => parse(&format!("{job}.toml (built-in)"), default),
    }
}

/// Reads an operator's TOML file (a job's, the chart of accounts) into `T`; an error names
/// the file and the line.
pub fn from_toml<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, BadInput> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = e.message().trim().to_string();
        match line {
            Some(l) => BadInput(format!("{file}:{l}: {msg}")),
            None => BadInput(format!("{file}: {msg}")),
        }
    })
}

/// Parses a job file; errors name the file and line.
pub fn parse<S: DeserializeOwned>(file: &str, text: &str) -> Result<JobFile<S>, BadInput> {
    let mut parsed: JobFile<S> = from_toml(file, text)?;
    parsed.text = text.to_string();
    Ok(parsed)
}

/// The seller's RCS entry reads `RCS <city> <SIREN>` (article R123-237 of the Code de
/// commerce) and its number is the seller's SIREN.
fn check_rcs(seller: &SellerSettings) -> Result<(), String> {
    let example = "e.g. `RCS Strasbourg 812 345 676`";
    let rcs = seller.rcs.trim();
    let Some(rest) = rcs.strip_prefix("RCS ") else {
        return Err(format!("`{rcs}` must read `RCS <city> <SIREN>`, {example}"));
    };
    // The number is the trailing run of digits and spaces; the city is what comes before.
    let city_end = rest
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == ' '))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let (city, number) = rest.split_at(city_end);
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if city.trim().is_empty() || digits.len() != 9 {
        return Err(format!(
            "`{rcs}` must read `RCS <city> <SIREN>` with a 9-digit SIREN, {example}"
        ));
    }
    let siren: String = seller.siren.chars().filter(char::is_ascii_digit).collect();
    if digits != siren {
        return Err(format!(
            "`{rcs}` does not carry the seller's SIREN `{}`",
            seller.siren
        ));
    }
    Ok(())
}

/// A French VAT number (`FR`, a 2-character key, the SIREN) is the seller's own: its key is
/// right — a numeric key is (12 + 3 × (SIREN mod 97)) mod 97 (article 286 ter of the CGI,
/// the VAT key rule; `core::vat_number`, the check imports apply to buyers' numbers) — and
/// the SIREN in it is the seller's. A seller registered elsewhere has another state's number,
/// which this does not check.
fn check_vat_number(vat_number: &str, siren: &str) -> Result<(), String> {
    let number = crate::core::vat_number::normalize(vat_number);
    let Some(body) = number.strip_prefix("FR") else {
        return Ok(());
    };
    crate::core::vat_number::validate("FR", &number).map_err(|e| e.to_string())?;
    // `validate` has checked the form: a 2-character key, then 9 digits.
    if &body[2..] != siren {
        return Err(format!(
            "`{vat_number}` does not carry the seller's SIREN `{siren}` (a French VAT number is `FR`, a 2-character key, the SIREN)"
        ));
    }
    Ok(())
}

/// A cron line has 5 fields (minute first) or 6 (seconds first), in UTC; errors name the line
/// of `schedule =` in the file.
fn check_schedule(file: &str, text: &str, schedule: &str) -> Result<(), BadInput> {
    crate::core::schedule::Schedule::parse(schedule)
        .map(|_| ())
        .map_err(|e| {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("schedule"))
                .map(|i| format!(":{}", i + 1))
                .unwrap_or_default();
            BadInput(format!("{file}{line}: {e}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_and_line() {
        let text = "schedule = \"0 0 6 1 * *\"\nenabled = true\n[settings]\ndue_days = \"soon\"\nbatch_size = 10\n";
        let _ = &text;
        let err = parse::<InvoiceSettings>("jobs/invoice.toml", text).unwrap_err();
        assert!(err.0.starts_with("jobs/invoice.toml:4:"), "{err}");
        let text =
            "schedule = \"0 0 6 1 * *\"\n[settings]\ndue_days = 1\nbatch_size = 10\ncolour = 1\n";
        let err = parse::<InvoiceSettings>("f.toml", text).unwrap_err();
        assert!(
            err.0.contains("f.toml:5:") && err.0.contains("colour"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_cron_line_names_file_and_line() {
        let text =
            "# comment\nschedule = \"0 0 99 * * *\"\n[settings]\ndue_days = 1\nbatch_size = 10\n";
        let err = check_schedule("jobs/invoice.toml", text, "0 0 99 * * *").unwrap_err();
        assert!(
            err.0
                .starts_with("jobs/invoice.toml:2: schedule `0 0 99 * * *`"),
            "{err}"
        );
        let err = check_schedule("jobs/collect.toml", "schedule = \"0 7\"", "0 7").unwrap_err();
        assert!(
            err.0.contains("jobs/collect.toml:1:") && err.0.contains("2 fields"),
            "{err}"
        );
    }

    #[test]
    fn a_jobs_directory_missing_a_job_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        for (job, text) in [
            ("invoice", DEFAULT_INVOICE),
            ("collect", DEFAULT_COLLECT),
            ("deliver", DEFAULT_DELIVER),
            ("suspend", DEFAULT_SUSPEND),
            ("hds", DEFAULT_HDS),
            ("vat-check", DEFAULT_VAT_CHECK),
        ] {
            std::fs::write(dir.path().join(format!("{job}.toml")), text).unwrap();
        }
        let err = JobsConfig::load(Some(dir.path())).unwrap_err();
        let delete = dir.path().join("delete.toml").display().to_string();
        assert!(err.0.starts_with(&format!("{delete}: missing")), "{err}");
        assert!(err.0.contains("enabled = false"), "{err}");
        // With every file, it loads; a job is turned off by its file.
        let off = DEFAULT_DELETE.replace("enabled = true", "enabled = false");
        assert_ne!(off, DEFAULT_DELETE);
        std::fs::write(dir.path().join("delete.toml"), off).unwrap();
        let cfg = JobsConfig::load(Some(dir.path())).unwrap();
        assert!(!cfg.meta("delete").unwrap().enabled);
        assert!(cfg.meta("invoice").unwrap().enabled);
    }

    #[test]
    fn the_built_in_defaults_parse() {
        let d = JobsConfig::defaults();
        assert_eq!(d.invoice.settings.due_days, 15);
        assert!(d.validate().is_ok());
        // VIES's REST API, daily, confirmations good for 31 days; VAT charged when unverified.
        let v = &d.vat_check.settings;
        assert_eq!(
            v.vies_base_url,
            "https://ec.europa.eu/taxation_customs/vies/rest-api"
        );
        assert_eq!(v.max_age_days, 31);
        assert!(d.meta("vat-check").unwrap().enabled);
        assert_eq!(
            d.invoice.settings.on_unverified,
            crate::core::vat::OnUnverified::ChargeVat
        );
    }

    #[test]
    fn on_unverified_reads_charge_vat_or_hold_and_nothing_else() {
        let hold =
            DEFAULT_INVOICE.replace("on_unverified = \"charge_vat\"", "on_unverified = \"hold\"");
        assert_ne!(hold, DEFAULT_INVOICE);
        let f = parse::<InvoiceSettings>("invoice.toml", &hold).unwrap();
        assert_eq!(
            f.settings.on_unverified,
            crate::core::vat::OnUnverified::Hold
        );
        let bad = DEFAULT_INVOICE.replace(
            "on_unverified = \"charge_vat\"",
            "on_unverified = \"maybe\"",
        );
        let err = parse::<InvoiceSettings>("invoice.toml", &bad).unwrap_err();
        assert!(err.0.starts_with("invoice.toml:"), "{err}");
        assert!(err.0.contains("maybe"), "{err}");
    }

    #[test]
    fn seller_rcs_r123_237_code_de_commerce_is_checked_at_load_naming_the_file() {
        let good = DEFAULT_INVOICE;
        assert!(good.contains("rcs = \"RCS Strasbourg 812 345 676\""));
        let cases = [
            ("812 345 676", "must read `RCS <city> <SIREN>`"),
            ("RCS 812 345 676", "9-digit SIREN"),
            ("RCS Strasbourg 812 345", "9-digit SIREN"),
            (
                "RCS Strasbourg 999 999 999",
                "does not carry the seller's SIREN",
            ),
        ];
        for (rcs, why) in cases {
            let (loaded, file) =
                load_with_invoice(&good.replace("RCS Strasbourg 812 345 676", rcs));
            let err = loaded.unwrap_err();
            assert!(
                err.0.starts_with(&format!("{file}: settings.seller.rcs: ")) && err.0.contains(why),
                "{rcs}: {err}"
            );
        }
        let (loaded, _) =
            load_with_invoice(&good.replace("rcs = \"RCS Strasbourg 812 345 676\"\n", ""));
        let err = loaded.unwrap_err();
        assert!(
            err.0.contains("invoice.toml") && err.0.contains("rcs"),
            "{err}"
        );
        let ok = load_with_invoice(good).0.unwrap();
        assert_eq!(ok.invoice.settings.seller.rcs, "RCS Strasbourg 812 345 676");
    }

    /// Loads a jobs directory holding every job's built-in file but `invoice.toml`, which is
    /// `invoice`; the result and the invoice file's name.
    fn load_with_invoice(invoice: &str) -> (Result<JobsConfig, BadInput>, String) {
        let dir = tempfile::tempdir().unwrap();
        for (job, text) in [
            ("invoice", invoice),
            ("collect", DEFAULT_COLLECT),
            ("deliver", DEFAULT_DELIVER),
            ("suspend", DEFAULT_SUSPEND),
            ("hds", DEFAULT_HDS),
            ("delete", DEFAULT_DELETE),
            ("vat-check", DEFAULT_VAT_CHECK),
        ] {
            std::fs::write(dir.path().join(format!("{job}.toml")), text).unwrap();
        }
        let file = dir.path().join("invoice.toml").display().to_string();
        (JobsConfig::load(Some(dir.path())), file)
    }

    /// The built-in invoice.toml with `from` replaced by `to` is refused at load, naming the
    /// file and `settings.seller.<field>`, and saying `why`.
    fn refused(from: &str, to: &str, field: &str, why: &str) {
        assert!(DEFAULT_INVOICE.contains(from), "{from}");
        let (loaded, file) = load_with_invoice(&DEFAULT_INVOICE.replace(from, to));
        let err = loaded.unwrap_err();
        assert!(
            err.0
                .starts_with(&format!("{file}: settings.seller.{field}: "))
                && err.0.contains(why),
            "{to}: {err}"
        );
    }

    fn accepted(replacements: &[(&str, &str)]) -> JobsConfig {
        let mut text = DEFAULT_INVOICE.to_string();
        for (from, to) in replacements {
            assert!(text.contains(from), "{from}");
            text = text.replace(from, to);
        }
        let (loaded, _) = load_with_invoice(&text);
        loaded.unwrap_or_else(|e| panic!("{replacements:?}: {e}"))
    }

    #[test]
    fn the_sample_sellers_identifiers_are_valid() {
        let c = accepted(&[]);
        let seller = &c.invoice.settings.seller;
        assert_eq!(seller.siren, "812 345 676");
        assert_eq!(seller.siret, "812 345 676 00025");
        assert_eq!(seller.vat_number, "FR19812345676");
        assert_eq!(seller.rcs, "RCS Strasbourg 812 345 676");
    }

    #[test]
    fn seller_siren_must_pass_the_luhn_key_insee() {
        let why = "its check digit is wrong (Luhn key, as INSEE computes it)";
        refused(
            "siren = \"812 345 676\"",
            "siren = \"812 345 674\"",
            "siren",
            why,
        );
        refused(
            "siren = \"812 345 676\"",
            "siren = \"812 345 67\"",
            "siren",
            "a SIREN has 9 digits",
        );
        // The sample of earlier releases, consistent throughout but with a wrong Luhn key:
        // the SIREN is named, before the identifiers checked against it.
        let old = DEFAULT_INVOICE
            .replace("812 345 676 00025", "812 345 674 00021")
            .replace("FR19812345676", "FR45812345674")
            .replace("812 345 676", "812 345 674")
            .replace("812345676", "812345674");
        let (loaded, file) = load_with_invoice(&old);
        let err = loaded.unwrap_err();
        assert!(
            err.0
                .starts_with(&format!("{file}: settings.seller.siren: `812 345 674`"))
                && err.0.contains(why),
            "{err}"
        );
    }

    #[test]
    fn seller_siret_must_be_14_digits_beginning_with_the_siren() {
        let from = "siret = \"812 345 676 00025\"";
        refused(
            from,
            "siret = \"812 345 676 0002\"",
            "siret",
            "a SIRET has 14 digits",
        );
        refused(
            from,
            "siret = \"812 345 676 0002A\"",
            "siret",
            "a SIRET has 14 digits",
        );
        // INSEE's own SIRET: a right Luhn key, another company's SIREN.
        refused(
            from,
            "siret = \"120 027 016 00563\"",
            "siret",
            "does not begin with the SIREN `812345676`",
        );
    }

    #[test]
    fn seller_siret_must_pass_the_luhn_key_insee() {
        refused(
            "siret = \"812 345 676 00025\"",
            "siret = \"812 345 676 00021\"",
            "siret",
            "its check digit is wrong (Luhn key over the 14 digits",
        );
        // Another establishment of the seller: NIC 00017.
        let c = accepted(&[("812 345 676 00025", "812 345 676 00017")]);
        assert_eq!(c.invoice.settings.seller.siret, "812 345 676 00017");
    }

    #[test]
    fn seller_siret_of_la_poste_has_a_digit_sum_multiple_of_5_insee() {
        // La Poste (SIREN 356 000 000, VAT key 39): an establishment's SIRET whose digit sum
        // is 15 (its Luhn key is wrong) is accepted; a digit sum of 29 is not.
        let la_poste = |siret: &'static str| {
            let mut text = DEFAULT_INVOICE.to_string();
            for (from, to) in [
                ("812 345 676 00025", siret),
                ("FR19812345676", "FR39356000000"),
                ("812 345 676", "356 000 000"),
                ("812345676", "356000000"),
            ] {
                text = text.replace(from, to);
            }
            load_with_invoice(&text)
        };
        let (ok, _) = la_poste("356 000 000 00001");
        assert_eq!(
            ok.unwrap().invoice.settings.seller.siret,
            "356 000 000 00001"
        );
        let (bad, file) = la_poste("356 000 000 00049");
        let err = bad.unwrap_err();
        assert!(
            err.0
                .starts_with(&format!("{file}: settings.seller.siret: "))
                && err.0.contains("check digit is wrong"),
            "{err}"
        );
    }

    #[test]
    fn seller_vat_number_key_is_article_286_ter_cgi_and_carries_the_siren() {
        let from = "vat_number = \"FR19812345676\"";
        // (12 + 3 × (812345676 mod 97)) mod 97 = 19, not 45.
        refused(
            from,
            "vat_number = \"FR45812345676\"",
            "vat_number",
            "its check digits are wrong",
        );
        refused(
            from,
            "vat_number = \"FR1981234567\"",
            "vat_number",
            "a 2-character key and a 9-digit SIREN",
        );
        // A right key, another company's SIREN.
        refused(
            from,
            "vat_number = \"FR83404833048\"",
            "vat_number",
            "does not carry the seller's SIREN `812345676`",
        );
        // Written with spaces, as on a Kbis: the same number.
        accepted(&[("FR19812345676", "FR 19 812 345 676")]);
        // Only French numbers are checked (a seller registered in another state).
        accepted(&[("FR19812345676", "DE123456789")]);
    }

    #[test]
    fn seller_electronic_address_0225_or_0002_begins_with_the_siren_br_fr_21_22() {
        let from = "electronic_address = { scheme = \"0225\", id = \"812345676\" }";
        refused(
            from,
            "electronic_address = { scheme = \"0225\", id = \"404833048\" }",
            "electronic_address",
            "must begin with the SIREN `812345676`",
        );
        refused(
            from,
            "electronic_address = { scheme = \"0002\", id = \"404833048\" }",
            "electronic_address",
            "(scheme 0002, SIRENE) must begin with the seller's SIREN `812345676`",
        );
        accepted(&[(
            from,
            "electronic_address = { scheme = \"0002\", id = \"812345676\" }",
        )]);
        accepted(&[(
            from,
            "electronic_address = { scheme = \"0225\", id = \"812345676_FACT\" }",
        )]);
        // Other schemes name the seller otherwise (a GLN).
        accepted(&[(
            from,
            "electronic_address = { scheme = \"0088\", id = \"3014531200007\" }",
        )]);
    }

    #[test]
    fn deliver_settings_that_would_stall_or_panic_are_refused() {
        type Break = fn(&mut DeliverSettings);
        let cases: [(&str, Break); 4] = [
            ("concurrency", |d| d.concurrency = 0),
            ("batch_size", |d| d.batch_size = 0),
            ("max_attempts", |d| d.max_attempts = 0),
            ("retry_backoff_seconds", |d| d.retry_backoff_seconds.clear()),
        ];
        for (name, break_it) in cases {
            let mut c = JobsConfig::defaults();
            break_it(&mut c.deliver.settings);
            let err = c.validate().unwrap_err();
            assert!(
                err.0.contains("deliver.toml") && err.0.contains(name),
                "{name}: {err}"
            );
        }
        // A deliver.toml from before the setting still parses, four accounts at once.
        let old = DEFAULT_DELIVER.replace("concurrency = 4\n", "");
        assert!(!old.contains("concurrency ="));
        let d = parse::<DeliverSettings>("deliver.toml", &old).unwrap();
        assert_eq!(d.settings.concurrency, 4);
    }
}
