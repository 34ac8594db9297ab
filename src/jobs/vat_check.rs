//! The `vat-check` job: asks the EU's VIES service (its REST API, `POST
//! {vies_base_url}/check-vat-number`) whether each EU business account's VAT number is valid,
//! and stores each answer with its date and consultation number (`requestIdentifier`) in
//! `vies_checks`: the evidence that the customer is a taxable person (article 18(1)(a) of
//! Implementing Regulation (EU) 282/2011) on which the invoice job's reverse charge rests
//! (article 196 of Directive 2006/112/EC, article 283-2 of the CGI).
//!
//! VIES is often down for one member state (`MS_UNAVAILABLE`): such an answer, a timeout or
//! a refused connection is stored as `unavailable`, and the last conclusive answer stands
//! (for the invoice job, while it is at most `max_age_days` old).

use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{Count, Env, Failure, JobName, JobReport, RunOptions};
use crate::core::countries::{is_eu_member, vat_prefix};
use crate::store::vies::{self, NewViesCheck, ViesOutcome};

/// What VIES answered about one VAT number (or, in a dry-run, that it would be asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VatCheckOutcome {
    /// A dry-run: it would ask.
    Planned,
    /// VIES confirmed the number.
    Valid,
    /// VIES says the number is not valid.
    Invalid,
    /// No answer from VIES (or the member state's service).
    Unavailable,
}

impl VatCheckOutcome {
    /// The outcome's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            VatCheckOutcome::Planned => "planned",
            VatCheckOutcome::Valid => "valid",
            VatCheckOutcome::Invalid => "invalid",
            VatCheckOutcome::Unavailable => "unavailable",
        }
    }
}

impl std::fmt::Display for VatCheckOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ViesOutcome> for VatCheckOutcome {
    fn from(o: ViesOutcome) -> Self {
        match o {
            ViesOutcome::Valid => VatCheckOutcome::Valid,
            ViesOutcome::Invalid => VatCheckOutcome::Invalid,
            ViesOutcome::Unavailable => VatCheckOutcome::Unavailable,
        }
    }
}

/// The count of a VIES answer.
fn count_of(o: ViesOutcome) -> Count {
    match o {
        ViesOutcome::Valid => Count::Valid,
        ViesOutcome::Invalid => Count::Invalid,
        ViesOutcome::Unavailable => Count::Unavailable,
    }
}

/// One account's check, as the report shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VatCheckItem {
    pub account_id: String,
    pub vat_number: String,
    pub outcome: VatCheckOutcome,
    /// VIES's consultation number (`requestIdentifier`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consultation_number: Option<String>,
    /// The name VIES has for the number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why VIES gave no answer on the number (its error code, a timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// VIES's answer, read from its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViesReply {
    pub outcome: ViesOutcome,
    pub request_date: Option<String>,
    pub consultation_number: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub detail: Option<String>,
}

impl ViesReply {
    fn unavailable(detail: String) -> ViesReply {
        ViesReply {
            outcome: ViesOutcome::Unavailable,
            request_date: None,
            consultation_number: None,
            name: None,
            address: None,
            detail: Some(detail),
        }
    }
}

/// Reads a VIES answer: `{valid, requestDate, requestIdentifier, name, address, userError?}`,
/// or an error `{actionSucceed: false, errorWrappers: [{error, message}]}`. `INVALID_INPUT`
/// is an answer on the number (invalid); every other error code (`MS_UNAVAILABLE`,
/// `SERVICE_UNAVAILABLE`, `TIMEOUT`, `MS_MAX_CONCURRENT_REQ`, …) is no answer.
pub fn parse_reply(status: u16, body: &[u8]) -> ViesReply {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return ViesReply::unavailable(format!("HTTP {status}: not a VIES answer"));
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let error = v
        .get("errorWrappers")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|e| e.get("error"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| text("userError").filter(|e| e != "VALID" && e != "INVALID"));
    match (error, v.get("valid").and_then(Value::as_bool)) {
        (Some(code), _) if code == "INVALID_INPUT" => ViesReply {
            outcome: ViesOutcome::Invalid,
            request_date: text("requestDate"),
            consultation_number: text("requestIdentifier"),
            name: None,
            address: None,
            detail: Some(code),
        },
        (Some(code), _) => ViesReply::unavailable(code),
        (None, Some(valid)) if (200..300).contains(&status) => ViesReply {
            outcome: if valid {
                ViesOutcome::Valid
            } else {
                ViesOutcome::Invalid
            },
            request_date: text("requestDate"),
            consultation_number: text("requestIdentifier").filter(|s| !s.is_empty()),
            name: text("name"),
            address: text("address"),
            detail: None,
        },
        (None, _) => ViesReply::unavailable(format!("HTTP {status}: no `valid` in the answer")),
    }
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

fn client() -> Client {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

/// Splits `DE123456788` into VIES's (`DE`, `123456788`).
fn split(number: &str) -> (&str, &str) {
    if number.len() > 2 && number.is_char_boundary(2) {
        number.split_at(2)
    } else {
        (number, "")
    }
}

/// Asks VIES about one number; never an error: what went wrong is an `unavailable` reply.
async fn ask(
    client: &Client,
    url: &str,
    requester: &str,
    number: &str,
    timeout: Duration,
) -> ViesReply {
    let (country, rest) = split(number);
    let mut body = json!({ "countryCode": country, "vatNumber": rest });
    let (req_country, req_number) = split(requester);
    if !req_number.is_empty() {
        body["requesterMemberStateCode"] = json!(req_country);
        body["requesterNumber"] = json!(req_number);
    }
    let request = match hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
    {
        Ok(r) => r,
        Err(e) => return ViesReply::unavailable(format!("bad request to {url}: {e}")),
    };
    let exchange = async {
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, bytes))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => {
            ViesReply::unavailable(format!("TIMEOUT: no answer within {} s", timeout.as_secs()))
        }
        Ok(Err(e)) => ViesReply::unavailable(format!("request failed: {e:#}")),
        Ok(Ok((status, bytes))) => parse_reply(status, &bytes),
    }
}

