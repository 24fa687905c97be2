//! Batched bookkeeping: `last used` times and addresses, per-account hourly
//! usage counters, and credential audit events (token issued, refreshed,
//! failed authentication) are queued in memory and written in one
//! transaction per interval, so the token endpoint performs no synchronous
//! write. A failed flush keeps the batch for the next try.
//!
//! The counters are always kept; which per-token events reach the audit
//! log is a setting (`audit_token_events`), since at full speed one event
//! per token is most of what the database stores.
//!
//! Failed authentications are aggregated: per account, address and minute
//! the first failure is written as it happens, and the ones after it in
//! that minute as one more event with their `count`, once the minute is
//! over. Junk assertions naming a public client id cost no Argon2, so
//! without this a stranger wrote one audit row per request (hundreds a
//! second) into the account's log.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::db::{AuditEvent, Db};

/// Queued events beyond this are dropped (and the drop is logged) rather
/// than letting an unreachable database exhaust memory.
const MAX_QUEUED_EVENTS: usize = 100_000;

/// Which per-token events are written to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenEvents {
    /// `token.issued`, `token.refreshed` and `client.auth_failed`.
    #[default]
    All,
    /// Only `client.auth_failed`.
    Failures,
    /// None of them (the hourly counters still count everything).
    None,
}

impl TokenEvents {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(Self::All),
            "failures" => Some(Self::Failures),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// What one use of an account's credentials was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Issued,
    Refreshed,
    Failed,
}

/// Counts for one account and hour: issued, refreshed, failed.
pub type Counts = [i64; 3];

#[derive(Default)]
struct Pending {
    last_used: HashMap<String, (i64, Option<IpAddr>)>,
    /// Credential id → its last use (a public key's).
    credential_used: HashMap<String, (i64, Option<IpAddr>)>,
    /// `account id` and a space and a secret's prefix → its last use.
    secret_used: HashMap<String, (i64, Option<IpAddr>)>,
    /// Account id → (hour, counts) for the hour being counted; an hour
    /// that ends before a flush moves to `past_hours`. Keyed by account
    /// alone so a request finds its entry without allocating.
    usage: HashMap<String, (i64, Counts)>,
    past_hours: Vec<(String, i64, Counts)>,
    events: Vec<AuditEvent>,
    dropped: u64,
    /// (account, address, minute) → the latest repeated failure and how
    /// many followed the first, written when the minute is over.
    failures: HashMap<FailureKey, (Option<AuditEvent>, u64)>,
}

/// (account id, address, start of the minute).
type FailureKey = (String, Option<IpAddr>, i64);

/// Most (account, address, minute) failure aggregates held; past it a
/// failure's event is queued on its own (and bounded like every event).
const MAX_FAILURE_AGGREGATES: usize = 10_000;

#[derive(Default)]
pub struct Bookkeeper {
    pending: Mutex<Pending>,
    token_events: TokenEvents,
}

/// What one flush writes.
pub struct Batch {
    /// Account id → (last use, its address).
    pub last_used: Vec<(String, i64, Option<String>)>,
    /// Credential id → (last use, its address).
    pub credential_used: Vec<(String, i64, Option<String>)>,
    /// `account id` and a space and a secret's prefix → (last use, its
    /// address).
    pub secret_used: Vec<(String, i64, Option<String>)>,
    /// (account id, hour start) → counts.
    pub usage: Vec<(String, i64, Counts)>,
    pub events: Vec<AuditEvent>,
}

