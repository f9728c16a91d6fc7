//! Whether and when a failed run is tried again.
//!
//! Transient failures (the platform unavailable or rate-limiting, the database
//! momentarily unreachable) retry with exponential backoff and full jitter, never sooner
//! than the platform's Retry-After — itself never later than `max_delay_secs`, whatever
//! a connector says — up to a number of attempts. Schema drift,
//! unauthorized, invalid configuration, connector bugs (internal, trap) and limits hit
//! never retry: the same run would fail the same way.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use passerelle_model::run::ErrorKind;

/// The operator's retry settings (`[retry]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt, in seconds; doubles with each attempt.
    pub base_secs: f64,
    /// Longest backoff, in seconds.
    pub max_delay_secs: f64,
    /// Shortest backoff, in seconds: full jitter can draw a delay near zero, and
    /// retrying a failing platform at once helps nobody.
    pub min_delay_secs: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_secs: 30.0,
            max_delay_secs: 1800.0,
            min_delay_secs: 1.0,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed
    /// with `error_kind`, or None when it must not be retried.
    pub fn next_delay(
        &self,
        attempt: u32,
        error_kind: ErrorKind,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        if !error_kind.is_transient() || attempt >= self.max_attempts {
            return None;
        }
        let ceiling = (self.base_secs * 2f64.powi(attempt.saturating_sub(1).min(30) as i32))
            .min(self.max_delay_secs)
            .max(0.0);
        let jittered = Duration::from_secs_f64(
            rng.random_range(0.0..=ceiling)
                .max(self.min_delay_secs.min(ceiling).max(0.0)),
        );
        // A Retry-After comes from the connector (rate-limited(u32::MAX) is 136 years):
        // the operator's longest backoff bounds it.
        let longest = Duration::from_secs_f64(self.max_delay_secs.max(0.0));
        Some(match retry_after {
            Some(after) => jittered.max(after.min(longest)),
            None => jittered,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::retry::*;
    use rand::SeedableRng;

    #[test]
    fn only_transient_failures_retry() {
        let p = RetryPolicy::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for kind in [
            ErrorKind::Unavailable,
            ErrorKind::RateLimited,
            ErrorKind::Storage,
            ErrorKind::Host,
        ] {
            assert!(p.next_delay(1, kind, None, &mut rng).is_some(), "{kind}");
        }
        for kind in [
            ErrorKind::SchemaDrift,
            ErrorKind::Unauthorized,
            ErrorKind::InvalidConfig,
            ErrorKind::Internal,
            ErrorKind::Trap,
            ErrorKind::LimitExceeded,
        ] {
            assert!(p.next_delay(1, kind, None, &mut rng).is_none(), "{kind}");
        }
        assert!(
            p.next_delay(5, ErrorKind::Unavailable, None, &mut rng)
                .is_none(),
            "attempts are capped"
        );
    }

    #[test]
    fn a_retry_after_is_bounded_by_the_longest_backoff() {
        let p = RetryPolicy::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let forever = Duration::from_secs(u64::from(u32::MAX));
        for attempt in 1..5 {
            let d = p
                .next_delay(attempt, ErrorKind::RateLimited, Some(forever), &mut rng)
                .unwrap();
            assert_eq!(d, Duration::from_secs(1800), "attempt {attempt}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 1..5u32 {
            let ceiling = (30.0 * 2f64.powi(attempt as i32 - 1)).min(1800.0);
            let delays: Vec<f64> = (0..200)
                .map(|_| {
                    p.next_delay(attempt, ErrorKind::Unavailable, None, &mut rng)
                        .unwrap()
                        .as_secs_f64()
                })
                .collect();
            assert!(delays.iter().all(|d| *d <= ceiling));
            assert!(delays.iter().all(|d| *d >= 1.0), "min_delay_secs");
            let mean = delays.iter().sum::<f64>() / delays.len() as f64;
            assert!(
                (ceiling * 0.35..ceiling * 0.65).contains(&mean),
                "full jitter: {mean} of {ceiling}"
            );
        }
        let after = Duration::from_secs(600);
        for _ in 0..50 {
            assert!(
                p.next_delay(1, ErrorKind::RateLimited, Some(after), &mut rng)
                    .unwrap()
                    >= after
            );
        }
    }
}
