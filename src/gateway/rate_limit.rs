//! The rate limit every Stripe request of the process goes through.

use std::sync::Mutex;
use std::time::Duration;

/// The longest `Retry-After` billrun honours; a longer one is cut to it, so that one header
/// cannot stall a run for an hour (the request is sent again by the next run if this one gives
/// up).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A bucket every Stripe request of the process goes through (the collect and delete jobs
/// share it, through `Env`): requests leave at most `rate` per second, spaced evenly, so that
/// no second ever holds more than the rate. A 429 halves the rate; it climbs back by an eighth
/// of the configured rate each time a second's worth of requests passed without one. A
/// `Retry-After` holds every request back until it has passed, whatever the rate (0 included).
/// Rate 0: no limit.
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    configured: u32,
    rate: u32,
    next_free: Option<tokio::time::Instant>,
    since_slow_down: u32,
    /// No request leaves before this (a `Retry-After`).
    paused_until: Option<tokio::time::Instant>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(0)
    }
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            bucket: Mutex::new(Bucket {
                configured: per_second,
                rate: per_second,
                next_free: None,
                since_slow_down: 0,
                paused_until: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the configured rate (the settings may change between runs of a daemon).
    pub fn set_rate(&self, per_second: u32) {
        let mut b = self.lock();
        if b.configured != per_second {
            b.configured = per_second;
            b.rate = per_second;
            b.since_slow_down = 0;
        }
    }

    /// The rate now (lower than configured after a 429).
    pub fn rate(&self) -> u32 {
        self.lock().rate
    }

    /// Waits for this request's turn.
    pub async fn acquire(&self) {
        let at = {
            let mut b = self.lock();
            let now = tokio::time::Instant::now();
            let paused = b.paused_until.filter(|p| *p > now);
            if b.configured == 0 {
                match paused {
                    Some(until) => until,
                    None => return,
                }
            } else {
                let at = b.next_free.map_or(now, |t| t.max(now));
                let at = paused.map_or(at, |p| at.max(p));
                b.next_free = Some(at + Duration::from_secs(1) / b.rate.max(1));
                b.since_slow_down += 1;
                if b.rate < b.configured && b.since_slow_down >= b.rate {
                    b.rate = (b.rate + (b.configured / 8).max(1)).min(b.configured);
                    b.since_slow_down = 0;
                }
                at
            }
        };
        tokio::time::sleep_until(at).await;
    }

    /// After an answer with `Retry-After` (RFC 9110 §10.2.3; Stripe API "Rate limits"): no
    /// request leaves before `wait` has passed (cut to [`MAX_RETRY_AFTER`]), whatever the rate.
    pub fn pause_for(&self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait.min(MAX_RETRY_AFTER);
        let mut b = self.lock();
        b.paused_until = Some(b.paused_until.map_or(until, |p| p.max(until)));
    }

    /// After a 429: half the rate, and the next request waits a full interval of it.
    pub fn slow_down(&self) {
        let mut b = self.lock();
        if b.configured == 0 {
            return;
        }
        b.rate = (b.rate / 2).max(1);
        b.since_slow_down = 0;
        let gap = Duration::from_secs(1) / b.rate;
        let now = tokio::time::Instant::now();
        b.next_free = Some(b.next_free.map_or(now, |t| t.max(now)) + gap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stripe API "Rate limits": the bucket never lets more than `rate` requests leave in any
    /// second, and a 429 halves the pace.
    #[tokio::test(start_paused = true)]
    async fn stripe_api_rate_limits_the_bucket_spaces_requests() {
        let limiter = RateLimiter::new(10);
        let start = tokio::time::Instant::now();
        let mut times = Vec::new();
        for _ in 0..30 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        for w in times.windows(11) {
            assert!(
                w[10] - w[0] >= Duration::from_secs(1),
                "11 requests within a second"
            );
        }
        limiter.slow_down();
        assert_eq!(limiter.rate(), 5);
        // It climbs back while no 429 comes.
        for _ in 0..200 {
            limiter.acquire().await;
        }
        assert_eq!(limiter.rate(), 10);
        let unlimited = RateLimiter::new(0);
        let before = tokio::time::Instant::now();
        for _ in 0..1000 {
            unlimited.acquire().await;
        }
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    /// Retry-After (RFC 9110 §10.2.3, Stripe API "Rate limits"): every request waits for it,
    /// with or without a rate, never more than [`MAX_RETRY_AFTER`].
    #[tokio::test(start_paused = true)]
    async fn stripe_rate_limits_retry_after_holds_every_request_back() {
        for rate in [0, 10] {
            let limiter = RateLimiter::new(rate);
            limiter.acquire().await;
            let start = tokio::time::Instant::now();
            limiter.pause_for(Duration::from_secs(3));
            // A shorter pause afterwards does not shorten it.
            limiter.pause_for(Duration::from_secs(1));
            limiter.acquire().await;
            assert_eq!(start.elapsed(), Duration::from_secs(3), "rate {rate}");
            limiter.pause_for(Duration::from_secs(3600));
            limiter.acquire().await;
            assert_eq!(
                start.elapsed(),
                Duration::from_secs(3) + MAX_RETRY_AFTER,
                "rate {rate}: an hour is cut to {MAX_RETRY_AFTER:?}"
            );
        }
    }
}
