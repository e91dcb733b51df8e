//! The vault job queue: snapshots, restores and drills wait here for one of
//! a bounded number of slots, served round-robin across labs.
//!
//! Policy:
//! - at most `max_running` jobs hold a slot at once (they read and write
//!   whole environments; on 2 cores more than 2 only adds contention);
//! - each lab has its own FIFO; a freed slot goes to the waiting lab with
//!   the fewest running jobs, among equals the one served least recently
//!   (round-robin), so one lab's
//!   backlog of 100 does not delay another lab's single job: it runs as
//!   soon as any slot frees;
//! - a lab may have at most `max_waiting_per_lab` jobs waiting; one more is
//!   refused at once (`429 queue_full`) before anything is recorded;
//! - a waiting job knows its place (`queued (position N)` on the job): how
//!   many jobs get a slot before it if nothing else arrives.
//!
//! The queue lives in memory. Jobs still waiting when the process stops are
//! failed as `interrupted` by the start-up reconcile, like running ones.

use crate::error::ApiError;
use axum::http::StatusCode;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{oneshot, watch};
use westtek_domain::LabId;

/// Bounds of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Jobs running at once (at least 1).
    pub max_running: usize,
    /// Jobs one lab may have waiting; more are refused.
    pub max_waiting_per_lab: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_running: 2,
            max_waiting_per_lab: 200,
        }
    }
}

/// How busy the queue is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    pub running: usize,
    pub waiting: usize,
}

/// The queue (a cheap clone).
#[derive(Clone)]
pub struct FairQueue {
    inner: Arc<Inner>,
}

struct Inner {
    limits: QueueLimits,
    state: Mutex<QueueState>,
    /// Bumped whenever a place in the queue changes.
    moved: watch::Sender<u64>,
}

#[derive(Default)]
struct QueueState {
    running: usize,
    /// Running jobs per lab (labs with none are absent).
    running_by_lab: HashMap<LabId, usize>,
    /// When each lab with waiting or running jobs was last handed a slot
    /// (a counter, not a time).
    last_served: HashMap<LabId, u64>,
    served: u64,
    next_seq: u64,
    /// Labs with waiting jobs, in the order they are served next.
    rotation: VecDeque<LabId>,
    waiting: HashMap<LabId, VecDeque<Waiter>>,
}

struct Waiter {
    seq: u64,
    tx: oneshot::Sender<Slot>,
}

/// A place in the queue. Dropping it leaves the queue (or, when a slot was
/// already handed to it, frees that slot).
pub struct Ticket {
    queue: FairQueue,
    lab: LabId,
    seq: u64,
    rx: oneshot::Receiver<Slot>,
}

/// The right to run; dropping it frees the slot for the next job.
pub struct Slot {
    queue: Option<(FairQueue, LabId)>,
}

impl Default for FairQueue {
    fn default() -> Self {
        FairQueue::new(QueueLimits::default())
    }
}

impl FairQueue {
    /// An empty queue with `limits` (`max_running` 0 counts as 1).
    pub fn new(limits: QueueLimits) -> Self {
        let limits = QueueLimits {
            max_running: limits.max_running.max(1),
            ..limits
        };
        FairQueue {
            inner: Arc::new(Inner {
                limits,
                state: Mutex::new(QueueState::default()),
                moved: watch::channel(0).0,
            }),
        }
    }

