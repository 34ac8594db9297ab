//! Email templates and their renderer (minijinja).
//!
//! An email in the outbox is a kind ([`EmailKind`], the core's one list), a language (`fr` or
//! `en`) and a JSON object of data;
//! [`Templates::render`] turns them into a subject, a plain-text body and an HTML body.
//!
//! The templates live under `templates/email/<kind>/<lang>.{subject.txt,txt,html}`. They are
//! compiled into the binary ([`Templates::builtin`]), and an operator may override any of them
//! with an edited copy of that directory ([`Templates::from_dir`]).
//!
//! Rules the templates rely on:
//! - Undefined behaviour is strict: a variable missing from the data is an error, never an
//!   empty string. `null` is a defined value (falsy in `{% if %}`). On top of that, every key
//!   listed by [`data_keys`] for the kind must be present in the data.
//! - HTML is autoescaped in `.html` parts and not in `.txt` parts.
//! - The subject is reduced to one line (line breaks and control characters become spaces).
//! - The renderer adds `language` (`fr` or `en`) to the data; the filters below read it.
//!
//! Filters (each also takes an optional explicit language argument: `{{ x|eur("en") }}`):
//! - `eur`: a decimal amount (`"1234.5"`, or a number) in euros: fr `1 234,50 €` (narrow
//!   no-break space between thousands, no-break space before `€`), en `€1,234.50`; at least
//!   two decimals, more are kept, never rounded.
//! - `reason`: a Stripe decline code in words (`insufficient_funds` → "solde insuffisant" /
//!   "insufficient funds"); unknown codes and `null` get a generic "payment declined".
//! - `date`: `2026-11-16` (or an RFC 3339 time, taken in UTC) → `16 novembre 2026` /
//!   `16 November 2026`.
//! - `datetime`: an RFC 3339 time → `16 novembre 2026 à 14 h 30 UTC` /
//!   `16 November 2026 at 14:30 UTC`.
//! - `period`: a billing period `2026-10` → `octobre 2026` / `October 2026`.
//! - `payment_method`: `card` | `sepa_debit` | `credit` → "carte bancaire" / "card", ….
//!
//! Functions:
//! - `payment_terms(amount_due, due_at)`: how and when the invoice is paid, worded by
//!   `core::terms` as the PDF words it (charged at issue; the due date; suspension possible
//!   from the day after).

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use minijinja::value::merge_maps;
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value, context,
};

use billrun_core::email::EmailKind;
use billrun_core::locale::Language;

/// One rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// One line, trimmed.
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown email language `{0}` (expected `fr` or `en`)")]
    UnknownLanguage(String),
    #[error("the data of email {kind} must be a JSON object, not {found}")]
    DataNotObject {
        kind: EmailKind,
        found: &'static str,
    },
    #[error("the data of email {kind} lacks {}", .keys.join(", "))]
    MissingData { kind: EmailKind, keys: Vec<String> },
    #[error("cannot read email templates at {}: {message}", .path.display())]
    Read { path: PathBuf, message: String },
    #[error("invalid email template {}: {message}", .path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("rendering the {part} of email {kind} ({language}) failed: {message}")]
    Render {
        kind: EmailKind,
        language: String,
        /// `subject`, `text` or `html`.
        part: &'static str,
        /// minijinja's message (template name and line included), plus the variables missing
        /// from the data when it is an undefined-value error.
        message: String,
    },
}

/// The languages every kind has templates for.
pub const LANGUAGES: &[&str] = &["fr", "en"];

/// The three parts of an email: (part name, file suffix after `<lang>.`).
const PARTS: [(&str, &str); 3] = [
    ("subject", "subject.txt"),
    ("text", "txt"),
    ("html", "html"),
];

/// Keys every email's data must hold, whatever its kind.
pub const COMMON_KEYS: &[&str] = &[
    "account_name",
    "seller_name",
    "dashboard_url",
    "support_email",
];

/// The built-in templates: the six files of every kind, from the core's one list of kinds
/// (`with_email_kinds!`), under the kind's name. A kind without its directory, or a file
/// missing from it, does not compile.
macro_rules! builtin_templates {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// (template name, source) of every built-in template.
        const BUILTIN: &[(&str, &str)] = &[$(
            builtin_templates!(@file $name, "fr.subject.txt"),
            builtin_templates!(@file $name, "fr.txt"),
            builtin_templates!(@file $name, "fr.html"),
            builtin_templates!(@file $name, "en.subject.txt"),
            builtin_templates!(@file $name, "en.txt"),
            builtin_templates!(@file $name, "en.html"),
        )+];
    };
    (@file $name:literal, $file:literal) => {
        (
            concat!($name, "/", $file),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../templates/email/", $name, "/", $file)),
        )
    };
}

billrun_core::with_email_kinds!(builtin_templates);

/// The kind-specific keys of the data (on top of [`COMMON_KEYS`]), per kind: an exhaustive
/// match, so a kind added to the core's list does not compile until its keys are written here.
macro_rules! kinds {
    ($($variant:ident => [$($key:literal),* $(,)?]),+ $(,)?) => {
        fn kind_keys(kind: EmailKind) -> &'static [&'static str] {
            match kind {
                $(EmailKind::$variant => &[$($key),*]),+
            }
        }
    };
}

kinds! {
    InvoiceIssued => ["invoice_number", "period", "total", "amount_due", "due_at"],
    PaymentSucceeded => ["invoice_number", "amount", "method", "payment_intent"],
    PaymentFailed => [
        "invoice_number", "amount_due", "reason", "next_attempt_at", "retries_exhausted",
    ],
    ActionRequired => [
        "invoice_number", "amount_due", "reason", "next_attempt_at", "retries_exhausted",
        "decline_class",
    ],
    AccountSuspended => ["amount_due", "invoices", "deletion_date"],
    DataDeletionWarning => ["amount_due", "deletion_date"],
    AccountDeletionConfirmation => ["token", "expires_at", "confirm_url"],
    AccountDeleted => ["deleted_at", "reason"],
    HdsReviewReminder => ["contact_name", "contact_email", "contact_phone", "last_reviewed_at"],
    CreditNoteIssued => [
        "credit_note_number", "invoice_number", "invoice_issued_at", "reason", "total",
        "reduce_due", "refund_to_payment_method", "refund_to_credit", "refund_outside",
    ],
    PaymentDisputed => ["invoice_number", "amount", "amount_due"],
}

/// The kind-specific data of a `credit_note_issued` email (the caller adds [`COMMON_KEYS`]):
/// the numbers, the credited invoice's issue date (`2026-11-01`), the reason, and the amounts
/// as decimal strings, VAT included: the total, then how it is settled (`CreditNote::refund`:
/// taken off the invoice's amount due, refunded to the payment method, to the prepaid credit,
/// settled outside billrun), each `"0.00"` when unused. The templates show the parts above
/// zero; the PDF is attached by the delivery.
pub fn credit_note_issued_data(
    cn: &billrun_core::document::CreditNote,
) -> serde_json::Map<String, serde_json::Value> {
    use billrun_core::money::format_minor;
    let r = &cn.refund;
    let amount = |m: billrun_core::money::Money| serde_json::Value::from(format_minor(m.minor));
    let mut data = serde_json::Map::new();
    data.insert(
        "credit_note_number".into(),
        cn.number.clone().unwrap_or_default().into(),
    );
    data.insert("invoice_number".into(), cn.invoice_number.clone().into());
    data.insert(
        "invoice_issued_at".into(),
        cn.invoice_issued_at
            .date_naive()
            .format("%Y-%m-%d")
            .to_string()
            .into(),
    );
    data.insert("reason".into(), cn.reason.clone().into());
    data.insert("total".into(), amount(cn.total));
    data.insert("reduce_due".into(), amount(r.reduce_due));
    data.insert(
        "refund_to_payment_method".into(),
        amount(r.to_payment_method),
    );
    data.insert("refund_to_credit".into(), amount(r.to_credit));
    data.insert("refund_outside".into(), amount(r.outside));
    data
}

