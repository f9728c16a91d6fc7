//! Per-platform request budgets, shared by every run of a platform in this process.
//!
//! Each platform gets a token bucket (its manifest's `rate-limit`) and a "blocked until"
//! instant set by a 429's Retry-After, so one practice's 429 slows every practice's runs
//! toward that platform, not just the run that saw it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// The budget of one platform.
pub struct PlatformLimiter {
    quota: (u32, u32),
    bucket: DefaultDirectRateLimiter,
    blocked_until: Mutex<Option<Instant>>,
}

impl PlatformLimiter {
    fn new(requests_per_second: u32, burst: u32) -> Self {
        let rps = NonZeroU32::new(requests_per_second.max(1)).expect("max(1)");
        let burst = NonZeroU32::new(burst.max(1)).expect("max(1)");
        PlatformLimiter {
            quota: (rps.get(), burst.get()),
            bucket: RateLimiter::direct(Quota::per_second(rps).allow_burst(burst)),
            blocked_until: Mutex::new(None),
        }
    }

    /// Waits for the platform's next request slot; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let started = Instant::now();
        loop {
            let until = *self.blocked_until.lock().expect("not poisoned");
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                _ => break,
            }
        }
        self.bucket.until_ready().await;
        started.elapsed()
    }

    /// Honours a 429: nobody calls this platform before `retry_after` has passed.
    pub fn back_off(&self, retry_after: Duration) {
        let until = Instant::now() + retry_after.min(Duration::from_secs(3600));
        let mut blocked = self.blocked_until.lock().expect("not poisoned");
        if blocked.is_none_or(|b| b < until) {
            *blocked = Some(until);
        }
    }
}

/// All platforms' limiters, keyed by connector name.
#[derive(Default, Clone)]
pub struct RateLimiters {
    inner: Arc<Mutex<HashMap<String, Arc<PlatformLimiter>>>>,
}

impl RateLimiters {
    /// The limiter of `platform`, created (or re-created if its quota changed).
    pub fn get(
        &self,
        platform: &str,
        requests_per_second: u32,
        burst: u32,
    ) -> Arc<PlatformLimiter> {
        let mut map = self.inner.lock().expect("not poisoned");
        let quota = (requests_per_second.max(1), burst.max(1));
        match map.get(platform) {
            Some(l) if l.quota == quota => l.clone(),
            _ => {
                let l = Arc::new(PlatformLimiter::new(quota.0, quota.1));
                map.insert(platform.to_string(), l.clone());
                l
            }
        }
    }
}

impl RateLimiters {
    /// How long `platform` is still held back by a Retry-After, if it is.
    pub fn blocked_for(&self, platform: &str) -> Option<Duration> {
        let limiter = self
            .inner
            .lock()
            .expect("not poisoned")
            .get(platform)?
            .clone();
        let until = (*limiter.blocked_until.lock().expect("not poisoned"))?;
        until.checked_duration_since(Instant::now())
    }
}

/// Parses a Retry-After value (seconds or an HTTP date).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use crate::capabilities::ratelimit::*;

    #[tokio::test]
    async fn a_429_blocks_every_user_of_the_platform() {
        let limiters = RateLimiters::default();
        let a = limiters.get("doctolib", 1000, 1000);
        let b = limiters.get("doctolib", 1000, 1000);
        a.back_off(Duration::from_millis(150));
        let waited = b.acquire().await;
        assert!(waited >= Duration::from_millis(140), "{waited:?}");
        let other = limiters.get("keldoc", 1000, 1000);
        assert!(other.acquire().await < Duration::from_millis(50));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").is_some());
        assert_eq!(parse_retry_after("soon"), None);
    }
}
