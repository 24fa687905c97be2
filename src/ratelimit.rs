//! Throttling of failed client authentication (brute force).
//!
//! Only *failures* are counted, at two grains, each a GCRA bucket:
//! - per (client id, source address): a burst of wrong secrets for one
//!   client from one address blocks that client *from that address only*,
//!   so an attacker cannot lock a legitimate client out from elsewhere;
//! - per source address (IPv6 by /64, which one host usually holds whole):
//!   one address guessing across many client ids.
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
fn ip_key(ip: IpAddr) -> IpAddr {
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
        let ip = ip_key(ip);
        let mut wait = Duration::ZERO;
        if let Some(b) = &self.per_ip
            && let Ok(b) = b.lock()
            && let Some(d) = b.blocked_for(&ip, now)
        {
            wait = wait.max(d);
        }
        if let Some(b) = &self.per_client
            && let Ok(b) = b.lock()
            && let Some(d) = b.blocked_for(&(ip, self.hasher.hash_one(client_id)), now)
        {
            wait = wait.max(d);
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Records a failed authentication; says whether it tripped a limit
    /// (once per burst, for the audit log).
    pub fn failed(&self, client_id: &str, ip: IpAddr) -> Tripped {
        self.failed_at(client_id, ip, Instant::now())
    }

    fn failed_at(&self, client_id: &str, ip: IpAddr, now: Instant) -> Tripped {
        let ip = ip_key(ip);
        let mut tripped = Tripped::No;
        if let Some(b) = &self.per_client
            && let Ok(mut b) = b.lock()
            && b.spend((ip, self.hasher.hash_one(client_id)), now)
        {
            tripped = Tripped::Client;
        }
        if let Some(b) = &self.per_ip
            && let Ok(mut b) = b.lock()
            && b.spend(ip, now)
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
mod tests {
    use super::*;

    fn q(s: &str) -> Option<Quota> {
        Quota::parse(s).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn parses_quotas() {
        assert_eq!(
            q("10/1m"),
            Some(Quota {
                failures: 10,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(q("off"), None);
        for bad in ["", "10", "0/1m", "x/1m", "10/0s", "10/forever", "5/2d"] {
            assert!(Quota::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blocks_after_the_burst_and_recovers() {
        let l = AuthLimiter::new(q("5/10s"), q("100/10s"));
        let a: IpAddr = "192.0.2.1".parse().unwrap_or_else(|_| unreachable!());
        let b: IpAddr = "192.0.2.2".parse().unwrap_or_else(|_| unreachable!());
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(l.failed_at("victim", a, t0), Tripped::No, "{i}");
            assert!(l.check_at("victim", a, t0).is_ok());
        }
        assert_eq!(l.failed_at("victim", a, t0), Tripped::Client);
        let wait = l.check_at("victim", a, t0).err().unwrap_or_default();
        assert_eq!(wait, Duration::from_secs(2));
        // Another address, and another client from the same address, are
        // not affected.
        assert!(l.check_at("victim", b, t0).is_ok());
        assert!(l.check_at("other", a, t0).is_ok());
        // One interval later one more attempt is allowed.
        assert!(l.check_at("victim", a, t0 + Duration::from_secs(2)).is_ok());
        assert_eq!(
            l.failed_at("victim", a, t0 + Duration::from_secs(2)),
            Tripped::Client
        );
        l.sweep();
        assert_eq!(l.tracked(), 2);
    }

    #[test]
    fn one_address_across_many_clients_is_limited() {
        let l = AuthLimiter::new(q("5/10s"), q("20/10s"));
        let t0 = Instant::now();
        let ip: IpAddr = "2001:db8::1".parse().unwrap_or_else(|_| unreachable!());
        let same64: IpAddr = "2001:db8::ffff:2"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let mut tripped = None;
        for i in 0..20 {
            if l.failed_at(&format!("c{i}"), ip, t0) == Tripped::Address {
                tripped = Some(i);
            }
        }
        assert_eq!(tripped, Some(19));
        assert!(l.check_at("fresh", same64, t0).is_err());
        let v4: IpAddr = "::ffff:192.0.2.9"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(ip_key(v4), "192.0.2.9".parse::<IpAddr>().unwrap_or(v4));
    }

    /// A full table keeps throttling: new keys are tracked (and get
    /// throttled) however many distinct keys came before, keys that are
    /// throttled stay throttled through a flood of new ones, and the table
    /// never grows past its bound. Before, a full table left every new key
    /// untracked and swept the whole table on each new failure.
    #[test]
    fn a_full_table_evicts_the_unthrottled_and_keeps_throttling() {
        let max = 1000;
        let l = AuthLimiter::with_capacity(q("5/1m"), None, max);
        let t0 = Instant::now();
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + i));
        // A victim pair throttled first.
        for _ in 0..5 {
            l.failed_at("victim", ip(0), t0);
        }
        assert!(l.check_at("victim", ip(0), t0).is_err());
        // Ten times the table's size in fresh keys, one failure each.
        for i in 1..=(10 * max as u32) {
            l.failed_at("spray", ip(i), t0);
            assert!(l.tracked() <= max, "bounded");
        }
        assert!(
            l.check_at("victim", ip(0), t0).is_err(),
            "a throttled key survives the flood"
        );
        // A brand-new key on the full table is tracked and throttled.
        for _ in 0..5 {
            l.failed_at("late", ip(999_999), t0);
        }
        assert!(l.check_at("late", ip(999_999), t0).is_err());
        // A table of nothing but throttled keys still admits new keys.
        let l = AuthLimiter::with_capacity(q("1/1m"), None, 10);
        for i in 0..100 {
            l.failed_at("x", ip(i), t0);
            assert!(l.check_at("x", ip(i), t0).is_err(), "{i}");
            assert!(l.tracked() <= 10);
        }
    }

    #[test]
    fn disabled_grains_never_block() {
        let l = AuthLimiter::new(None, None);
        let ip: IpAddr = "192.0.2.1".parse().unwrap_or_else(|_| unreachable!());
        for _ in 0..1000 {
            assert_eq!(l.failed("x", ip), Tripped::No);
        }
        assert!(l.check("x", ip).is_ok());
    }
}
