//! The simulated gateway (the embedded default) and the latency it takes to answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{ChargeOutcome, ChargeRequest, RateLimiter, RefundOutcome, RefundRequest};

/// How long the simulated gateway takes to answer: `0` (at once), `300` (fixed, ms) or
/// `lognormal:MEDIAN_MS:SIGMA` (a log-normal spread around the median, as real API latencies
/// are). Drawn from the request's key, so that a run is repeatable.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Latency {
    #[default]
    None,
    Fixed(Duration),
    LogNormal {
        median: Duration,
        /// The spread (σ of the underlying normal), in thousandths: 500 = 0.5.
        sigma_milli: u32,
    },
}

impl std::str::FromStr for Latency {
    type Err = String;

    fn from_str(s: &str) -> Result<Latency, String> {
        let bad = || {
            format!(
                "`{s}` is not a latency: use milliseconds (`300`), or `lognormal:MEDIAN_MS:SIGMA` (`lognormal:300:0.5`)"
            )
        };
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("lognormal:") {
            let (median, sigma) = rest.split_once(':').ok_or_else(bad)?;
            let median: u64 = median.parse().map_err(|_| bad())?;
            let sigma: rust_decimal::Decimal = sigma.parse().map_err(|_| bad())?;
            let sigma_milli = (sigma * rust_decimal::Decimal::from(1000))
                .round()
                .try_into()
                .ok()
                .filter(|m: &u32| *m <= 3000)
                .ok_or_else(bad)?;
            return Ok(Latency::LogNormal {
                median: Duration::from_millis(median),
                sigma_milli,
            });
        }
        let ms: u64 = s.parse().map_err(|_| bad())?;
        Ok(if ms == 0 {
            Latency::None
        } else {
            Latency::Fixed(Duration::from_millis(ms))
        })
    }
}

impl Latency {
    /// The wait for request `n` with key `key`.
    pub fn sample(&self, key: &str, n: u64) -> Duration {
        match self {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => *d,
            Latency::LogNormal {
                median,
                sigma_milli,
            } => {
                // Box–Muller from two uniforms drawn from the key: a timing, not money.
                let digest = Sha256::digest(format!("{key}/{n}").as_bytes());
                let uniform = |b: &[u8]| {
                    let v = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                    ((v >> 11) as f64 + 0.5) / (1u64 << 53) as f64
                };
                let (u1, u2) = (uniform(&digest[..8]), uniform(&digest[8..16]));
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let factor_for_duration = (f64::from(*sigma_milli) / 1000.0 * z).exp();
                median.mul_f64(factor_for_duration.min(50.0))
            }
        }
    }
}

/// Behaves like Stripe's test payment methods, with no network: `pm_card_visa` pays;
/// `pm_card_visa_chargeDeclined`, `…InsufficientFunds`, `…LostCard`, `…StolenCard`,
/// `pm_card_chargeDeclinedExpiredCard`, `…ProcessingError`, `…IncorrectNumber` and
/// `pm_card_authenticationRequired` fail with Stripe's codes; a SEPA debit is `processing` and
/// settles on the next run (failed when its id contains `fail`). Deterministic: the same
/// idempotency key gives the same PaymentIntent id.
#[derive(Debug, Default, Clone)]
pub struct SimulatedGateway {
    /// How long each answer takes; `Latency::None` answers at once, with no rate limit.
    pub latency: Latency,
    /// Percent of requests that get no conclusive answer (as a Stripe 500 would).
    pub fault_percent: u32,
    /// Shared with every other gateway of the process; used only when `latency` is set, so
    /// that the simulator is then held by the rate limit as Stripe would hold billrun.
    pub limiter: Arc<RateLimiter>,
    requests: Arc<AtomicU64>,
}