/// The keys the data of `kind` must hold: its own ones, then [`COMMON_KEYS`]. A key may hold `null` where the template allows it (`payment_intent`,
/// `next_attempt_at`, `message`, the HDS contact fields and `last_reviewed_at`).
pub fn data_keys(kind: EmailKind) -> Vec<&'static str> {
    kind_keys(kind).iter().chain(COMMON_KEYS).copied().collect()
}

/// The layout every HTML part extends (`{% extends "_layout.html" %}`): header, signature and
/// footer, in the email's language.
const LAYOUT: (&str, &str) = (
    "_layout.html",
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../templates/email/_layout.html"
    )),
);

/// The compiled email templates. Build once, render many times, from any thread.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Environment<'static>,
}

// The renderer is shared between the delivery job's tasks.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Templates>();
};

impl Templates {
    /// The templates built into the binary (include_str! of every file under templates/email,
    /// so the binary works from any directory).
    pub fn builtin() -> Templates {
        let mut env = base_env();
        for (name, source) in BUILTIN.iter().chain([&LAYOUT]) {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("built-in email template {name} is invalid: {e}"));
        }
        Templates { env }
    }

    /// Templates from a directory laid out like templates/email (an operator's edited copy);
    /// any file missing there falls back to the built-in one. Every file is read and compiled
    /// now, so a syntax error is reported here rather than when an email is sent. Files whose
    /// names are not template names are ignored with a warning.
    pub fn from_dir(dir: &Path) -> Result<Templates, TemplateError> {
        let read_err = |path: &Path, e: std::io::Error| TemplateError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let meta = fs::metadata(dir).map_err(|e| read_err(dir, e))?;
        if !meta.is_dir() {
            return Err(TemplateError::Read {
                path: dir.to_path_buf(),
                message: "not a directory".into(),
            });
        }
        let mut env = base_env();
        for (name, builtin) in BUILTIN.iter().chain([&LAYOUT]) {
            let path = dir.join(name);
            match fs::read_to_string(&path) {
                Ok(source) => env.add_template_owned(name.to_string(), source),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    env.add_template(name, builtin)
                }
                Err(e) => return Err(read_err(&path, e)),
            }
            .map_err(|e| TemplateError::Syntax {
                path,
                message: e.to_string(),
            })?;
        }
        warn_unknown_files(dir);
        Ok(Templates { env })
    }

    /// Renders the subject, text and HTML of one email. `data` must be a JSON object holding
    /// every key of [`data_keys`]`(kind)`.
    pub fn render(
        &self,
        kind: EmailKind,
        language: &str,
        data: &serde_json::Value,
    ) -> Result<RenderedEmail, TemplateError> {
        let keys = data_keys(kind);
        if !LANGUAGES.contains(&language) {
            return Err(TemplateError::UnknownLanguage(language.to_string()));
        }
        let Some(object) = data.as_object() else {
            return Err(TemplateError::DataNotObject {
                kind,
                found: json_type(data),
            });
        };
        let missing: Vec<String> = keys
            .iter()
            .filter(|k| !object.contains_key(**k))
            .map(|k| k.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(TemplateError::MissingData {
                kind,
                keys: missing,
            });
        }
        // The last map wins: `language` is always the one the email is rendered in.
        let ctx = merge_maps([
            Value::from_serialize(data),
            context! { language => language },
        ]);
        let [subject, text, html] =
            PARTS.map(|(part, suffix)| self.render_part(kind, language, part, suffix, &ctx));
        Ok(RenderedEmail {
            subject: one_line(&subject?),
            text: text?,
            html: html?,
        })
    }

    fn render_part(
        &self,
        kind: EmailKind,
        language: &str,
        part: &'static str,
        suffix: &str,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        let name = format!("{kind}/{language}.{suffix}");
        let err = |message: String| TemplateError::Render {
            kind,
            language: language.to_string(),
            part,
            message,
        };
        let template = self
            .env
            .get_template(&name)
            .map_err(|e| err(e.to_string()))?;
        template.render(ctx).map_err(|e| {
            let mut message = e.to_string();
            if e.kind() == ErrorKind::UndefinedError {
                let mut missing: Vec<String> = template
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| v != "loop" && ctx.get_attr(v).is_ok_and(|x| x.is_undefined()))
                    .filter(|v| !self.env.globals().any(|(g, _)| g == v))
                    .collect();
                missing.sort();
                if !missing.is_empty() {
                    message.push_str(&format!("; missing from the data: {}", missing.join(", ")));
                }
            }
            err(message)
        })
    }
}

fn base_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.add_filter("eur", filter_eur);
    env.add_filter("reason", filter_reason);
    env.add_filter("date", filter_date);
    env.add_filter("datetime", filter_datetime);
    env.add_filter("period", filter_period);
    env.add_filter("payment_method", filter_payment_method);
    env.add_function("payment_terms", function_payment_terms);
    env
}

/// Logs the entries of an override directory that no template name matches (a typo would
/// otherwise silently leave the built-in template in use).
fn warn_unknown_files(dir: &Path) {
    let visible = |e: &fs::DirEntry| !e.file_name().to_string_lossy().starts_with('.');
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten().filter(visible) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name == LAYOUT.0 && path.is_file() {
            continue;
        }
        if !(EmailKind::parse(&name).is_some() && path.is_dir()) {
            tracing::warn!(path = %path.display(), "ignored: not an email kind directory");
            continue;
        }
        let Ok(files) = fs::read_dir(&path) else {
            continue;
        };
        for file in files.flatten().filter(visible) {
            let file_name = file.file_name().to_string_lossy().into_owned();
            let known = LANGUAGES.iter().any(|lang| {
                PARTS
                    .iter()
                    .any(|(_, suffix)| file_name == format!("{lang}.{suffix}"))
            });
            if !known {
                tracing::warn!(
                    path = %file.path().display(),
                    "ignored: not an email template name (expected <fr|en>.<subject.txt|txt|html>)"
                );
            }
        }
    }
}

/// Joins the non-empty lines of a rendered subject with single spaces; control characters
/// (a stray CR) become spaces too, so the subject is always a single header line.
fn one_line(s: &str) -> String {
    let joined = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    joined
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------

/// The filters' language: the one language type of the core.
type Lang = Language;

/// The explicit language argument, else the `language` of the context.
fn lang(state: &State, explicit: Option<&str>) -> Result<Lang, Error> {
    let from_ctx = state.lookup("language");
    let code = match explicit {
        Some(code) => code,
        None => from_ctx.as_ref().and_then(|v| v.as_str()).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "no `language` in the context; pass the language as an argument",
            )
        })?,
    };
    Language::parse(code).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("unknown language `{code}` (expected `fr` or `en`)"),
        )
    })
}

