//! The bounded, fair pool every Argon2 run in the server goes through:
//! verifying a presented secret (clients and resource servers) and hashing
//! a new one (the admin API's create, reset and rotate).
//!
//! At most `concurrency` runs at once, on the blocking pool. Callers that
//! find every permit taken wait in a queue *per key*, and a freed permit
//! goes to the keys in turn (round robin), not to the oldest waiter. The
//! key is who asks: the source address (IPv6 by /64) for authentication,
//! the acting principal for the admin API. So a flood of wrong secrets
//! from a few dozen addresses, or one admin creating accounts in a loop,
//! takes one turn each, and a correct client from anywhere else waits for
//! at most one run per busy key, not for the whole flood. The pool holds
//! at most `64 × concurrency` waiting callers; when it is full, the key
//! with the longest queue gives up its newest waiter to a key with fewer,
//! so one address may fill the queue only while nobody else waits, and a
//! caller from anywhere else always finds a place. A caller refused (its
//! own queue is the longest) is told to retry (503).
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Too many runs waiting (for this key, or in all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

pub struct ArgonPool {
    concurrency: usize,
    max_waiting: usize,
    state: Mutex<State>,
    waiting: AtomicUsize,
}

impl std::fmt::Debug for ArgonPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgonPool")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    running: usize,
    next_ticket: u64,
    /// Each key's waiters, oldest first.
    queues: HashMap<u64, VecDeque<(u64, oneshot::Sender<()>)>>,
    /// Keys with waiters, in the order they get the next permits.
    turn: VecDeque<u64>,
}

impl ArgonPool {
    pub fn new(concurrency: usize) -> Arc<Self> {
        let concurrency = concurrency.max(1);
        Arc::new(Self {
            concurrency,
            max_waiting: 64 * concurrency,
            state: Mutex::new(State::default()),
            waiting: AtomicUsize::new(0),
        })
    }

    /// Callers waiting for a permit right now.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Runs `f` on the blocking pool once `key` gets a permit. A caller
    /// dropped while waiting leaves its queue (the guard's `Drop`); one
    /// dropped while the work runs leaves the permit with the work, which
    /// finishes and only then passes it on.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        key: u64,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Overloaded> {
        let permit = self.acquire(key).await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|_| Overloaded)
    }

    async fn acquire(self: &Arc<Self>, key: u64) -> Result<Permit, Overloaded> {
        let (ticket, rx) = {
            let mut st = self.state.lock().map_err(|_| Overloaded)?;
            if st.running < self.concurrency && st.turn.is_empty() {
                st.running += 1;
                return Ok(Permit(self.clone()));
            }
            let mine = st.queues.get(&key).map_or(0, VecDeque::len);
            if self.queued() >= self.max_waiting && !self.make_room(&mut st, mine) {
                return Err(Overloaded);
            }
            let ticket = st.next_ticket;
            st.next_ticket += 1;
            let (tx, rx) = oneshot::channel();
            let q = st.queues.entry(key).or_default();
            if q.is_empty() {
                st.turn.push_back(key);
            }
            if let Some(q) = st.queues.get_mut(&key) {
                q.push_back((ticket, tx));
            }
            self.waiting.fetch_add(1, Ordering::AcqRel);
            (ticket, rx)
        };
        let waiter = Waiter {
            pool: self,
            key,
            ticket,
        };
        let handed = rx.await;
        // Off the queue either way (`release` popped this waiter).
        std::mem::forget(waiter);
        match handed {
            Ok(()) => Ok(Permit(self.clone())),
            Err(_) => Err(Overloaded),
        }
    }

    /// The pool is full: the key with the longest queue, if longer than
    /// the asking key's would become, gives up its newest waiter (told to
    /// retry), so a full pool still admits a key it has not seen. Keys are
    /// at most `max_waiting`, so the scan is short.
    fn make_room(&self, st: &mut State, mine: usize) -> bool {
        let Some((&longest, len)) = st
            .queues
            .iter()
            .map(|(k, q)| (k, q.len()))
            .max_by_key(|(_, n)| *n)
        else {
            return false;
        };
        if len <= mine + 1 {
            return false;
        }
        if let Some(q) = st.queues.get_mut(&longest) {
            // Dropping the sender wakes that waiter with a refusal.
            q.pop_back();
        }
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        true
    }

    /// Passes a freed permit to the next key in turn, or returns it.
    fn release(&self) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        while let Some(key) = st.turn.pop_front() {
            let Some(q) = st.queues.get_mut(&key) else {
                continue;
            };
            let next = q.pop_front();
            if q.is_empty() {
                st.queues.remove(&key);
            } else {
                st.turn.push_back(key);
            }
            if let Some((_, tx)) = next {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                if tx.send(()).is_ok() {
                    return;
                }
            }
        }
        st.running = st.running.saturating_sub(1);
    }
}