impl Bookkeeper {
    fn with<T>(&self, f: impl FnOnce(&mut Pending) -> T) -> T {
        match self.pending.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub fn new(token_events: TokenEvents) -> Self {
        Self {
            pending: Mutex::default(),
            token_events,
        }
    }

    /// One use of an account's credentials at `at` from `ip`: counted in
    /// its hour, a success moves `last used` on, and the audit event
    /// (built only if the setting keeps it) is queued.
    pub fn used(
        &self,
        account_id: &str,
        at: i64,
        ip: Option<IpAddr>,
        usage: Usage,
        event: impl FnOnce() -> AuditEvent,
    ) {
        let keep = match self.token_events {
            TokenEvents::All => true,
            TokenEvents::Failures => usage == Usage::Failed,
            TokenEvents::None => false,
        };
        let event = keep.then(event);
        let hour = at - at.rem_euclid(3600);
        self.with(|p| {
            match p.usage.get_mut(account_id) {
                Some((h, c)) if *h == hour => c[usage as usize] += 1,
                Some((h, c)) => {
                    let done = std::mem::take(c);
                    p.past_hours.push((account_id.to_owned(), *h, done));
                    *h = hour;
                    c[usage as usize] += 1;
                }
                None => {
                    let mut c = Counts::default();
                    c[usage as usize] += 1;
                    p.usage.insert(account_id.to_owned(), (hour, c));
                }
            }
            if usage != Usage::Failed {
                match p.last_used.get_mut(account_id) {
                    Some(e) if at >= e.0 => *e = (at, ip),
                    Some(_) => {}
                    None => {
                        p.last_used.insert(account_id.to_owned(), (at, ip));
                    }
                }
            }
            match event {
                Some(ev) if usage == Usage::Failed => failed_event(p, account_id, ip, at, ev),
                Some(ev) => push_event(p, ev),
                None => {}
            }
        });
    }

    /// One successful use of a credential other than the secret (its
    /// `last used`, batched like the account's).
    pub fn credential_used(&self, credential_id: &str, at: i64, ip: Option<IpAddr>) {
        self.with(|p| later(&mut p.credential_used, credential_id.to_owned(), at, ip));
    }

    /// One successful use of an account's secret, by its public prefix.
    pub fn secret_used(&self, account_id: &str, prefix: &str, at: i64, ip: Option<IpAddr>) {
        let key = format!("{account_id} {prefix}");
        self.with(|p| later(&mut p.secret_used, key, at, ip));
    }

    /// Queues an audit event that is always kept (throttle trips).
    pub fn record(&self, ev: AuditEvent) {
        self.with(|p| push_event(p, ev));
    }

    /// Writes everything queued so far (failure aggregates of minutes that
    /// are over, or all of them when `closing`).
    pub async fn flush(&self, db: &Db) {
        self.flush_at(db, crate::now_unix(), false).await;
    }

    /// Writes everything queued, every failure aggregate included (what
    /// shutdown writes last).
    pub async fn flush_all(&self, db: &Db) {
        self.flush_at(db, crate::now_unix(), true).await;
    }

    async fn flush_at(&self, db: &Db, now: i64, closing: bool) {
        let (batch, dropped) = self.with(|p| {
            close_failures(p, now, closing);
            (
                Batch {
                    last_used: drain_uses(&mut p.last_used),
                    credential_used: drain_uses(&mut p.credential_used),
                    secret_used: drain_uses(&mut p.secret_used),
                    usage: merge_hours(
                        p.usage
                            .drain()
                            .map(|(id, (hour, c))| (id, hour, c))
                            .chain(p.past_hours.drain(..)),
                    ),
                    events: std::mem::take(&mut p.events),
                },
                std::mem::take(&mut p.dropped),
            )
        });
        if dropped > 0 {
            tracing::error!(dropped, "audit queue full; credential events were dropped");
        }
        if batch.last_used.is_empty()
            && batch.credential_used.is_empty()
            && batch.secret_used.is_empty()
            && batch.usage.is_empty()
            && batch.events.is_empty()
        {
            return;
        }
        if let Err(e) = db.flush_bookkeeping(&batch).await {
            tracing::warn!(error = %e, "bookkeeping flush failed; will retry");
            self.with(|p| {
                for (id, at, ip) in batch.last_used {
                    later(&mut p.last_used, id, at, ip.and_then(|i| i.parse().ok()));
                }
                for (id, at, ip) in batch.credential_used {
                    later(
                        &mut p.credential_used,
                        id,
                        at,
                        ip.and_then(|i| i.parse().ok()),
                    );
                }
                for (id, at, ip) in batch.secret_used {
                    later(&mut p.secret_used, id, at, ip.and_then(|i| i.parse().ok()));
                }
                // Counts are added up on write, so a retried hour may be
                // queued beside a newer entry for the same account.
                p.past_hours.extend(batch.usage);
                let room = MAX_QUEUED_EVENTS.saturating_sub(p.events.len());
                let mut events = batch.events;
                events.truncate(room);
                events.append(&mut p.events);
                p.events = events;
            });
        }
    }

    /// Flushes every `interval` until `shutdown` flips, then once more.
    pub async fn run(&self, db: Db, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush(&db).await,
                _ = shutdown.changed() => break,
            }
        }
        self.flush_all(&db).await;
    }
}