/// A strict filter input: undefined is an error, whatever the undefined behaviour.
fn defined(value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        Err(Error::from(ErrorKind::UndefinedError))
    } else {
        Ok(())
    }
}

fn text_of<'a>(value: &'a Value, what: &str) -> Result<&'a str, Error> {
    defined(value)?;
    value.as_str().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{what} must be a string, not {value:?}"),
        )
    })
}

fn filter_eur(state: &State, value: Value, language: Option<&str>) -> Result<String, Error> {
    let lang = lang(state, language)?;
    defined(&value)?;
    let text = match value.as_str() {
        Some(s) => s.to_string(),
        None if value.is_number() => value.to_string(),
        None => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("eur: an amount must be a decimal string or a number, not {value:?}"),
            ));
        }
    };
    format_eur(&text, lang).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("eur: `{text}` is not a decimal amount"),
        )
    })
}

/// `-1234.5` → fr `-1 234,50 €` (U+202F between thousands, U+00A0 before €), en `-€1,234.50`:
/// the amount of the email's data (a decimal string, as the outbox stores it), written by the
/// core's formatter with at least two places.
fn format_eur(text: &str, lang: Lang) -> Option<String> {
    let text = text.trim();
    let unsigned = text
        .strip_prefix('-')
        .or_else(|| text.strip_prefix('+'))
        .unwrap_or(text);
    // rust_decimal also reads `1.` and `.5`; the data never holds them, and they are refused.
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty()
        || !digits(int)
        || !digits(frac)
        || (unsigned.contains('.') && frac.is_empty())
    {
        return None;
    }
    let mut amount: rust_decimal::Decimal = text.strip_prefix('+').unwrap_or(text).parse().ok()?;
    if amount.scale() < 2 {
        amount.rescale(2);
    }
    Some(billrun_core::locale::euros(
        amount,
        lang,
        billrun_core::locale::Typography::Typographic,
    ))
}

fn filter_reason(state: &State, value: Value, language: Option<&str>) -> Result<String, Error> {
    let lang = lang(state, language)?;
    defined(&value)?;
    Ok(decline_reason(value.as_str().unwrap_or(""), lang).to_string())
}

/// A Stripe decline (or failure) code in words. Following Stripe's advice, the codes that
/// hint at fraud (lost or stolen card, fraudulent, pick-up) are shown as a plain bank decline.
fn decline_reason(code: &str, lang: Lang) -> &'static str {
    let (fr, en) = match code {
        "insufficient_funds" => ("solde insuffisant", "insufficient funds"),
        "generic_decline"
        | "do_not_honor"
        | "lost_card"
        | "stolen_card"
        | "fraudulent"
        | "pickup_card"
        | "restricted_card"
        | "security_violation"
        | "transaction_not_allowed" => (
            "paiement refusé par votre banque",
            "payment declined by your bank",
        ),
        "card_declined" => ("carte refusée", "card declined"),
        "processing_error" => (
            "erreur technique lors du traitement du paiement",
            "technical error while processing the payment",
        ),
        "expired_card" => ("carte expirée", "expired card"),
        "incorrect_number" | "invalid_number" => {
            ("numéro de carte incorrect", "incorrect card number")
        }
        "incorrect_cvc" | "invalid_cvc" => (
            "cryptogramme visuel (CVC) incorrect",
            "incorrect security code (CVC)",
        ),
        "invalid_expiry_month" | "invalid_expiry_year" => {
            ("date d'expiration incorrecte", "incorrect expiry date")
        }
        "card_velocity_exceeded" | "withdrawal_count_limit_exceeded" => {
            ("plafond de la carte atteint", "card limit reached")
        }
        "card_not_supported" => (
            "carte non acceptée pour ce type de paiement",
            "card not supported for this type of payment",
        ),
        "authentication_required" => (
            "authentification requise par votre banque (3-D Secure)",
            "authentication required by your bank (3-D Secure)",
        ),
        "no_payment_method" => (
            "aucun moyen de paiement enregistré",
            "no payment method on file",
        ),
        "payment_intent_payment_attempt_failed" => (
            "échec de la tentative de paiement",
            "the payment attempt failed",
        ),
        "payment_method_unactivated" | "debit_not_authorized" => (
            "prélèvement non autorisé par votre banque",
            "debit not authorised by your bank",
        ),
        "account_closed" | "bank_account_closed" => {
            ("compte bancaire clôturé", "bank account closed")
        }
        // billrun's own code for a payment method Stripe no longer has (gateway.rs).
        "payment_method_missing" => (
            "moyen de paiement introuvable (retiré ou expiré)",
            "payment method no longer available (removed or expired)",
        ),
        "bank_account_restricted" | "bank_account_unusable" => (
            "compte bancaire ne permettant pas le prélèvement",
            "bank account cannot be debited",
        ),
        _ => ("paiement refusé", "payment declined"),
    };
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
}

fn month_name(month0: u32, lang: Lang) -> &'static str {
    billrun_core::locale::month_name(month0 + 1, lang)
}

/// fr `1er novembre 2026`, `16 novembre 2026`; en `16 November 2026`.
fn long_date(d: NaiveDate, lang: Lang) -> String {
    billrun_core::locale::long_date(d, lang)
}

/// The payment terms of an invoice, from `core::terms` (the PDF prints the same words). The
/// buyer's kind only changes the late-payment mention, which the emails do not carry.
fn function_payment_terms(
    state: &State,
    amount_due: Value,
    due_at: Value,
) -> Result<String, Error> {
    let lang = lang(state, None)?;
    let amount = text_of(&amount_due, "payment_terms: amount_due")?;
    let amount_due_minor = billrun_core::money::parse_major(amount).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("payment_terms: amount_due `{amount}`: {e}"),
        )
    })?;
    let due = text_of(&due_at, "payment_terms: due_at")?;
    let due_date = NaiveDate::parse_from_str(due, "%Y-%m-%d").map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("payment_terms: due_at `{due}` is not a YYYY-MM-DD date"),
        )
    })?;
    let terms = billrun_core::terms::payment_terms(&billrun_core::terms::TermsFacts {
        due_date,
        amount_due_minor,
        buyer: billrun_core::vat::BuyerKind::Consumer,
    });
    Ok(terms.text(lang))
}

fn filter_date(state: &State, value: Value, language: Option<&str>) -> Result<String, Error> {
    let lang = lang(state, language)?;
    let text = text_of(&value, "date: a date")?;
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc).date_naive())
        })
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("date: `{text}` is not a YYYY-MM-DD date"),
            )
        })?;
    Ok(long_date(date, lang))
}

fn filter_datetime(state: &State, value: Value, language: Option<&str>) -> Result<String, Error> {
    let lang = lang(state, language)?;
    let text = text_of(&value, "datetime: a time")?;
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(long_date(date, lang));
    }
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("datetime: `{text}` is not an RFC 3339 time"),
            )
        })?
        .with_timezone(&Utc);
    let date = long_date(t.date_naive(), lang);
    Ok(match lang {
        Lang::Fr => format!("{date} à {}\u{a0}h\u{a0}{:02} UTC", t.hour(), t.minute()),
        Lang::En => format!("{date} at {:02}:{:02} UTC", t.hour(), t.minute()),
    })
}

