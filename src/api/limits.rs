//! Per-tier request rates (GCRA, via `governor`, keyed by user) and the `RateLimit-*` headers.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::http::{HeaderMap, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::config::{TierLimits, TiersConfig};

type Limiter = RateLimiter<Uuid, DefaultKeyedStateStore<Uuid>, DefaultClock, StateInformationMiddleware>;

pub struct RateLimits {
    tiers: TiersConfig,
    free: Limiter,
    pro: Limiter,
    enterprise: Limiter,
}

/// The outcome of one request against its user's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the budget is full again (allowed) or the next request may pass (limited).
    pub reset: u64,
    pub allowed: bool,
}

impl Budget {
    /// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (IETF draft), and
    /// `Retry-After` when the request was refused.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset));
        if !self.allowed {
            headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(self.reset));
        }
    }
}

fn limiter(limits: &TierLimits) -> Limiter {
    let rate = NonZeroU32::new(limits.requests_per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limits.burst).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)).with_middleware::<StateInformationMiddleware>()
}

impl RateLimits {
    pub fn new(tiers: &TiersConfig) -> Self {
        Self { free: limiter(&tiers.free), pro: limiter(&tiers.pro), enterprise: limiter(&tiers.enterprise), tiers: tiers.clone() }
    }

    pub fn check(&self, user_id: Uuid, tier: &str) -> Budget {
        let (limiter, limits) = match tier {
            "enterprise" => (&self.enterprise, &self.tiers.enterprise),
            "pro" => (&self.pro, &self.tiers.pro),
            _ => (&self.free, &self.tiers.free),
        };
        let per_request = 60.0 / f64::from(limits.requests_per_minute.max(1));
        match limiter.check_key(&user_id) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let reset = (f64::from(limits.burst.saturating_sub(remaining)) * per_request).ceil() as u64;
                Budget { limit: limits.burst, remaining, reset, allowed: true }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Budget { limit: limits.burst, remaining: 0, reset: wait.as_secs_f64().ceil().max(1.0) as u64, allowed: false }
            }
        }
    }

    /// Forgets users whose budget is full again, so the maps do not grow without bound.
    pub fn shrink(&self) {
        self.free.retain_recent();
        self.pro.retain_recent();
        self.enterprise.retain_recent();
    }
}

/// Requests limited per client address: registrations (per hour), and lookups of keys no
/// cache can answer (per minute), which come before a user is known.
pub struct AddressLimits {
    limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>,
    /// Allowed per `window`, all at once if saved up.
    amount: u32,
    window: std::time::Duration,
    trusted_hops: usize,
}

impl AddressLimits {
    pub fn new(per_hour: u32, trusted_hops: usize) -> Self {
        Self::within(per_hour, std::time::Duration::from_secs(3600), trusted_hops)
    }

    pub fn within(amount: u32, window: std::time::Duration, trusted_hops: usize) -> Self {
        let rate = NonZeroU32::new(amount).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(window / rate.get()).unwrap_or(Quota::per_hour(rate)).allow_burst(rate);
        Self { limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(), amount, window, trusted_hops }
    }

    /// The client's address: the peer, or behind `trusted_hops` proxies the entry they added.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.trusted_hops == 0 {
            return peer;
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        forwarded.len().checked_sub(self.trusted_hops).and_then(|i| forwarded.get(i)).and_then(|a| a.parse().ok()).unwrap_or(peer)
    }

    pub fn check(&self, client: IpAddr) -> Budget {
        match self.limiter.check_key(&client) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let reset = (u64::from(self.amount.saturating_sub(remaining)) * self.window.as_secs()).div_ceil(u64::from(self.amount.max(1)));
                Budget { limit: self.amount, remaining, reset, allowed: true }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Budget { limit: self.amount, remaining: 0, reset: wait.as_secs_f64().ceil().max(1.0) as u64, allowed: false }
            }
        }
    }

    pub fn shrink(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers(rpm: u32, burst: u32) -> TiersConfig {
        let t = TierLimits { requests_per_minute: rpm, burst, max_systems: 1, readings_per_day: 1 };
        TiersConfig { free: t.clone(), pro: t.clone(), enterprise: t }
    }

    #[test]
    fn a_burst_passes_then_the_next_request_is_refused_with_a_retry_time() {
        let limits = RateLimits::new(&tiers(60, 3));
        let user = Uuid::new_v4();
        let budgets: Vec<Budget> = (0..4).map(|_| limits.check(user, "free")).collect();
        assert_eq!(budgets.iter().map(|b| b.remaining).collect::<Vec<_>>(), [2, 1, 0, 0]);
        assert!(budgets[..3].iter().all(|b| b.allowed));
        assert!(!budgets[3].allowed);
        assert_eq!(budgets[3].reset, 1, "one request per second comes back");
        assert!(limits.check(Uuid::new_v4(), "free").allowed, "another user has a budget of their own");
    }
}

#[cfg(test)]
mod address_tests {
    use super::*;

    #[test]
    fn the_client_address_comes_from_the_peer_unless_proxies_are_trusted() {
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(AddressLimits::new(10, 0).client(peer, &headers), peer, "a header nobody vouches for is ignored");
        assert_eq!(AddressLimits::new(10, 1).client(peer, &headers), "203.0.113.7".parse::<IpAddr>().unwrap(), "the entry our proxy added");
        assert_eq!(AddressLimits::new(10, 3).client(peer, &headers), peer, "fewer entries than proxies: the peer");
    }

    #[test]
    fn an_address_over_its_hourly_registrations_waits() {
        let limits = AddressLimits::new(2, 0);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limits.check(client).allowed && limits.check(client).allowed);
        let refused = limits.check(client);
        assert!(!refused.allowed);
        assert!(refused.reset > 1000, "the next one is half an hour away: {refused:?}");
    }
}
