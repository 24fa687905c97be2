//! Batched bookkeeping: `last used` times and credential audit events
//! (token issued, refreshed, failed authentication) are queued in memory and
//! written in one transaction per interval, so the token endpoint performs
//! no synchronous write. A failed flush keeps the batch for the next try.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::db::{AuditEvent, Db};

/// Queued events beyond this are dropped (and the drop is logged) rather
/// than letting an unreachable database exhaust memory.
const MAX_QUEUED_EVENTS: usize = 100_000;

#[derive(Default)]
struct Pending {
    last_used: HashMap<String, i64>,
    events: Vec<AuditEvent>,
    dropped: u64,
}

#[derive(Default)]
pub struct Bookkeeper {
    pending: Mutex<Pending>,
}

impl Bookkeeper {
    fn with<T>(&self, f: impl FnOnce(&mut Pending) -> T) -> T {
        match self.pending.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Notes that an account exchanged credentials at `at`.
    pub fn touch(&self, account_id: &str, at: i64) {
        self.with(|p| {
            let e = p.last_used.entry(account_id.to_owned()).or_insert(at);
            *e = (*e).max(at);
        });
    }

    pub fn record(&self, ev: AuditEvent) {
        self.with(|p| {
            if p.events.len() < MAX_QUEUED_EVENTS {
                p.events.push(ev);
            } else {
                p.dropped += 1;
            }
        });
    }

    /// Writes everything queued so far.
    pub async fn flush(&self, db: &Db) {
        let (last_used, events, dropped) = self.with(|p| {
            (
                p.last_used.drain().collect::<Vec<_>>(),
                std::mem::take(&mut p.events),
                std::mem::take(&mut p.dropped),
            )
        });
        if dropped > 0 {
            tracing::error!(dropped, "audit queue full; credential events were dropped");
        }
        if last_used.is_empty() && events.is_empty() {
            return;
        }
        if let Err(e) = db.flush_bookkeeping(&last_used, &events).await {
            tracing::warn!(error = %e, "bookkeeping flush failed; will retry");
            self.with(|p| {
                for (id, at) in last_used {
                    let e = p.last_used.entry(id).or_insert(at);
                    *e = (*e).max(at);
                }
                let room = MAX_QUEUED_EVENTS.saturating_sub(p.events.len());
                let mut events = events;
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
        self.flush(&db).await;
    }
}
