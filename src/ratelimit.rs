//! Throttling of failed client authentication (brute force).
//!
//! Only *failures* are counted, at two grains, each a GCRA bucket:
//! - per (client id, source address): a burst of wrong secrets for one
//!   client from one address blocks that client *from that exact address
//!   only*, so an attacker cannot lock a legitimate client out from
//!   elsewhere, not even from a neighbour in the same IPv6 /64 (a cloud
//!   provider's /64 is often shared);
//! - per source address (IPv6 by /64, which one host usually holds whole):
//!   one address guessing across many client ids. What a stranger can
//!   choose freely (a token's unverified `iss`/`sub`, a request refused
//!   because the Argon2 queue is full) counts here only.
//!
//! While a bucket is over its limit every authentication attempt through it
//! is refused with 429 before any database lookup or Argon2 work, right
//! secret or not. Buckets live in this process: with N replicas behind a
//! load balancer an attacker gets at most N times the budget, and the
//! Argon2 pool bounds the CPU either way.
//!
//! Written by hand rather than with `governor`: that crate has no way to
//! ask whether a key is limited without spending a cell, and here only a
//! failure may spend one.
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::ip::canonical;

/// How many failures in how long; `None` disables that grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub failures: u32,
    pub per: Duration,
}

impl Quota {
    /// Parses `N/DURATION` (`10/1m`), or `off`.
    pub fn parse(s: &str) -> Result<Option<Self>, &'static str> {
        const WHY: &str = "expected N/DURATION such as 10/1m, or off";
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (n, per) = s.split_once('/').ok_or(WHY)?;
        let failures: u32 = n.trim().parse().map_err(|_| WHY)?;
        let per = humantime::parse_duration(per.trim()).map_err(|_| WHY)?;
        if failures == 0
            || failures > 1_000_000
            || per.is_zero()
            || per > Duration::from_secs(86_400)
        {
            return Err("N must be 1..1000000 and DURATION at most 1 day");
        }
        Ok(Some(Self { failures, per }))
    }

    fn interval(&self) -> Duration {
        self.per / self.failures
    }

    fn tolerance(&self) -> Duration {
        self.per - self.interval()
    }
}

/// Most tracked keys per grain. A full table makes room for a new key by
/// evicting one that is not throttled right now (`Buckets::evict_one`), so
/// new keys are always tracked and throttled keys stay throttled.
const MAX_KEYS: usize = 200_000;

/// Keys looked at, at most, for one that is not throttled before the
/// oldest looked at is evicted anyway (a table full of throttled keys).
const EVICTION_PROBES: usize = 16;

/// GCRA state per key: the theoretical arrival time of the next failure.
struct Buckets<K> {
    quota: Quota,
    tat: HashMap<K, Instant>,
    /// Keys in the order they were first tracked (with stale entries for
    /// keys swept since; compacted by `sweep`).
    order: VecDeque<K>,
    max_keys: usize,
}

impl<K: std::hash::Hash + Eq + Copy> Buckets<K> {
    /// How long until `key` may try again, if it may not now.
    fn blocked_for(&self, key: &K, now: Instant) -> Option<Duration> {
        let tat = *self.tat.get(key)?;
        let ahead = tat.checked_duration_since(now)?;
        ahead
            .checked_sub(self.quota.tolerance())
            .filter(|d| !d.is_zero())
    }

    fn new(quota: Quota, max_keys: usize) -> Self {
        Self {
            quota,
            tat: HashMap::new(),
            order: VecDeque::new(),
            max_keys,
        }
    }

    /// Spends one failure; true if this failure used up the budget.
    fn spend(&mut self, key: K, now: Instant) -> bool {
        if !self.tat.contains_key(&key) {
            if self.tat.len() >= self.max_keys {
                self.evict_one(now);
            }
            self.order.push_back(key);
        }
        let tat = self.tat.entry(key).or_insert(now);
        *tat = (*tat).max(now) + self.quota.interval();
        tat.saturating_duration_since(now) > self.quota.tolerance()
    }

    /// Makes room for one key, in O(1) amortised: the oldest tracked key
    /// that is not throttled right now is forgotten (at worst a partly
    /// spent budget starts afresh). Throttled keys met on the way go to
    /// the back of the queue and stay; if the first `EVICTION_PROBES` live
    /// keys are all throttled, the last of them goes. Each stale queue
    /// entry is dropped once, and each probe either evicts or re-queues,
    /// so no call scans the table.
    fn evict_one(&mut self, now: Instant) {
        let tolerance = self.quota.tolerance();
        let mut probes = 0;
        while let Some(k) = self.order.pop_front() {
            let Some(t) = self.tat.get(&k) else {
                continue;
            };
            probes += 1;
            let throttled = t.saturating_duration_since(now) > tolerance;
            if !throttled || probes >= EVICTION_PROBES {
                self.tat.remove(&k);
                return;
            }
            self.order.push_back(k);
        }
    }

    fn sweep(&mut self, now: Instant) {
        self.tat.retain(|_, t| *t > now);
        let tat = &self.tat;
        self.order.retain(|k| tat.contains_key(k));
    }
}