impl SimulatedGateway {
    pub fn new(latency: Latency, fault_percent: u32, limiter: Arc<RateLimiter>) -> Self {
        SimulatedGateway {
            latency,
            fault_percent: fault_percent.min(100),
            limiter,
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Waits as a remote gateway would; `Some(reason)` when this request is a simulated fault.
    async fn wait(&self, key: &str) -> Option<String> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if self.latency != Latency::None {
            self.limiter.acquire().await;
            tokio::time::sleep(self.latency.sample(key, n)).await;
        }
        let draw = u64::from_le_bytes(
            Sha256::digest(format!("{key}/{n}").as_bytes())[..8]
                .try_into()
                .unwrap_or([0; 8]),
        ) % 100;
        (draw < u64::from(self.fault_percent))
            .then(|| "simulated fault: the gateway answered HTTP 500".to_string())
    }

    fn pi_id(key: &str, sepa: Option<bool>) -> String {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        match sepa {
            Some(true) => format!("pi_sim_sepa_ok_{hex}"),
            Some(false) => format!("pi_sim_sepa_fail_{hex}"),
            None => format!("pi_sim_{hex}"),
        }
    }

    /// Refunds whatever it is asked, after its latency and faults, under an id derived from the
    /// key (the same key, the same refund).
    pub(super) async fn refund(&self, req: &RefundRequest) -> RefundOutcome {
        if let Some(reason) = self.wait(&req.idempotency_key).await {
            return RefundOutcome::Unknown { reason };
        }
        let digest = Sha256::digest(req.idempotency_key.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        RefundOutcome::Succeeded {
            refund: format!("re_sim_{hex}"),
        }
    }

    pub(super) async fn charge(&self, req: &ChargeRequest) -> ChargeOutcome {
        if let Some(reason) = self.wait(&req.idempotency_key).await {
            return ChargeOutcome::Unknown { reason };
        }
        if req.sepa {
            let ok = !req.payment_method.to_ascii_lowercase().contains("fail");
            return ChargeOutcome::Processing {
                payment_intent: Self::pi_id(&req.idempotency_key, Some(ok)),
            };
        }
        let pi = Self::pi_id(&req.idempotency_key, None);
        let decline = |code: &str, decline: &str, message: &str| ChargeOutcome::Failed {
            payment_intent: Some(pi.clone()),
            code: Some(code.into()),
            decline_code: Some(decline.into()),
            message: message.into(),
        };
        match req.payment_method.as_str() {
            "pm_card_visa_chargeDeclined" => decline(
                "card_declined",
                "generic_decline",
                "Your card was declined.",
            ),
            "pm_card_visa_chargeDeclinedInsufficientFunds" => decline(
                "card_declined",
                "insufficient_funds",
                "Your card has insufficient funds.",
            ),
            "pm_card_visa_chargeDeclinedLostCard" => {
                decline("card_declined", "lost_card", "Your card was declined.")
            }
            "pm_card_visa_chargeDeclinedStolenCard" => {
                decline("card_declined", "stolen_card", "Your card was declined.")
            }
            "pm_card_chargeDeclinedExpiredCard" => {
                decline("expired_card", "expired_card", "Your card has expired.")
            }
            "pm_card_chargeDeclinedProcessingError" => decline(
                "processing_error",
                "processing_error",
                "An error occurred while processing your card. Try again in a little bit.",
            ),
            "pm_card_chargeDeclinedIncorrectNumber" => decline(
                "incorrect_number",
                "incorrect_number",
                "Your card number is incorrect.",
            ),
            "pm_card_authenticationRequired" => decline(
                "authentication_required",
                "authentication_required",
                "Your card was declined. This transaction requires authentication.",
            ),
            _ => ChargeOutcome::Succeeded { payment_intent: pi },
        }
    }

    pub(super) async fn retrieve(&self, id: &str) -> ChargeOutcome {
        if let Some(reason) = self.wait(id).await {
            return ChargeOutcome::Unknown { reason };
        }
        if id.starts_with("pi_sim_sepa_fail_") {
            ChargeOutcome::Failed {
                payment_intent: Some(id.to_string()),
                code: Some("payment_intent_payment_attempt_failed".into()),
                decline_code: Some("insufficient_funds".into()),
                message: "The SEPA debit was refused by the customer's bank.".into(),
            }
        } else {
            ChargeOutcome::Succeeded {
                payment_intent: id.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pm: &str, sepa: bool) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: "billrun-invoice-1-attempt-1".into(),
            amount_minor: 1000,
            customer: "cus_1".into(),
            payment_method: pm.into(),
            sepa,
            invoice_id: 1,
            invoice_number: "2026-000001".into(),
        }
    }

    #[tokio::test]
    async fn the_simulator_answers_like_stripe_test_methods() {
        let g = SimulatedGateway::default();
        assert!(matches!(
            g.charge(&req("pm_card_visa", false)).await,
            ChargeOutcome::Succeeded { .. }
        ));
        assert_eq!(
            g.charge(&req("pm_card_visa", false)).await,
            g.charge(&req("pm_card_visa", false)).await,
            "same key, same answer"
        );
        match g
            .charge(&req("pm_card_chargeDeclinedExpiredCard", false))
            .await
        {
            ChargeOutcome::Failed { code, .. } => assert_eq!(code.as_deref(), Some("expired_card")),
            other => panic!("{other:?}"),
        }
        let ChargeOutcome::Processing { payment_intent } =
            g.charge(&req("pm_sepa_debit_fail", true)).await
        else {
            panic!()
        };
        assert!(matches!(
            g.retrieve(&payment_intent).await,
            ChargeOutcome::Failed { .. }
        ));
        let ChargeOutcome::Processing { payment_intent } =
            g.charge(&req("pm_sepa_debit_ok", true)).await
        else {
            panic!()
        };
        assert!(matches!(
            g.retrieve(&payment_intent).await,
            ChargeOutcome::Succeeded { .. }
        ));
    }

    #[test]
    fn latencies_parse_and_sample() {
        assert_eq!("0".parse::<Latency>(), Ok(Latency::None));
        assert_eq!(
            "300".parse::<Latency>(),
            Ok(Latency::Fixed(Duration::from_millis(300)))
        );
        let l: Latency = "lognormal:300:0.5".parse().unwrap();
        assert_eq!(
            l,
            Latency::LogNormal {
                median: Duration::from_millis(300),
                sigma_milli: 500
            }
        );
        assert!("fast".parse::<Latency>().unwrap_err().contains("`fast`"));
        assert!("lognormal:300".parse::<Latency>().is_err());
        // Repeatable, spread around the median: about half below it.
        let draws: Vec<Duration> = (0..1000).map(|n| l.sample("k", n)).collect();
        assert_eq!(
            draws,
            (0..1000).map(|n| l.sample("k", n)).collect::<Vec<_>>()
        );
        let below = draws
            .iter()
            .filter(|d| **d < Duration::from_millis(300))
            .count();
        assert!(
            (400..600).contains(&below),
            "{below} of 1000 below the median"
        );
    }
}
