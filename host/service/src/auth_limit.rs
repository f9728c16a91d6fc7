//! Wrong tokens, per client address: each wrong bearer token or console login counts
//! against its address (`daemon.wrong_tokens_per_minute`, 10 by default: 10 at once,
//! then one more every 6 seconds); an
//! address past its allowance is refused before any token it presents is looked at,
//! until the allowance refills ([`Passerelle::authenticate`]). A request without a token
//! is not a guess and counts for nothing. Counting is `governor`'s; the clock is
//! injectable for tests.
//!
//! [`Passerelle::authenticate`]: crate::app::Passerelle::authenticate

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Wrong tokens by address.
pub struct AuthLimiter<C: Clock = DefaultClock> {
    limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    /// Addresses past their allowance, with when it has refilled by one.
    blocked: Mutex<HashMap<IpAddr, C::Instant>>,
    clock: C,
}

impl AuthLimiter {
    /// `per_minute` wrong tokens an address may present (at least 1).
    pub fn new(per_minute: u32) -> Self {
        AuthLimiter::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: Clock + Clone> AuthLimiter<C> {
    pub fn with_clock(per_minute: u32, clock: C) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute);
        AuthLimiter {
            limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock.clone()),
            blocked: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// How long `address` must still wait, if it is past its allowance.
    pub fn blocked_for(&self, address: IpAddr) -> Option<Duration> {
        let mut blocked = self.blocked.lock().expect("auth limiter lock");
        let until = *blocked.get(&address)?;
        let now = self.clock.now();
        if until <= now {
            blocked.remove(&address);
            return None;
        }
        Some(Duration::from(until.duration_since(now)))
    }

    /// Counts a wrong token from `address`; how long it must now wait, if this one
    /// used up its allowance.
    pub fn failed(&self, address: IpAddr) -> Option<Duration> {
        let refused = self.limiter.check_key(&address).err()?;
        let now = self.clock.now();
        let wait = refused.wait_time_from(now);
        let mut blocked = self.blocked.lock().expect("auth limiter lock");
        // Old entries go as the map is used: it holds only addresses blocked now.
        blocked.retain(|_, until| *until > now);
        blocked.insert(address, refused.earliest_possible());
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn an_address_past_its_allowance_waits_and_others_do_not() {
        const BURST: u32 = 10;
        const REFILL: Duration = Duration::from_secs(6);
        let clock = FakeRelativeClock::default();
        let limiter = AuthLimiter::with_clock(BURST, clock.clone());
        let guesser: IpAddr = "203.0.113.7".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..BURST {
            assert_eq!(limiter.failed(guesser), None);
            assert_eq!(limiter.blocked_for(guesser), None);
        }
        let wait = limiter
            .failed(guesser)
            .expect("the eleventh is one too many");
        assert!(wait > Duration::ZERO && wait <= REFILL, "{wait:?}");
        assert!(limiter.blocked_for(guesser).is_some());
        assert_eq!(limiter.blocked_for(other), None);
        assert_eq!(limiter.failed(other), None);
        // Once the allowance has refilled by one, one more try, and no more.
        clock.advance(REFILL);
        assert_eq!(limiter.blocked_for(guesser), None);
        assert_eq!(limiter.failed(guesser), None);
        assert!(limiter.failed(guesser).is_some());
    }
}