fn filter_period(state: &State, value: Value, language: Option<&str>) -> Result<String, Error> {
    let lang = lang(state, language)?;
    let text = text_of(&value, "period: a period")?;
    let date = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("period: `{text}` is not a YYYY-MM period"),
        )
    })?;
    Ok(format!(
        "{} {}",
        month_name(date.month0(), lang),
        date.year()
    ))
}

fn filter_payment_method(
    state: &State,
    value: Value,
    language: Option<&str>,
) -> Result<String, Error> {
    let lang = lang(state, language)?;
    let text = text_of(&value, "payment_method: a payment method")?;
    let words = match (text, lang) {
        ("card", Lang::Fr) => "carte bancaire",
        ("card", Lang::En) => "card",
        ("sepa_debit", Lang::Fr) => "prélèvement SEPA",
        ("sepa_debit", Lang::En) => "SEPA Direct Debit",
        ("credit", Lang::Fr) => "crédit prépayé",
        ("credit", Lang::En) => "prepaid credit",
        (other, _) => other,
    };
    Ok(words.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A kind by its variant or, as the snapshots' expressions (kept as recorded) name it, by
    /// its stored name.
    trait AsKind {
        fn kind(self) -> EmailKind;
    }

    impl AsKind for EmailKind {
        fn kind(self) -> EmailKind {
            self
        }
    }

    impl AsKind for &str {
        fn kind(self) -> EmailKind {
            self.parse().unwrap()
        }
    }

    fn common(account_name: &str) -> serde_json::Value {
        json!({
            "account_name": account_name,
            "seller_name": "Scalingo SAS",
            "dashboard_url": "https://dashboard.example.com",
            "support_email": "support@example.com",
        })
    }

    /// A complete data object for `kind`.
    fn sample(kind: impl AsKind) -> serde_json::Value {
        let specific = match kind.kind() {
            EmailKind::InvoiceIssued => json!({
                "invoice_number": "F-2026-00042",
                "period": "2026-10",
                "total": "35.65",
                "amount_due": "35.65",
                "due_at": "2026-11-16",
            }),
            EmailKind::PaymentSucceeded => json!({
                "invoice_number": "F-2026-00042",
                "amount": "35.65",
                "method": "card",
                "payment_intent": "pi_3QxYzAbCdEf",
            }),
            EmailKind::PaymentFailed => json!({
                "invoice_number": "F-2026-00042",
                "amount_due": "35.65",
                "reason": "insufficient_funds",
                "decline_class": "soft",
                "next_attempt_at": "2026-11-19",
                "retries_exhausted": false,
            }),
            EmailKind::ActionRequired => json!({
                "invoice_number": "F-2026-00042",
                "amount_due": "35.65",
                "reason": "expired_card",
                "decline_class": "hard",
                "next_attempt_at": null,
                "retries_exhausted": false,
            }),
            EmailKind::AccountSuspended => json!({
                "amount_due": "1234.50",
                "invoices": ["F-2026-00042", "F-2026-00057"],
                "deletion_date": "2027-01-15",
            }),
            EmailKind::DataDeletionWarning => json!({
                "amount_due": "1234.50",
                "deletion_date": "2027-01-15",
            }),
            EmailKind::AccountDeletionConfirmation => json!({
                "token": "dlt_8f3a2c91e7",
                "expires_at": "2026-11-17T14:30:00Z",
                "confirm_url": "https://dashboard.example.com/account/delete?token=dlt_8f3a2c91e7",
            }),
            EmailKind::AccountDeleted => json!({
                "deleted_at": "2026-12-01",
                "reason": "request",
            }),
            EmailKind::HdsReviewReminder => json!({
                "contact_name": "Dr Claire Martin",
                "contact_email": "claire.martin@clinique.example",
                "contact_phone": "+33 1 23 45 67 89",
                "last_reviewed_at": "2025-11-20",
            }),
            EmailKind::CreditNoteIssued => serde_json::Value::Object(credit_note_issued_data(
                &crate::fixtures::export_outside_eu(Language::Fr),
            )),
            EmailKind::PaymentDisputed => json!({
                "invoice_number": "F-2026-00042",
                "amount": "10.00",
                "amount_due": "10.00",
            }),
        };
        let mut data = common("Clinique Saint-Exemple");
        data.as_object_mut()
            .unwrap()
            .extend(specific.as_object().unwrap().clone());
        data
    }

    /// Facts each rendered email must show, per language (checked in the text and the HTML).
    fn facts(kind: EmailKind, lang: &str) -> Vec<&'static str> {
        let fr = lang == "fr";
        match kind {
            EmailKind::InvoiceIssued => vec![
                "F-2026-00042",
                if fr { "35,65\u{a0}€" } else { "€35.65" },
                if fr {
                    "16 novembre 2026"
                } else {
                    "16 November 2026"
                },
                if fr { "octobre 2026" } else { "October 2026" },
                if fr { "pièce jointe" } else { "attached" },
            ],
            EmailKind::PaymentSucceeded => vec![
                "F-2026-00042",
                if fr { "35,65\u{a0}€" } else { "€35.65" },
                if fr { "carte bancaire" } else { "card" },
                "pi_3QxYzAbCdEf",
            ],
            EmailKind::PaymentFailed => vec![
                "F-2026-00042",
                if fr { "35,65\u{a0}€" } else { "€35.65" },
                if fr {
                    "solde insuffisant"
                } else {
                    "insufficient funds"
                },
                if fr {
                    "19 novembre 2026"
                } else {
                    "19 November 2026"
                },
            ],
            EmailKind::ActionRequired => vec![
                "F-2026-00042",
                if fr { "35,65\u{a0}€" } else { "€35.65" },
                if fr { "carte expirée" } else { "expired card" },
                if fr {
                    "sera débité immédiatement"
                } else {
                    "charged the amount due right away"
                },
                if fr {
                    "crédit prépayé"
                } else {
                    "prepaid credit"
                },
            ],
            EmailKind::AccountSuspended => vec![
                if fr {
                    "1\u{202f}234,50\u{a0}€"
                } else {
                    "€1,234.50"
                },
                "F-2026-00042",
                "F-2026-00057",
                if fr {
                    "15 janvier 2027"
                } else {
                    "15 January 2027"
                },
            ],
            EmailKind::DataDeletionWarning => vec![
                if fr {
                    "1\u{202f}234,50\u{a0}€"
                } else {
                    "€1,234.50"
                },
                if fr {
                    "15 janvier 2027"
                } else {
                    "15 January 2027"
                },
            ],
            EmailKind::AccountDeletionConfirmation => vec![
                "dlt_8f3a2c91e7",
                "https://dashboard.example.com/account/delete?token=dlt_8f3a2c91e7",
                if fr {
                    "17 novembre 2026 à 14\u{a0}h\u{a0}30 UTC"
                } else {
                    "17 November 2026 at 14:30 UTC"
                },
            ],
            EmailKind::AccountDeleted => vec![
                if fr {
                    "1er décembre 2026"
                } else {
                    "1 December 2026"
                },
                if fr {
                    "Comme vous l'avez demandé"
                } else {
                    "As you requested"
                },
            ],
            EmailKind::HdsReviewReminder => vec![
                "Dr Claire Martin",
                "claire.martin@clinique.example",
                "+33 1 23 45 67 89",
                if fr {
                    "20 novembre 2025"
                } else {
                    "20 November 2025"
                },
                "12",
            ],
            EmailKind::PaymentDisputed => vec![
                "F-2026-00042",
                if fr { "10,00\u{a0}€" } else { "€10.00" },
                if fr { "contesté" } else { "disputed" },
            ],
            EmailKind::CreditNoteIssued => vec![
                "AV-2026-000003",
                "2026-000003",
                "Overbilled hours",
                if fr { "20,00\u{a0}€" } else { "€20.00" },
                if fr { "10,00\u{a0}€" } else { "€10.00" },
                if fr {
                    "1er novembre 2026"
                } else {
                    "1 November 2026"
                },
                if fr { "pièce jointe" } else { "attached" },
            ],
        }
    }

    fn html_unescape(s: &str) -> String {
        s.replace("&nbsp;", "\u{a0}")
            .replace("&#x27;", "'")
            .replace("&#x2f;", "/")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    #[test]
    fn every_kind_has_keys_and_six_templates() {
        assert_eq!(EmailKind::ALL.len(), 11);
        assert_eq!(BUILTIN.len(), EmailKind::ALL.len() * 6);
        for &kind in EmailKind::ALL {
            let keys = data_keys(kind);
            let data = sample(kind);
            for key in &keys {
                assert!(data.get(key).is_some(), "sample of {kind} lacks {key}");
            }
        }
    }

    #[test]
    fn the_template_directories_are_the_kinds_each_with_its_six_files() {
        // The built-in set is checked at compile time (include_str!); this checks the other
        // way: no directory under templates/email that no kind renders (a renamed kind whose
        // old directory stayed), and exactly the six files in each.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/email");
        let mut dirs: Vec<String> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        dirs.sort();
        let mut names: Vec<String> = EmailKind::ALL.iter().map(|k| k.to_string()).collect();
        names.sort();
        assert_eq!(dirs, names);
        let mut six: Vec<String> = LANGUAGES
            .iter()
            .flat_map(|lang| {
                PARTS
                    .iter()
                    .map(move |(_, suffix)| format!("{lang}.{suffix}"))
            })
            .collect();
        six.sort();
        for &kind in EmailKind::ALL {
            let mut files: Vec<String> = fs::read_dir(root.join(kind.as_str()))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(files, six, "templates/email/{kind}");
            for file in &six {
                let name = format!("{kind}/{file}");
                assert!(
                    BUILTIN.iter().any(|(n, _)| *n == name),
                    "{name} not built in"
                );
            }
        }
    }

    #[test]
    fn a_kind_serializes_to_its_stored_name() {
        for &kind in EmailKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<EmailKind>(&json).unwrap(), kind);
        }
        assert_eq!(
            serde_json::to_string(&EmailKind::AccountDeletionConfirmation).unwrap(),
            "\"account_deletion_confirmation\""
        );
    }

    #[test]
    fn every_kind_and_language_renders_its_key_facts() {
        let t = Templates::builtin();
        for &kind in EmailKind::ALL {
            for lang in LANGUAGES {
                let e = t
                    .render(kind, lang, &sample(kind))
                    .unwrap_or_else(|e| panic!("{kind}/{lang}: {e}"));
                let what = format!("{kind}/{lang}");
                assert!(!e.subject.is_empty(), "{what}: empty subject");
                assert!(!e.subject.contains('\n'), "{what}: multi-line subject");
                assert_eq!(e.subject, e.subject.trim(), "{what}: untrimmed subject");
                let html = html_unescape(&e.html);
                for fact in facts(kind, lang) {
                    assert!(
                        e.text.contains(fact),
                        "{what} text lacks {fact:?}:\n{}",
                        e.text
                    );
                    assert!(
                        html.contains(fact),
                        "{what} html lacks {fact:?}:\n{}",
                        e.html
                    );
                }
                if let Some(n) = sample(kind).get("invoice_number") {
                    assert!(
                        e.subject.contains(n.as_str().unwrap()),
                        "{what}: {}",
                        e.subject
                    );
                }
                for part in [&e.subject, &e.text, &e.html] {
                    assert!(
                        !part.contains("{{") && !part.contains("{%"),
                        "{what}: {part}"
                    );
                    // Codes must be in words, never raw.
                    assert!(!part.contains("insufficient_funds"), "{what}: raw code");
                    assert!(!part.contains("expired_card"), "{what}: raw code");
                }
                assert!(e.html.starts_with("<!DOCTYPE html>"), "{what}");
                assert!(
                    e.html.contains(&format!("<html lang=\"{lang}\">")),
                    "{what}"
                );
                for external in ["<img", "src=", "<link", "<script", "url("] {
                    assert!(!e.html.contains(external), "{what}: html has {external}");
                }
                assert!(e.text.contains("Scalingo SAS") && e.html.contains("Scalingo SAS"));
                assert!(
                    e.text.ends_with('\n'),
                    "{what}: text does not end with a newline"
                );
            }
        }
    }

    #[test]
    fn french_and_english_differ_and_use_the_right_words() {
        let t = Templates::builtin();
        for &kind in EmailKind::ALL {
            let fr = t.render(kind, "fr", &sample(kind)).unwrap();
            let en = t.render(kind, "en", &sample(kind)).unwrap();
            assert!(fr.text.starts_with("Bonjour,"), "{kind}");
            assert!(en.text.starts_with("Hello,"), "{kind}");
            assert!(fr.text.contains("Cordialement"), "{kind}");
            assert!(en.text.contains("Best regards"), "{kind}");
            assert!(fr.text.contains("« Clinique Saint-Exemple »"), "{kind}");
            assert!(en.text.contains("“Clinique Saint-Exemple”"), "{kind}");
        }
    }

    #[test]
    fn variants_of_the_collection_emails() {
        let t = Templates::builtin();
        // Retries exhausted: no retry announced, the owner is asked to act.
        let mut d = sample("payment_failed");
        d["next_attempt_at"] = json!(null);
        d["retries_exhausted"] = json!(true);
        let fr = t.render(EmailKind::PaymentFailed, "fr", &d).unwrap();
        assert!(
            fr.text.contains("aucune autre tentative automatique"),
            "{}",
            fr.text
        );
        assert!(!fr.text.contains("nouvelle tentative le"));
        let en = t.render(EmailKind::PaymentFailed, "en", &d).unwrap();
        assert!(
            en.text.contains("no further automatic attempt"),
            "{}",
            en.text
        );
        assert!(en.text.contains("charged right away"));
        // No next attempt date known, not exhausted.
        d["retries_exhausted"] = json!(false);
        let en = t.render(EmailKind::PaymentFailed, "en", &d).unwrap();
        assert!(en.text.contains("try again soon"), "{}", en.text);
        assert!(!en.text.contains("Details from our payment provider"));

        let mut d = sample("action_required");
        d["decline_class"] = json!("authentication_required");
        d["reason"] = json!("authentication_required");
        let fr = t.render(EmailKind::ActionRequired, "fr", &d).unwrap();
        assert!(fr.text.contains("3-D Secure"), "{}", fr.text);
        let en = t.render(EmailKind::ActionRequired, "en", &d).unwrap();
        assert!(en.html.contains("authentication requested by your bank"));

        d["decline_class"] = json!("soft");
        d["reason"] = json!("no_payment_method");
        let fr = t.render(EmailKind::ActionRequired, "fr", &d).unwrap();
        assert!(
            fr.text.contains("Aucun moyen de paiement n'est enregistré"),
            "{}",
            fr.text
        );
        assert!(fr.text.contains("ajouter un moyen de paiement"));
        assert!(!fr.text.contains("Motif"));
        let en = t.render(EmailKind::ActionRequired, "en", &d).unwrap();
        assert!(
            en.text.contains("There is no payment method"),
            "{}",
            en.text
        );

        let mut d = sample("account_deleted");
        d["reason"] = json!("non_payment");
        let fr = t.render(EmailKind::AccountDeleted, "fr", &d).unwrap();
        assert!(fr.text.contains("Faute de règlement"), "{}", fr.text);
        assert!(!fr.text.contains("Merci d'avoir utilisé"));

        let mut d = sample("invoice_issued");
        d["amount_due"] = json!("40.15");
        let en = t.render(EmailKind::InvoiceIssued, "en", &d).unwrap();
        assert!(
            en.text
                .contains("Amount due: €40.15 (including balances carried over")
        );
        d["total"] = json!("0.00");
        d["amount_due"] = json!("0.00");
        let fr = t.render(EmailKind::InvoiceIssued, "fr", &d).unwrap();
        assert!(
            fr.text.contains("Aucun paiement n'est nécessaire"),
            "{}",
            fr.text
        );

        let mut d = sample("payment_succeeded");
        d["method"] = json!("sepa_debit");
        d["payment_intent"] = json!(null);
        let fr = t.render(EmailKind::PaymentSucceeded, "fr", &d).unwrap();
        assert!(fr.text.contains("prélèvement SEPA"));
        assert!(!fr.text.contains("Référence du paiement"));

        let mut d = sample("hds_review_reminder");
        d["contact_phone"] = json!(null);
        d["last_reviewed_at"] = json!(null);
        let en = t.render(EmailKind::HdsReviewReminder, "en", &d).unwrap();
        assert!(en.text.contains("Phone: not provided"), "{}", en.text);
        assert!(en.text.contains("never been reviewed"));
    }

    #[test]
    fn a_missing_key_is_an_error_naming_it() {
        let t = Templates::builtin();
        let mut d = sample("invoice_issued");
        d.as_object_mut().unwrap().remove("due_at");
        let err = t.render(EmailKind::InvoiceIssued, "fr", &d).unwrap_err();
        assert!(matches!(err, TemplateError::MissingData { .. }), "{err:?}");
        assert!(err.to_string().contains("due_at"), "{err}");

        let mut d = sample("action_required");
        d.as_object_mut().unwrap().remove("decline_class");
        d.as_object_mut().unwrap().remove("seller_name");
        let err = t
            .render(EmailKind::ActionRequired, "en", &d)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("decline_class") && err.contains("seller_name"),
            "{err}"
        );
    }

    #[test]
    fn an_undefined_variable_in_a_template_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("payment_failed")).unwrap();
        fs::write(
            dir.path().join("payment_failed/en.txt"),
            "Invoice {{ invoice_number }} of {{ customer_name }}\n",
        )
        .unwrap();
        let t = Templates::from_dir(dir.path()).unwrap();
        let err = t
            .render(EmailKind::PaymentFailed, "en", &sample("payment_failed"))
            .unwrap_err();
        let TemplateError::Render {
            ref kind,
            ref language,
            part,
            ref message,
        } = err
        else {
            panic!("{err:?}");
        };
        assert_eq!(
            (kind.as_str(), language.as_str(), part),
            ("payment_failed", "en", "text")
        );
        assert!(message.contains("undefined value"), "{message}");
        assert!(message.contains("payment_failed/en.txt"), "{message}");
        assert!(
            message.contains("missing from the data: customer_name"),
            "{message}"
        );
        let shown = err.to_string();
        assert!(
            shown.contains("customer_name") && shown.contains("text"),
            "{shown}"
        );

        // Strict even inside a filter or an `if`.
        for source in [
            "{{ nope|eur }}",
            "{{ nope|reason }}",
            "{% if nope %}x{% endif %}",
        ] {
            fs::write(dir.path().join("payment_failed/en.txt"), source).unwrap();
            let t = Templates::from_dir(dir.path()).unwrap();
            let err = t
                .render(EmailKind::PaymentFailed, "en", &sample("payment_failed"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("missing from the data: nope"),
                "{source}: {err}"
            );
        }
    }

    #[test]
    fn unknown_kind_language_and_bad_data_are_errors() {
        let t = Templates::builtin();
        let d = sample("invoice_issued");
        // An unknown kind is refused where the name is read (the store, an operator's
        // directory), before any rendering.
        assert_eq!(
            "invoice_lost".parse::<EmailKind>().unwrap_err().to_string(),
            "unknown email kind `invoice_lost`"
        );
        assert!(matches!(
            t.render(EmailKind::InvoiceIssued, "de", &d),
            Err(TemplateError::UnknownLanguage(l)) if l == "de"
        ));
        let err = t
            .render(EmailKind::InvoiceIssued, "fr", &json!(["x"]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the data of email invoice_issued must be a JSON object, not an array"
        );
        let mut d = sample("invoice_issued");
        d["total"] = json!("35,65");
        let err = t
            .render(EmailKind::InvoiceIssued, "fr", &d)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`35,65` is not a decimal amount"), "{err}");
        assert!(err.contains("subject") || err.contains("text"), "{err}");
        let mut d = sample("invoice_issued");
        d["due_at"] = json!("16/11/2026");
        let err = t
            .render(EmailKind::InvoiceIssued, "en", &d)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a YYYY-MM-DD date"), "{err}");
    }

    #[test]
    fn the_data_cannot_override_the_language() {
        let t = Templates::builtin();
        let mut d = sample("payment_succeeded");
        d["language"] = json!("en");
        let fr = t.render(EmailKind::PaymentSucceeded, "fr", &d).unwrap();
        assert!(fr.text.contains("35,65\u{a0}€"), "{}", fr.text);
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = Templates::builtin();
        for &kind in EmailKind::ALL {
            for lang in LANGUAGES {
                let mut d = sample(kind);
                d["account_name"] = json!("<script>alert('x')</script> & co");
                let e = t.render(kind, lang, &d).unwrap();
                assert!(!e.html.contains("<script>"), "{kind}/{lang}");
                assert!(e.html.contains("&lt;script&gt;"), "{kind}/{lang}");
                assert!(e.html.contains("&amp; co"), "{kind}/{lang}");
                assert!(
                    e.text.contains("<script>alert('x')</script> & co"),
                    "{kind}/{lang}"
                );
            }
        }
    }

    #[test]
    fn subjects_are_one_line() {
        assert_eq!(one_line("  Hello\r\n\n  world \t\n"), "Hello world");
        assert_eq!(one_line("a\rb"), "a b");
        let t = Templates::builtin();
        let mut d = sample("account_deleted");
        d["account_name"] = json!("evil\r\nBcc: someone@example.com");
        let e = t.render(EmailKind::AccountDeleted, "en", &d).unwrap();
        assert_eq!(
            e.subject,
            "Your account “evil Bcc: someone@example.com” has been deleted"
        );
    }

    fn filter(template: &str, language: &str, value: serde_json::Value) -> Result<String, Error> {
        let env = base_env();
        env.render_str(template, context! { language => language, v => value })
    }

    #[test]
    fn eur_filter_per_language() {
        let cases = [
            ("35.65", "35,65\u{a0}€", "€35.65"),
            ("0.00", "0,00\u{a0}€", "€0.00"),
            ("-0.00", "0,00\u{a0}€", "€0.00"),
            ("-5", "-5,00\u{a0}€", "-€5.00"),
            ("12.5", "12,50\u{a0}€", "€12.50"),
            ("0.0200", "0,0200\u{a0}€", "€0.0200"),
            (
                "1234567.50",
                "1\u{202f}234\u{202f}567,50\u{a0}€",
                "€1,234,567.50",
            ),
            ("-1234.56", "-1\u{202f}234,56\u{a0}€", "-€1,234.56"),
            ("100", "100,00\u{a0}€", "€100.00"),
            ("007.10", "7,10\u{a0}€", "€7.10"),
        ];
        for (input, fr, en) in cases {
            assert_eq!(
                filter("{{ v|eur }}", "fr", json!(input)).unwrap(),
                fr,
                "{input}"
            );
            assert_eq!(
                filter("{{ v|eur }}", "en", json!(input)).unwrap(),
                en,
                "{input}"
            );
        }
        assert_eq!(
            filter("{{ v|eur }}", "fr", json!(42)).unwrap(),
            "42,00\u{a0}€"
        );
        assert_eq!(
            filter("{{ v|eur('en') }}", "fr", json!("3.5")).unwrap(),
            "€3.50"
        );
        for bad in ["", "abc", "1,5", "1.", ".5", "1.2.3", "- 1", "1e3"] {
            let err = filter("{{ v|eur }}", "fr", json!(bad)).unwrap_err();
            assert!(
                err.to_string().contains("not a decimal amount"),
                "{bad}: {err}"
            );
        }
        assert!(filter("{{ v|eur }}", "fr", json!(null)).is_err());
        assert!(filter("{{ v|eur('de') }}", "fr", json!("1")).is_err());
    }

    #[test]
    fn reason_filter_per_language() {
        let codes = [
            "insufficient_funds",
            "generic_decline",
            "card_declined",
            "processing_error",
            "expired_card",
            "lost_card",
            "stolen_card",
            "incorrect_number",
            "authentication_required",
            "no_payment_method",
            "payment_intent_payment_attempt_failed",
        ];
        for code in codes {
            let fr = filter("{{ v|reason }}", "fr", json!(code)).unwrap();
            let en = filter("{{ v|reason }}", "en", json!(code)).unwrap();
            assert_ne!(fr, en, "{code}");
            assert_ne!(fr, "paiement refusé", "{code} falls back");
            assert_ne!(en, "payment declined", "{code} falls back");
            assert!(!fr.contains('_') && !en.contains('_'), "{code}");
        }
        let r = |code: &str, lang: &str| filter("{{ v|reason }}", lang, json!(code)).unwrap();
        assert_eq!(r("insufficient_funds", "fr"), "solde insuffisant");
        assert_eq!(r("insufficient_funds", "en"), "insufficient funds");
        assert_eq!(r("expired_card", "fr"), "carte expirée");
        assert_eq!(r("no_payment_method", "en"), "no payment method on file");
        // Fraud hints are not disclosed.
        assert_eq!(r("stolen_card", "en"), r("generic_decline", "en"));
        // Fallback.
        assert_eq!(r("something_new", "fr"), "paiement refusé");
        assert_eq!(r("something_new", "en"), "payment declined");
        assert_eq!(
            filter("{{ v|reason }}", "en", json!(null)).unwrap(),
            "payment declined"
        );
        assert_eq!(
            filter("{{ v|reason('fr') }}", "en", json!("insufficient_funds")).unwrap(),
            "solde insuffisant"
        );
    }

    #[test]
    fn date_and_period_filters() {
        let f = |t: &str, lang: &str, v: &str| filter(t, lang, json!(v)).unwrap();
        assert_eq!(f("{{ v|date }}", "fr", "2026-11-01"), "1er novembre 2026");
        assert_eq!(f("{{ v|date }}", "fr", "2026-02-16"), "16 février 2026");
        assert_eq!(f("{{ v|date }}", "en", "2026-11-01"), "1 November 2026");
        assert_eq!(
            f("{{ v|date }}", "en", "2026-11-16T23:30:00-02:00"),
            "17 November 2026"
        );
        assert_eq!(
            f("{{ v|datetime }}", "fr", "2026-08-03T09:05:00+02:00"),
            "3 août 2026 à 7\u{a0}h\u{a0}05 UTC"
        );
        assert_eq!(
            f("{{ v|datetime }}", "en", "2026-08-03T09:05:00+02:00"),
            "3 August 2026 at 07:05 UTC"
        );
        assert_eq!(f("{{ v|period }}", "fr", "2026-10"), "octobre 2026");
        assert_eq!(f("{{ v|period }}", "en", "2026-12"), "December 2026");
        assert_eq!(
            f("{{ v|payment_method }}", "fr", "sepa_debit"),
            "prélèvement SEPA"
        );
        assert_eq!(
            f("{{ v|payment_method }}", "en", "credit"),
            "prepaid credit"
        );
        assert!(filter("{{ v|date }}", "fr", json!("2026-13-01")).is_err());
        assert!(filter("{{ v|period }}", "fr", json!("2026-13")).is_err());
        assert!(filter("{{ v|datetime }}", "fr", json!("tomorrow")).is_err());
    }

    #[test]
    fn from_dir_overrides_one_file_and_falls_back_for_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("invoice_issued")).unwrap();
        fs::write(
            dir.path().join("invoice_issued/fr.subject.txt"),
            "Facture {{ invoice_number }} : {{ amount_due|eur }}\n",
        )
        .unwrap();
        // Ignored, with a warning.
        fs::write(dir.path().join("invoice_issued/fr.subjet.txt"), "typo").unwrap();
        fs::write(dir.path().join("README"), "notes").unwrap();
        let t = Templates::from_dir(dir.path()).unwrap();
        let builtin = Templates::builtin();
        let d = sample("invoice_issued");
        let fr = t.render(EmailKind::InvoiceIssued, "fr", &d).unwrap();
        assert_eq!(fr.subject, "Facture F-2026-00042 : 35,65\u{a0}€");
        let fr_builtin = builtin.render(EmailKind::InvoiceIssued, "fr", &d).unwrap();
        assert_eq!(fr.text, fr_builtin.text);
        assert_eq!(fr.html, fr_builtin.html);
        assert_eq!(
            t.render(EmailKind::InvoiceIssued, "en", &d).unwrap(),
            builtin.render(EmailKind::InvoiceIssued, "en", &d).unwrap()
        );
        for &kind in EmailKind::ALL {
            assert_eq!(
                t.render(kind, "en", &sample(kind)).unwrap(),
                builtin.render(kind, "en", &sample(kind)).unwrap()
            );
        }
    }

    #[test]
    fn from_dir_reports_syntax_errors_and_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("account_deleted")).unwrap();
        fs::write(
            dir.path().join("account_deleted/en.html"),
            "<p>{% if reason %}deleted</p>",
        )
        .unwrap();
        let err = Templates::from_dir(dir.path()).unwrap_err();
        assert!(matches!(err, TemplateError::Syntax { .. }), "{err:?}");
        assert!(err.to_string().contains("account_deleted/en.html"), "{err}");

        let err = Templates::from_dir(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, TemplateError::Read { .. }), "{err:?}");
    }

    #[test]
    fn renders_from_several_threads() {
        let t = Templates::builtin();
        let expected = t
            .render(EmailKind::PaymentFailed, "fr", &sample("payment_failed"))
            .unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let e = t.render(EmailKind::PaymentFailed, "fr", &sample("payment_failed"));
                        assert_eq!(e.unwrap(), expected);
                    }
                });
            }
        });
    }

    fn snapshot_text(kind: impl AsKind, lang: &str, data: &serde_json::Value) -> String {
        let e = Templates::builtin()
            .render(kind.kind(), lang, data)
            .unwrap();
        format!("Subject: {}\n\n{}", e.subject, e.text)
    }

    #[test]
    fn invoice_issued_says_charged_at_issue_as_the_pdf_does_never_on_the_due_date() {
        let t = Templates::builtin();
        for lang in ["fr", "en"] {
            let e = t
                .render(EmailKind::InvoiceIssued, lang, &sample("invoice_issued"))
                .unwrap();
            let language = Language::parse(lang).unwrap();
            let terms = billrun_core::terms::payment_terms(&billrun_core::terms::TermsFacts {
                due_date: NaiveDate::from_ymd_opt(2026, 11, 16).unwrap(),
                amount_due_minor: 3565,
                buyer: billrun_core::vat::BuyerKind::Business,
            });
            // The same words as the PDF's payment terms, from the core.
            assert!(e.text.contains(&terms.text(language)), "{lang}: {}", e.text);
            assert!(
                html_unescape(&e.html).contains(&terms.text(language)),
                "{lang}: {}",
                e.html
            );
            for wrong in ["on the due date:", "à l'échéance :", "réception", "receipt"] {
                assert!(!e.text.contains(wrong), "{lang}: {wrong}: {}", e.text);
            }
        }
        let mut zero = sample("invoice_issued");
        zero["amount_due"] = json!("0.00");
        let e = t.render(EmailKind::InvoiceIssued, "en", &zero).unwrap();
        assert!(e.text.contains("No payment is needed"), "{}", e.text);
        assert!(
            !e.text.contains("Due date: 16 November 2026."),
            "{}",
            e.text
        );
    }

    #[test]
    fn snapshot_invoice_issued_fr() {
        insta::assert_snapshot!(snapshot_text(
            "invoice_issued",
            "fr",
            &sample("invoice_issued")
        ));
    }

    #[test]
    fn snapshot_invoice_issued_en() {
        insta::assert_snapshot!(snapshot_text(
            "invoice_issued",
            "en",
            &sample("invoice_issued")
        ));
    }

    #[test]
    fn snapshot_payment_failed_fr() {
        insta::assert_snapshot!(snapshot_text(
            "payment_failed",
            "fr",
            &sample("payment_failed")
        ));
    }

    #[test]
    fn snapshot_payment_failed_en() {
        insta::assert_snapshot!(snapshot_text(
            "payment_failed",
            "en",
            &sample("payment_failed")
        ));
    }

    #[test]
    fn snapshot_action_required_fr() {
        insta::assert_snapshot!(snapshot_text(
            "action_required",
            "fr",
            &sample("action_required")
        ));
    }

    #[test]
    fn snapshot_action_required_en() {
        insta::assert_snapshot!(snapshot_text(
            "action_required",
            "en",
            &sample("action_required")
        ));
    }

    #[test]
    fn snapshot_account_suspended_fr() {
        insta::assert_snapshot!(snapshot_text(
            "account_suspended",
            "fr",
            &sample("account_suspended")
        ));
    }

    #[test]
    fn snapshot_invoice_issued_fr_html() {
        let e = Templates::builtin()
            .render(EmailKind::InvoiceIssued, "fr", &sample("invoice_issued"))
            .unwrap();
        insta::assert_snapshot!(e.html);
    }

    #[test]
    fn credit_note_issued_shows_each_way_it_is_settled_and_nothing_else() {
        let t = Templates::builtin();
        let base = sample("credit_note_issued");
        let only = |key: &str, value: &str| {
            let mut d = base.clone();
            for k in [
                "reduce_due",
                "refund_to_payment_method",
                "refund_to_credit",
                "refund_outside",
            ] {
                d[k] = json!("0.00");
            }
            d[key] = json!(value);
            d
        };
        let cases = [
            (
                "reduce_due",
                "deducted from the amount due",
                "déduits du montant restant",
            ),
            (
                "refund_to_payment_method",
                "refunded to the payment method",
                "remboursés sur le moyen",
            ),
            ("refund_to_credit", "prepaid credit", "crédit prépayé"),
            (
                "refund_outside",
                "refunded separately",
                "remboursés séparément",
            ),
        ];
        for (key, _, _) in cases {
            let d = only(key, "20.00");
            let en = t.render(EmailKind::CreditNoteIssued, "en", &d).unwrap();
            let fr = t.render(EmailKind::CreditNoteIssued, "fr", &d).unwrap();
            let (en_text, en_html) = (
                en.text.to_lowercase(),
                html_unescape(&en.html).to_lowercase(),
            );
            let (fr_text, fr_html) = (
                fr.text.to_lowercase(),
                html_unescape(&fr.html).to_lowercase(),
            );
            for (other, other_en, other_fr) in cases {
                let shown = other == key;
                assert_eq!(
                    en_text.contains(other_en),
                    shown,
                    "{key}/{other}: {en_text}"
                );
                assert_eq!(
                    en_html.contains(other_en),
                    shown,
                    "{key}/{other}: {en_html}"
                );
                assert_eq!(
                    fr_text.contains(other_fr),
                    shown,
                    "{key}/{other}: {fr_text}"
                );
                assert_eq!(
                    fr_html.contains(other_fr),
                    shown,
                    "{key}/{other}: {fr_html}"
                );
            }
        }
        // The data the helper gives for a credit note is what the kind requires, no more.
        let data =
            credit_note_issued_data(&crate::fixtures::domestic_full_with_deduction(Language::Fr));
        let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
        keys.sort();
        let mut wanted: Vec<&str> = kind_keys(EmailKind::CreditNoteIssued).to_vec();
        wanted.sort();
        assert_eq!(keys, wanted);
        assert_eq!(data["total"], "29.71");
        assert_eq!(data["refund_to_payment_method"], "29.71");
        assert_eq!(data["reduce_due"], "0.00");
        assert_eq!(data["invoice_issued_at"], "2026-11-01");
    }

    #[test]
    fn snapshot_credit_note_issued_fr() {
        insta::assert_snapshot!(snapshot_text(
            "credit_note_issued",
            "fr",
            &sample("credit_note_issued")
        ));
    }

    #[test]
    fn snapshot_credit_note_issued_en() {
        insta::assert_snapshot!(snapshot_text(
            "credit_note_issued",
            "en",
            &sample("credit_note_issued")
        ));
    }
}