/// Keeps the later of two uses.
fn later(
    map: &mut HashMap<String, (i64, Option<IpAddr>)>,
    id: String,
    at: i64,
    ip: Option<IpAddr>,
) {
    let e = map.entry(id).or_insert((at, ip));
    if at >= e.0 {
        *e = (at, ip);
    }
}

fn drain_uses(
    map: &mut HashMap<String, (i64, Option<IpAddr>)>,
) -> Vec<(String, i64, Option<String>)> {
    map.drain()
        .map(|(id, (at, ip))| (id, at, ip.map(|i| i.to_string())))
        .collect()
}

/// A failed authentication's event: the first of its (account, address,
/// minute) is queued now, later ones only counted.
fn failed_event(p: &mut Pending, account: &str, ip: Option<IpAddr>, at: i64, ev: AuditEvent) {
    let key = (account.to_owned(), ip, at - at.rem_euclid(60));
    let room = p.failures.len() < MAX_FAILURE_AGGREGATES;
    match p.failures.get_mut(&key) {
        Some((latest, n)) => {
            *latest = Some(ev);
            *n += 1;
        }
        None if room => {
            p.failures.insert(key, (None, 0));
            push_event(p, ev);
        }
        None => push_event(p, ev),
    }
}

/// Queues one event per aggregate whose minute is over (all of them when
/// `closing`) that saw repeats: the latest repeat, with `count` of them.
fn close_failures(p: &mut Pending, now: i64, closing: bool) {
    let minute = now - now.rem_euclid(60);
    let over: Vec<_> = p
        .failures
        .keys()
        .filter(|k| closing || k.2 < minute)
        .cloned()
        .collect();
    for k in over {
        if let Some((Some(mut ev), n)) = p.failures.remove(&k) {
            if let Some(d) = ev.details.as_object_mut() {
                d.insert("count".into(), n.into());
                d.insert("repeated_within".into(), "1m".into());
            }
            push_event(p, ev);
        }
    }
}

fn push_event(p: &mut Pending, ev: AuditEvent) {
    if p.events.len() < MAX_QUEUED_EVENTS {
        p.events.push(ev);
    } else {
        p.dropped += 1;
    }
}

/// One entry per (account, hour): a multi-row upsert may not name a row
/// twice.
fn merge_hours(rows: impl Iterator<Item = (String, i64, Counts)>) -> Vec<(String, i64, Counts)> {
    let mut out: HashMap<(String, i64), Counts> = HashMap::new();
    for (id, hour, c) in rows {
        let e = out.entry((id, hour)).or_default();
        for (a, b) in e.iter_mut().zip(c) {
            *a += b;
        }
    }
    out.into_iter().map(|((id, h), c)| (id, h, c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fifty failures of one account from one address in one minute are
    /// two events: the first at once, then one with `count` 49 once the
    /// minute is over. Another address is its own aggregate.
    #[test]
    fn repeated_failures_are_one_event_per_minute() {
        let b = Bookkeeper::new(TokenEvents::All);
        let ip: Option<IpAddr> = "192.0.2.1".parse().ok();
        let t0 = 1_000_020;
        let ev = || AuditEvent::new("service_account", "a", "client.auth_failed", t0);
        for i in 0..50 {
            b.used("a", t0 + i % 30, ip, Usage::Failed, ev);
        }
        b.used("a", t0, "192.0.2.2".parse().ok(), Usage::Failed, ev);
        b.with(|p| {
            assert_eq!(p.events.len(), 2, "the first of each address");
            close_failures(p, t0 + 5, false);
            assert_eq!(p.events.len(), 2, "the minute is not over");
            close_failures(p, t0 + 60, false);
            assert_eq!(p.events.len(), 3);
            assert_eq!(p.events[2].details["count"], 49);
            assert!(p.failures.is_empty());
        });
    }
}
