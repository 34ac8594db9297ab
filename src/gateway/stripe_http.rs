//! The HTTP transport under async-stripe's requests: an implementation of async-stripe's own
//! client trait ([`stripe_client_core::StripeClient`]) over hyper, as async-stripe's hyper
//! client is, that hands back what that client keeps to itself: the `Stripe-Should-Retry` and
//! `Retry-After` headers of an error answer.
//!
//! Why not async-stripe's `stripe::Client`: it reads `Stripe-Should-Retry` only inside its
//! `RequestStrategy::Retry(n)` / `ExponentialBackoff(n)`, which draw a random idempotency key,
//! and returns a bare `StripeError` with no headers. billrun's keys are derived from the invoice
//! and the attempt (`RequestStrategy::Idempotent`) so that no charge is ever made twice, and it
//! retries itself (`StripeGateway::with_retries`); it needs the headers to decide. Everything
//! else stays async-stripe's: the request types and their form encoding, the pinned
//! `Stripe-Version`, the answers' parsing and the error types.
//!
//! This transport sends each request once: `RequestStrategy::Once` or `Idempotent(key)`. The
//! strategies that retry inside the client (with a random key) are refused.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use stripe::{RequestStrategy, StripeError};
use stripe_client_core::{CustomizedStripeRequest, StripeClient, StripeClientErr, StripeMethod};

/// An error answer (or no answer), with what Stripe said about retrying it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct HttpError {
    pub error: StripeError,
    /// `Stripe-Should-Retry` (Stripe API "Low-level error handling", "Stripe-Should-Retry"):
    /// `Some(false)`: a retry will not succeed; `Some(true)`: it may; `None`: not sent (then
    /// the status decides).
    pub should_retry: Option<bool>,
    /// `Retry-After` (RFC 9110 §10.2.3), in seconds or as an HTTP date, as sent (the rate
    /// limiter cuts it to `rate_limit::MAX_RETRY_AFTER`).
    pub retry_after: Option<Duration>,
}

impl From<StripeError> for HttpError {
    fn from(error: StripeError) -> HttpError {
        HttpError {
            error,
            should_retry: None,
            retry_after: None,
        }
    }
}

impl StripeClientErr for HttpError {
    fn deserialize_err(msg: impl std::fmt::Display) -> Self {
        StripeError::JSONDeserialize(msg.to_string()).into()
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A Stripe API client: async-stripe's requests over hyper (rustls, webpki roots: the stack
/// async-stripe itself uses).
#[derive(Clone)]
pub struct StripeHttp {
    client: HyperClient<Connector, Full<Bytes>>,
    /// `https://api.stripe.com/` or a test server's, ending with `/`.
    api_base: String,
    /// `Bearer sk_…`, marked sensitive (never printed by `Debug`).
    authorization: HeaderValue,
    user_agent: HeaderValue,
    stripe_version: HeaderValue,
    timeout: Duration,
}

impl std::fmt::Debug for StripeHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeHttp")
            .field("api_base", &self.api_base)
            .field("stripe_version", &self.stripe_version)
            .finish_non_exhaustive()
    }
}