    /// The queue's bounds.
    pub fn limits(&self) -> QueueLimits {
        self.inner.limits
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding the lock leaves consistent data (every
        // change is a single push or pop), so a poisoned lock is usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Joins the queue for `lab`. A free slot is handed out at once.
    ///
    /// # Errors
    /// `429 queue_full` when the lab already has `max_waiting_per_lab` jobs
    /// waiting.
    pub fn enqueue(&self, lab: LabId) -> Result<Ticket, ApiError> {
        let (tx, rx) = oneshot::channel();
        let seq = {
            let mut st = self.lock();
            let waiting = st.waiting.get(&lab).map_or(0, VecDeque::len);
            if waiting >= self.inner.limits.max_waiting_per_lab {
                return Err(queue_full(waiting));
            }
            st.next_seq += 1;
            let seq = st.next_seq;
            let q = st.waiting.entry(lab).or_default();
            if q.is_empty() {
                q.push_back(Waiter { seq, tx });
                st.rotation.push_back(lab);
            } else {
                q.push_back(Waiter { seq, tx });
            }
            self.dispatch(&mut st);
            seq
        };
        self.inner.moved.send_modify(|g| *g += 1);
        Ok(Ticket {
            queue: self.clone(),
            lab,
            seq,
            rx,
        })
    }

    /// Jobs running and waiting now.
    pub fn stats(&self) -> QueueStats {
        let st = self.lock();
        QueueStats {
            running: st.running,
            waiting: st.waiting.values().map(VecDeque::len).sum(),
        }
    }

    /// Hands free slots to waiting jobs, labs in turn. Called with the lock
    /// held; never drops an armed `Slot` (its drop takes the lock).
    fn dispatch(&self, st: &mut QueueState) {
        while st.running < self.inner.limits.max_running {
            let Some(k) = next_lab(&st.rotation, &st.running_by_lab, &st.last_served) else {
                return;
            };
            let Some(lab) = st.rotation.remove(k) else {
                return;
            };
            let Some(q) = st.waiting.get_mut(&lab) else {
                continue;
            };
            let Some(w) = q.pop_front() else {
                st.waiting.remove(&lab);
                continue;
            };
            if q.is_empty() {
                st.waiting.remove(&lab);
            } else {
                st.rotation.push_back(lab);
            }
            st.running += 1;
            *st.running_by_lab.entry(lab).or_default() += 1;
            st.served += 1;
            let served = st.served;
            st.last_served.insert(lab, served);
            let slot = Slot {
                queue: Some((self.clone(), lab)),
            };
            if let Err(mut slot) = w.tx.send(slot) {
                // The ticket is gone (its drop is waiting for this lock):
                // the slot goes to the next job instead.
                slot.queue = None;
                st.running -= 1;
                release_lab(st, lab);
            }
        }
    }

    fn release(&self, lab: LabId) {
        {
            let mut st = self.lock();
            st.running = st.running.saturating_sub(1);
            release_lab(&mut st, lab);
            self.dispatch(&mut st);
        }
        self.inner.moved.send_modify(|g| *g += 1);
    }

    /// 1-based place of a waiting ticket: how many jobs get a slot before
    /// it (plus one) if nothing else arrives and nothing running ends;
    /// `None` once it has a slot.
    fn position(&self, lab: LabId, seq: u64) -> Option<usize> {
        let st = self.lock();
        let i = st.waiting.get(&lab)?.iter().position(|w| w.seq == seq)?;
        // Replays `dispatch` on counts only.
        let mut running = st.running_by_lab.clone();
        let mut last_served = st.last_served.clone();
        let mut served = st.served;
        let mut left: HashMap<LabId, usize> =
            st.waiting.iter().map(|(l, q)| (*l, q.len())).collect();
        let mut rotation = st.rotation.clone();
        let mut served_here = 0;
        let mut place = 1;
        while let Some(k) = next_lab(&rotation, &running, &last_served) {
            let next = rotation.remove(k)?;
            if next == lab {
                if served_here == i {
                    return Some(place);
                }
                served_here += 1;
            }
            place += 1;
            *running.entry(next).or_default() += 1;
            served += 1;
            last_served.insert(next, served);
            let n = left.entry(next).or_default();
            *n = n.saturating_sub(1);
            if *n > 0 {
                rotation.push_back(next);
            }
        }
        None
    }
}

/// Index in `rotation` of the lab served next: the fewest running jobs,
/// then the least recently served, then the earliest in the rotation.
fn next_lab(
    rotation: &VecDeque<LabId>,
    running: &HashMap<LabId, usize>,
    last_served: &HashMap<LabId, u64>,
) -> Option<usize> {
    rotation
        .iter()
        .enumerate()
        .min_by_key(|(k, l)| {
            (
                running.get(l).copied().unwrap_or(0),
                last_served.get(l).copied().unwrap_or(0),
                *k,
            )
        })
        .map(|(k, _)| k)
}

/// One of `lab`'s running jobs ended; a lab with nothing running or
/// waiting is forgotten.
fn release_lab(st: &mut QueueState, lab: LabId) {
    if let Some(n) = st.running_by_lab.get_mut(&lab) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            st.running_by_lab.remove(&lab);
            if !st.waiting.contains_key(&lab) {
                st.last_served.remove(&lab);
            }
        }
    }
}