/// The bucket an address falls in: itself for IPv4, its /64 for IPv6.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Throttles failed authentication for one endpoint family (clients at the
/// token endpoint, resource servers at introspection and revocation).
pub struct AuthLimiter {
    /// Keys client ids without storing or allocating them; randomly seeded
    /// per process, so collisions cannot be aimed.
    hasher: std::collections::hash_map::RandomState,
    per_client: Option<Mutex<Buckets<(IpAddr, u64)>>>,
    per_ip: Option<Mutex<Buckets<IpAddr>>>,
}

/// What a failure did to the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tripped {
    No,
    Client,
    Address,
}

impl AuthLimiter {
    pub fn new(per_client: Option<Quota>, per_ip: Option<Quota>) -> Self {
        Self::with_capacity(per_client, per_ip, MAX_KEYS)
    }

    fn with_capacity(per_client: Option<Quota>, per_ip: Option<Quota>, max_keys: usize) -> Self {
        Self {
            hasher: std::collections::hash_map::RandomState::new(),
            per_client: per_client.map(|q| Mutex::new(Buckets::new(q, max_keys))),
            per_ip: per_ip.map(|q| Mutex::new(Buckets::new(q, max_keys))),
        }
    }

    /// `Err(wait)` if attempts for `client_id` from `ip` are throttled.
    pub fn check(&self, client_id: &str, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(client_id, ip, Instant::now())
    }

    fn check_at(&self, client_id: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut wait = self.address_blocked_for(ip, now);
        if let Some(b) = &self.per_client
            && let Ok(b) = b.lock()
            && let Some(d) = b.blocked_for(&(canonical(ip), self.hasher.hash_one(client_id)), now)
        {
            wait = wait.max(d);
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// `Err(wait)` if attempts from `ip` are throttled, whatever they name.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Duration> {
        let wait = self.address_blocked_for(ip, Instant::now());
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    fn address_blocked_for(&self, ip: IpAddr, now: Instant) -> Duration {
        self.per_ip
            .as_ref()
            .and_then(|b| b.lock().ok()?.blocked_for(&ip_key(ip), now))
            .unwrap_or(Duration::ZERO)
    }

    /// Counts a request the full Argon2 queue refused against an address
    /// that is failing already (it has failures in its bucket now): a
    /// flood of wrong secrets throttles itself sooner, while a burst of
    /// correct clients starting at once behind one address (a NAT, one
    /// host with many accounts) is never throttled for the server's load.
    pub fn overloaded(&self, ip: IpAddr) -> Tripped {
        let now = Instant::now();
        let key = ip_key(ip);
        match &self.per_ip {
            Some(b) => match b.lock() {
                Ok(mut b) if b.tat.get(&key).is_some_and(|t| *t > now) => {
                    if b.spend(key, now) {
                        Tripped::Address
                    } else {
                        Tripped::No
                    }
                }
                _ => Tripped::No,
            },
            None => Tripped::No,
        }
    }

    /// Records a failure against the address alone: for what a stranger
    /// chooses (an unverified token's names, a request the full Argon2
    /// queue refused), which must never spend a real client's budget.
    pub fn failed_address(&self, ip: IpAddr) -> Tripped {
        let now = Instant::now();
        match &self.per_ip {
            Some(b) if b.lock().is_ok_and(|mut b| b.spend(ip_key(ip), now)) => Tripped::Address,
            _ => Tripped::No,
        }
    }

    /// Records a failed authentication; says whether it tripped a limit
    /// (once per burst, for the audit log).
    pub fn failed(&self, client_id: &str, ip: IpAddr) -> Tripped {
        self.failed_at(client_id, ip, Instant::now())
    }

    fn failed_at(&self, client_id: &str, ip: IpAddr, now: Instant) -> Tripped {
        let mut tripped = Tripped::No;
        if let Some(b) = &self.per_client
            && let Ok(mut b) = b.lock()
            && b.spend((canonical(ip), self.hasher.hash_one(client_id)), now)
        {
            tripped = Tripped::Client;
        }
        if let Some(b) = &self.per_ip
            && let Ok(mut b) = b.lock()
            && b.spend(ip_key(ip), now)
            && tripped == Tripped::No
        {
            tripped = Tripped::Address;
        }
        tripped
    }

    /// Drops buckets that no longer limit anything; run periodically.
    pub fn sweep(&self) {
        let now = Instant::now();
        if let Some(b) = &self.per_client
            && let Ok(mut b) = b.lock()
        {
            b.sweep(now);
        }
        if let Some(b) = &self.per_ip
            && let Ok(mut b) = b.lock()
        {
            b.sweep(now);
        }
    }

    /// Keys currently tracked (for metrics and tests).
    pub fn tracked(&self) -> usize {
        let c = self
            .per_client
            .as_ref()
            .and_then(|b| b.lock().ok().map(|b| b.tat.len()))
            .unwrap_or(0);
        let i = self
            .per_ip
            .as_ref()
            .and_then(|b| b.lock().ok().map(|b| b.tat.len()))
            .unwrap_or(0);
        c + i
    }
}

#[cfg(test)]
#[path = "ratelimit_tests.rs"]
mod tests;