pub async fn run(env: &Env, opts: &RunOptions) -> anyhow::Result<JobReport> {
    let mut report = JobReport::new(JobName::VatCheck, opts);
    let s = &env.jobs.vat_check.settings;
    let url = format!("{}/check-vat-number", s.vies_base_url.trim_end_matches('/'));
    let requester = if s.requester_vat_number.trim().is_empty() {
        crate::core::vat_number::normalize(&env.jobs.invoice.settings.seller.vat_number)
    } else {
        crate::core::vat_number::normalize(&s.requester_vat_number)
    };
    let timeout = Duration::from_secs(s.request_timeout_seconds);
    let client = client();
    let accounts = vies::accounts_to_check(&env.db).await?;
    for (account, country, number) in accounts {
        if opts.stop.requested() {
            report.stop_early();
            break;
        }
        if !opts.accounts.is_empty() && !opts.accounts.iter().any(|a| a.as_str() == account) {
            continue;
        }
        // Reverse charge is only for businesses in another member state: VIES is asked
        // about those (a French or non-EU number has no bearing on the invoice's VAT).
        if country == "FR" || country == "MC" || !is_eu_member(&country) {
            continue;
        }
        if !number.starts_with(vat_prefix(&country)) {
            report.failures.push(Failure {
                item: format!("account {account}"),
                error: format!("VAT number {number} is not a {country} number"),
            });
            continue;
        }
        if opts.dry_run {
            report.bump(Count::WouldCheck);
            report.vat_checks.push(VatCheckItem {
                account_id: account,
                vat_number: number,
                outcome: VatCheckOutcome::Planned,
                consultation_number: None,
                name: None,
                detail: None,
            });
            continue;
        }
        let reply = ask(&client, &url, &requester, &number, timeout).await;
        let mut tx = env.db.begin().await?;
        vies::record(
            &mut tx,
            &NewViesCheck {
                account_id: &account,
                vat_number: &number,
                checked_at: opts.now,
                outcome: reply.outcome,
                request_date: reply.request_date.as_deref(),
                consultation_number: reply.consultation_number.as_deref(),
                name: reply.name.as_deref(),
                address: reply.address.as_deref(),
                detail: reply.detail.as_deref(),
            },
        )
        .await
        .with_context(|| format!("recording the VIES answer for account {account}"))?;
        tx.commit().await?;
        report.bump(count_of(reply.outcome));
        match reply.outcome {
            ViesOutcome::Valid => {
                info!(account.id = %account, vies.consultation = reply.consultation_number.as_deref().unwrap_or(""), "VAT number confirmed by VIES")
            }
            ViesOutcome::Invalid => {
                warn!(account.id = %account, "VIES: VAT number not valid");
                report.notes.push(format!(
                    "account {account}: VIES answered that {number} is not valid: no reverse charge on its invoices"
                ));
            }
            ViesOutcome::Unavailable => {
                let why = reply.detail.clone().unwrap_or_default();
                warn!(account.id = %account, vies.error = %why, "VIES gave no answer");
                report.notes.push(format!(
                    "account {account}: VIES gave no answer for {number} ({why}); its last confirmation stands while at most {} days old",
                    s.max_age_days
                ));
            }
        }
        report.vat_checks.push(VatCheckItem {
            account_id: account,
            vat_number: number,
            outcome: reply.outcome.into(),
            consultation_number: reply.consultation_number,
            name: reply.name,
            detail: reply.detail,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vies_answers_valid_invalid_and_ms_unavailable() {
        let valid = parse_reply(
            200,
            br#"{"countryCode":"DE","vatNumber":"123456788","requestDate":"2026-11-01T06:00:00.000Z","valid":true,"requestIdentifier":"WAPIAAAAW1","name":"Schmidt GmbH","address":"Berlin"}"#,
        );
        assert_eq!(valid.outcome, ViesOutcome::Valid);
        assert_eq!(valid.consultation_number.as_deref(), Some("WAPIAAAAW1"));
        assert_eq!(valid.name.as_deref(), Some("Schmidt GmbH"));
        let invalid = parse_reply(200, br#"{"valid":false,"name":"---"}"#);
        assert_eq!(invalid.outcome, ViesOutcome::Invalid);
        let down = parse_reply(
            500,
            br#"{"actionSucceed":false,"errorWrappers":[{"error":"MS_UNAVAILABLE","message":"x"}]}"#,
        );
        assert_eq!(down.outcome, ViesOutcome::Unavailable);
        assert_eq!(down.detail.as_deref(), Some("MS_UNAVAILABLE"));
        let user_error = parse_reply(200, br#"{"valid":false,"userError":"MS_UNAVAILABLE"}"#);
        assert_eq!(user_error.outcome, ViesOutcome::Unavailable);
        assert_eq!(
            parse_reply(502, b"<html>").outcome,
            ViesOutcome::Unavailable
        );
    }
}
