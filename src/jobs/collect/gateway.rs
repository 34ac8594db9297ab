//! The gateway the collect settings ask for.

use std::time::Duration;

use crate::config::{BadInput, GatewayChoice};
use crate::gateway::{Gateway, RetryPolicy, SimulatedGateway, StripeGateway};
use crate::jobs::Env;

/// Builds the gateway the settings ask for; refuses the simulator in production.
pub fn build_gateway(env: &Env) -> anyhow::Result<Gateway> {
    let s = &env.jobs.collect.settings;
    let production = env.production || s.production;
    let use_stripe = match s.gateway {
        GatewayChoice::Stripe => true,
        GatewayChoice::Simulated => false,
        GatewayChoice::Auto => env.stripe_key.is_some(),
    };
    if !use_stripe {
        if production {
            return Err(BadInput(
                "refusing the simulated payment gateway in production: set STRIPE_SECRET_KEY (and gateway = \"stripe\" or \"auto\" in jobs/collect.toml)".into(),
            )
            .into());
        }
        let latency = s
            .simulated_latency
            .parse::<crate::gateway::Latency>()
            .map_err(|e| {
                BadInput(format!(
                    "jobs/collect.toml: settings.simulated_latency: {e}"
                ))
            })?;
        env.stripe_limiter.set_rate(s.rate_limit_per_second);
        return Ok(Gateway::Simulated(SimulatedGateway::new(
            latency,
            s.simulated_fault_percent,
            env.stripe_limiter.clone(),
        )));
    }
    let key = env.stripe_key.as_ref().ok_or_else(|| {
        BadInput("jobs/collect.toml asks for Stripe but STRIPE_SECRET_KEY is not set".into())
    })?;
    let g = StripeGateway::new(
        &key.0,
        &s.stripe_base_url,
        Duration::from_secs(s.request_timeout_seconds),
        RetryPolicy {
            tries: s.transient_tries,
            first_backoff: Duration::from_millis(s.transient_backoff_ms),
        },
        {
            env.stripe_limiter.set_rate(s.rate_limit_per_second);
            env.stripe_limiter.clone()
        },
    )?;
    Ok(Gateway::Stripe(Box::new(g)))
}