impl StripeHttp {
    pub fn new(secret_key: &str, api_base: &str, timeout: Duration) -> Result<Self, StripeError> {
        let mut api_base = api_base.to_string();
        if !api_base.ends_with('/') {
            api_base.push('/');
        }
        api_base
            .parse::<hyper::Uri>()
            .map_err(|e| StripeError::ConfigError(format!("the Stripe URL is invalid: {e}")))?;
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {secret_key}")).map_err(|_| {
                StripeError::ConfigError(
                    "the Stripe secret key can only hold visible ASCII characters".into(),
                )
            })?;
        authorization.set_sensitive(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Ok(StripeHttp {
            // As async-stripe's own client: a connection per request, none kept idle.
            client: HyperClient::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(https),
            api_base,
            authorization,
            user_agent: HeaderValue::from_static(concat!(
                "Stripe/v1 RustBindings/1.0.0-rc.10 billrun/",
                env!("CARGO_PKG_VERSION")
            )),
            // The API version async-stripe's types are generated for (Stripe API
            // "Versioning": pinned on every request).
            stripe_version: HeaderValue::from_str(stripe_client_core::VERSION.as_str())
                .map_err(|_| StripeError::ConfigError("Stripe-Version".into()))?,
            timeout,
        })
    }

    fn request(
        &self,
        req: CustomizedStripeRequest,
    ) -> Result<(hyper::Request<Full<Bytes>>, Duration), StripeError> {
        let (req, config) = req.into_pieces();
        let key = match config.request_strategy.unwrap_or(RequestStrategy::Once) {
            RequestStrategy::Once => None,
            RequestStrategy::Idempotent(key) => Some(key),
            RequestStrategy::Retry(_) | RequestStrategy::ExponentialBackoff(_) => {
                return Err(StripeError::ConfigError(
                    "billrun retries Stripe requests itself, with its own idempotency keys".into(),
                ));
            }
        };
        let mut uri = format!("{}v1{}", self.api_base, req.path);
        if let Some(query) = &req.query {
            uri.push('?');
            uri.push_str(query);
        }
        let method = match req.method {
            StripeMethod::Get => hyper::Method::GET,
            StripeMethod::Post => hyper::Method::POST,
            StripeMethod::Delete => hyper::Method::DELETE,
        };
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(USER_AGENT, self.user_agent.clone())
            .header(
                HeaderName::from_static("stripe-version"),
                self.stripe_version.clone(),
            );
        if let Some(key) = key {
            builder = builder.header(HeaderName::from_static("idempotency-key"), key.as_str());
        }
        if let Some(account) = &config.account_id {
            builder = builder.header(HeaderName::from_static("stripe-account"), account.as_str());
        }
        let body = match req.body {
            Some(body) => {
                builder = builder.header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                Bytes::from(body)
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|e| StripeError::ClientError(e.to_string()))?;
        Ok((request, config.timeout.unwrap_or(self.timeout)))
    }

    async fn send_once(&self, req: CustomizedStripeRequest) -> Result<Bytes, HttpError> {
        let (request, timeout) = self.request(req)?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| StripeError::ClientError(e.to_string()))?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| StripeError::ClientError(e.to_string()))?
                .to_bytes();
            Ok::<_, StripeError>((status, headers, bytes))
        };
        let (status, headers, bytes) = tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(StripeError::Timeout))?;
        if status.is_success() {
            return Ok(bytes);
        }
        // Parsed as async-stripe parses Stripe's error objects.
        let error = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| miniserde::json::from_str::<stripe_shared::Error>(text).ok())
            .map_or_else(
                || StripeError::JSONDeserialize("error deserializing Stripe error".into()),
                |e| StripeError::Stripe(e.error, status.as_u16()),
            );
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Err(HttpError {
            error,
            should_retry: header("stripe-should-retry").and_then(should_retry),
            retry_after: header("retry-after").and_then(|v| retry_after(v, chrono::Utc::now())),
        })
    }
}

impl StripeClient for StripeHttp {
    type Err = HttpError;

    async fn execute(&self, req: CustomizedStripeRequest) -> Result<Bytes, HttpError> {
        self.send_once(req).await
    }
}

/// `Stripe-Should-Retry: true|false`; anything else is no answer.
fn should_retry(value: &str) -> Option<bool> {
    match value.trim() {
        v if v.eq_ignore_ascii_case("true") => Some(true),
        v if v.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): a number of seconds, or an HTTP date (then the time left
/// until it, zero if past). Not cut here.
fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Stripe API "Low-level error handling": `Stripe-Should-Retry` and `Retry-After`.
    #[test]
    fn stripe_should_retry_and_retry_after_headers_are_read() {
        assert_eq!(should_retry("true"), Some(true));
        assert_eq!(should_retry(" false "), Some(false));
        assert_eq!(should_retry("maybe"), None);
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after("Sat, 05 Dec 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sat, 05 Dec 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }
}