fn queue_full(waiting: usize) -> ApiError {
    ApiError::BadRequest {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "queue_full",
        detail: format!(
            "the lab already has {waiting} snapshot, restore or drill jobs waiting; retry when some have finished"
        ),
    }
}

impl Ticket {
    /// The lab the ticket queues for.
    pub fn lab(&self) -> LabId {
        self.lab
    }

    /// Current 1-based place in the queue; `None` once a slot is handed to it.
    pub fn position(&self) -> Option<usize> {
        self.queue.position(self.lab, self.seq)
    }

    /// Waits for a slot, calling `waiting(position)` now and whenever the
    /// place changes.
    pub async fn ready(mut self, waiting: impl Fn(usize)) -> Slot {
        let mut moved = self.queue.inner.moved.subscribe();
        let mut last = None;
        loop {
            let now = self.position();
            if now.is_some() && now != last {
                if let Some(p) = now {
                    waiting(p);
                }
                last = now;
            }
            tokio::select! {
                slot = &mut self.rx => {
                    return slot.unwrap_or_else(|_| {
                        // Not reachable: a waiter leaves the queue only with a
                        // slot or with its ticket. Run rather than hang.
                        tracing::error!("vault queue dropped a waiting job; running it unthrottled");
                        Slot { queue: None }
                    });
                }
                changed = moved.changed() => {
                    if changed.is_err() {
                        // The queue is gone (shutdown): only the slot can end this.
                        return (&mut self.rx).await.unwrap_or(Slot { queue: None });
                    }
                }
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let left = {
            let mut st = self.queue.lock();
            let mut left = false;
            if let Some(q) = st.waiting.get_mut(&self.lab) {
                if let Some(i) = q.iter().position(|w| w.seq == self.seq) {
                    q.remove(i);
                    left = true;
                }
                if q.is_empty() {
                    st.waiting.remove(&self.lab);
                    st.rotation.retain(|l| *l != self.lab);
                }
            }
            left
        };
        if left {
            self.queue.inner.moved.send_modify(|g| *g += 1);
        }
        // A slot already handed over (not yet taken) is freed when `rx`
        // drops, after the lock above is released.
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((q, lab)) = self.queue.take() {
            q.release(lab);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> LabId {
        LabId::new()
    }

    fn queue(running: usize, waiting: usize) -> FairQueue {
        FairQueue::new(QueueLimits {
            max_running: running,
            max_waiting_per_lab: waiting,
        })
    }

    /// The slot a ticket holds now, if one was handed to it.
    fn try_slot(t: &mut Ticket) -> Option<Slot> {
        t.rx.try_recv().ok()
    }

    #[test]
    fn a_labs_single_job_starts_before_another_labs_backlog_drains() {
        let q = queue(1, 1000);
        let (a, b) = (lab(), lab());
        let mut backlog: Vec<Ticket> = (0..100).map(|_| q.enqueue(a).unwrap()).collect();
        let mut single = q.enqueue(b).unwrap();
        // A's first job holds the only slot; B's job is next, not 100th.
        let first = try_slot(&mut backlog[0]).expect("the first job starts at once");
        assert_eq!(single.position(), Some(1));
        assert_eq!(backlog[1].position(), Some(2));
        assert!(try_slot(&mut single).is_none());
        drop(first);
        let b_slot = try_slot(&mut single).expect("lab B runs second");
        assert!(
            try_slot(&mut backlog[1]).is_none(),
            "A's second waits for B"
        );
        drop(b_slot);
        assert!(try_slot(&mut backlog[1]).is_some());
    }

    #[test]
    fn labs_take_turns_and_each_lab_keeps_its_order() {
        let q = queue(1, 1000);
        let (a, b, c) = (lab(), lab(), lab());
        let blocker = q.enqueue(c).unwrap();
        let mut tickets: Vec<(char, usize, Ticket)> = Vec::new();
        for i in 0..3 {
            tickets.push(('a', i, q.enqueue(a).unwrap()));
        }
        for i in 0..2 {
            tickets.push(('b', i, q.enqueue(b).unwrap()));
        }
        // Positions predict the order: a0 b0 a1 b1 a2.
        let mut by_pos: Vec<(usize, char, usize)> = tickets
            .iter()
            .map(|(l, i, t)| (t.position().unwrap(), *l, *i))
            .collect();
        by_pos.sort_unstable();
        let predicted: Vec<(char, usize)> = by_pos.iter().map(|(_, l, i)| (*l, *i)).collect();
        assert_eq!(
            predicted,
            vec![('a', 0), ('b', 0), ('a', 1), ('b', 1), ('a', 2)]
        );
        let mut blocker = blocker;
        let mut current = try_slot(&mut blocker).unwrap();
        let mut order = Vec::new();
        while !tickets.is_empty() {
            drop(current);
            let mut found = None;
            for (k, (_, _, t)) in tickets.iter_mut().enumerate() {
                if let Some(s) = try_slot(t) {
                    found = Some((k, s));
                    break;
                }
            }
            let (k, slot) = found.expect("a freed slot goes to a waiting job");
            let (l, i, _) = tickets.remove(k);
            order.push((l, i));
            current = slot;
        }
        drop(current);
        assert_eq!(order, predicted);
        assert_eq!(
            q.stats(),
            QueueStats {
                running: 0,
                waiting: 0
            }
        );
    }

    #[test]
    fn no_more_than_the_bound_run_at_once() {
        let q = queue(2, 1000);
        let l = lab();
        let mut t: Vec<Ticket> = (0..5).map(|_| q.enqueue(l).unwrap()).collect();
        let held: Vec<Slot> = t.iter_mut().filter_map(try_slot).collect();
        assert_eq!(held.len(), 2);
        assert_eq!(
            q.stats(),
            QueueStats {
                running: 2,
                waiting: 3
            }
        );
        drop(held);
        assert_eq!(
            q.stats(),
            QueueStats {
                running: 2,
                waiting: 1
            }
        );
    }

    #[test]
    fn a_lab_beyond_its_bound_is_refused_and_others_are_not() {
        let q = queue(1, 2);
        let (a, b) = (lab(), lab());
        let _running = q.enqueue(a).unwrap();
        let _w1 = q.enqueue(a).unwrap();
        let _w2 = q.enqueue(a).unwrap();
        let refused = q.enqueue(a).err().expect("a third waiting job is refused");
        let (status, code, _, _) = refused.parts();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(code, "queue_full");
        assert!(q.enqueue(b).is_ok(), "another lab still gets in");
    }

    #[test]
    fn a_ticket_dropped_while_waiting_leaves_and_one_dropped_holding_a_slot_frees_it() {
        let q = queue(1, 10);
        let l = lab();
        let first = q.enqueue(l).unwrap();
        let second = q.enqueue(l).unwrap();
        let mut third = q.enqueue(l).unwrap();
        assert_eq!(third.position(), Some(2));
        drop(second);
        assert_eq!(third.position(), Some(1));
        // `first` holds the slot without having taken it.
        drop(first);
        assert!(try_slot(&mut third).is_some());
    }

    #[tokio::test]
    async fn a_waiting_job_hears_its_position_and_starts_when_a_slot_frees() {
        let q = queue(1, 10);
        let l = lab();
        let mut first = q.enqueue(l).unwrap();
        let slot = try_slot(&mut first).unwrap();
        let second = q.enqueue(l).unwrap();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        let waiter = tokio::spawn(async move {
            let _slot = second.ready(move |p| h.lock().unwrap().push(p)).await;
        });
        tokio::task::yield_now().await;
        drop(slot);
        waiter.await.unwrap();
        assert_eq!(heard.lock().unwrap().first(), Some(&1));
        assert_eq!(
            q.stats(),
            QueueStats {
                running: 0,
                waiting: 0
            }
        );
    }
}
