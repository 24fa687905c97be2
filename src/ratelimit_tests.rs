//! The throttle's rules, with time passed in.
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

/// A neighbour in the same IPv6 /64 cannot lock a client out by its
/// wrong secrets: the per-client grain is the exact address. And what
/// counts against the address alone spends no client's budget.
#[test]
fn per_client_buckets_are_the_exact_address() {
    let l = AuthLimiter::new(q("5/10s"), q("1000/10s"));
    let t0 = Instant::now();
    let attacker: IpAddr = "2001:db8::bad".parse().unwrap_or_else(|_| unreachable!());
    let victim: IpAddr = "2001:db8::1".parse().unwrap_or_else(|_| unreachable!());
    for _ in 0..10 {
        l.failed_at("victim-client", attacker, t0);
    }
    assert!(l.check_at("victim-client", attacker, t0).is_err());
    assert!(l.check_at("victim-client", victim, t0).is_ok());
    let l = AuthLimiter::new(q("1/10s"), q("3/10s"));
    let ip: IpAddr = "192.0.2.3".parse().unwrap_or_else(|_| unreachable!());
    assert_eq!(l.failed_address(ip), Tripped::No);
    assert!(l.check_at("c", ip, Instant::now()).is_ok());
    l.failed_address(ip);
    assert_eq!(l.failed_address(ip), Tripped::Address);
    assert!(l.check_address(ip).is_err());
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

/// A refusal for load counts only against an address that is failing
/// already: correct clients starting at once behind one address are never
/// throttled for the server's load; a flood of wrong secrets is.
#[test]
fn overload_counts_only_against_failing_addresses() {
    let l = AuthLimiter::new(q("10/1m"), q("3/1m"));
    let ip: IpAddr = "192.0.2.7".parse().unwrap_or_else(|_| unreachable!());
    for _ in 0..50 {
        assert_eq!(l.overloaded(ip), Tripped::No);
    }
    assert!(
        l.check("c", ip).is_ok(),
        "a busy server never throttles a clean address"
    );
    l.failed_address(ip);
    let tripped = (0..5).any(|_| l.overloaded(ip) == Tripped::Address);
    assert!(tripped, "a failing address is throttled sooner");
    assert!(l.check("c", ip).is_err());
}