/// A run's permit: passed on (or given back) when dropped.
struct Permit(Arc<ArgonPool>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A place in a key's queue, taken back if the waiting future is dropped.
struct Waiter<'a> {
    pool: &'a ArgonPool,
    key: u64,
    ticket: u64,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let handed = {
            let Ok(mut st) = self.pool.state.lock() else {
                return;
            };
            let key = self.key;
            let mut found = false;
            if let Some(q) = st.queues.get_mut(&key) {
                let before = q.len();
                q.retain(|(t, _)| *t != self.ticket);
                found = q.len() < before;
                if q.is_empty() {
                    st.queues.remove(&key);
                    st.turn.retain(|k| *k != key);
                }
            }
            if found {
                self.pool.waiting.fetch_sub(1, Ordering::AcqRel);
            }
            // Not in the queue any more: `release` handed this waiter a
            // permit (under the lock, to a receiver that is still alive)
            // just before it was dropped. Pass it on.
            !found
        };
        if handed {
            self.pool.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Takes the pool's one permit until the sender is used (or dropped).
    async fn hold_the_permit(
        pool: &Arc<ArgonPool>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), Overloaded>>,
    ) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let p = pool.clone();
        let blocker = tokio::spawn(async move {
            p.run(9, move || {
                let _ = rx.recv_timeout(Duration::from_secs(5));
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        (tx, blocker)
    }

    /// A key with many waiters gets one turn in each round: another key's
    /// single run goes next, not after the whole queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_take_turns() {
        let pool = ArgonPool::new(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let slow = |tag: u64, order: Arc<Mutex<Vec<u64>>>| {
            move || {
                std::thread::sleep(Duration::from_millis(20));
                if let Ok(mut o) = order.lock() {
                    o.push(tag);
                }
            }
        };
        let mut flood = Vec::new();
        for _ in 0..10 {
            let (p, o) = (pool.clone(), order.clone());
            flood.push(tokio::spawn(async move { p.run(1, slow(1, o)).await }));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (p, o) = (pool.clone(), order.clone());
        let fresh = tokio::spawn(async move { p.run(2, slow(2, o)).await });
        assert!(fresh.await.is_ok_and(|r| r.is_ok()));
        for f in flood {
            assert!(f.await.is_ok_and(|r| r.is_ok()));
        }
        let order = order.lock().map(|o| o.clone()).unwrap_or_default();
        let at = order.iter().position(|t| *t == 2).unwrap_or(usize::MAX);
        assert!(at <= 2, "the other key waited behind the flood: {order:?}");
        assert_eq!(pool.queued(), 0);
    }

    /// The pool is bounded, its longest queue refuses first, and a
    /// dropped waiter gives its place back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pool_is_bounded_and_dropped_waiters_leave() {
        let pool = ArgonPool::new(1);
        let (tx, blocker) = hold_the_permit(&pool).await;
        let mut waiting = Vec::new();
        for _ in 0..pool.max_waiting {
            let p = pool.clone();
            waiting.push(tokio::spawn(async move { p.run(1, || ()).await }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.queued(), pool.max_waiting);
        assert_eq!(
            pool.run(1, || ()).await,
            Err(Overloaded),
            "its own queue is the longest"
        );
        for w in &waiting {
            w.abort();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.queued(), 0, "aborted waiters left their places");
        let _ = tx.send(());
        assert!(blocker.await.is_ok_and(|r| r.is_ok()));
        assert_eq!(pool.run(1, || 7).await, Ok(7));
    }

    /// A full pool still admits a key it has not seen: the longest queue
    /// gives up its newest waiter.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_makes_room_for_a_new_key() {
        let pool = ArgonPool::new(1);
        let (tx, blocker) = hold_the_permit(&pool).await;
        let mut flood = Vec::new();
        for k in 0..4u64 {
            for _ in 0..pool.max_waiting / 4 {
                let p = pool.clone();
                flood.push(tokio::spawn(async move { p.run(100 + k, || ()).await }));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.queued(), pool.max_waiting);
        let p = pool.clone();
        let fresh = tokio::spawn(async move { p.run(1, || 42).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            pool.queued(),
            pool.max_waiting,
            "one flood waiter made room"
        );
        let _ = tx.send(());
        assert_eq!(fresh.await.ok(), Some(Ok(42)));
        let mut refused = 0;
        for f in flood {
            if f.await.is_ok_and(|r| r.is_err()) {
                refused += 1;
            }
        }
        assert_eq!(refused, 1);
        assert!(blocker.await.is_ok());
    }
}
