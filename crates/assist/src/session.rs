//! Chat sessions, in memory and bounded.
//!
//! A session remembers what a conversation is about (its environment, the
//! package and drift event last discussed, recommendations already made) and
//! its last turns, so "which notebooks use it?" can follow "why did my
//! environment drift?".
//!
//! Policy: a session is keyed by lab, user, agent and session id together,
//! so a session id guessed or reused by someone else starts an empty
//! session instead of reading another caller's. The store holds at most
//! `max_sessions` sessions (the least recently used is dropped) and
//! `max_turns` turns per session (the oldest is dropped); stored questions
//! and answers are cut to [`MAX_STORED_CHARS`]. Nothing survives a restart:
//! a lost session only costs the follow-up its context.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use westtek_domain::{EnvironmentId, EventId, LabId, UserId};

use crate::drift_tools::Recommendation;
use crate::port::AgentKind;

/// Default bound on the number of sessions.
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
/// Default bound on the turns kept per session.
pub const DEFAULT_MAX_TURNS: usize = 20;
/// Longest question or answer kept in a [`Turn`], in characters.
pub const MAX_STORED_CHARS: usize = 1000;

/// What identifies a session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// The caller's lab.
    pub lab_id: LabId,
    /// The caller.
    pub user_id: UserId,
    /// The agent the conversation is with.
    pub agent: AgentKind,
    /// The client's session id.
    pub session_id: String,
}

/// One question and its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    /// The question (cut to [`MAX_STORED_CHARS`]).
    pub question: String,
    /// The answer text (cut to [`MAX_STORED_CHARS`]).
    pub answer: String,
    /// When it was answered.
    pub at: DateTime<Utc>,
}

impl Turn {
    /// A turn, with both texts cut to [`MAX_STORED_CHARS`].
    pub fn new(question: &str, answer: &str, at: DateTime<Utc>) -> Self {
        Turn {
            question: cut(question),
            answer: cut(answer),
            at,
        }
    }
}

fn cut(s: &str) -> String {
    s.chars().take(MAX_STORED_CHARS).collect()
}

/// What a session remembers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionState {
    /// The environment the conversation is about.
    pub environment_id: Option<EnvironmentId>,
    /// The package last discussed (PEP 503 normalised): what "it" means.
    pub package: Option<String>,
    /// The drift event last discussed.
    pub event_id: Option<EventId>,
    /// Recommendations already recorded in this session, with the drift
    /// event they answer, so a follow-up does not record them twice.
    pub recommendations: Vec<(EventId, Recommendation)>,
    /// The last turns, oldest first.
    pub turns: VecDeque<Turn>,
}

struct Entry {
    state: SessionState,
    last_used: u64,
}

struct Inner {
    sessions: HashMap<SessionKey, Entry>,
    clock: u64,
}

/// A bounded in-memory session store, shared by the agents of a process.
pub struct SessionStore {
    inner: Mutex<Inner>,
    max_sessions: usize,
    max_turns: usize,
}

impl Default for SessionStore {
    fn default() -> Self {
        SessionStore::new(DEFAULT_MAX_SESSIONS, DEFAULT_MAX_TURNS)
    }
}

impl SessionStore {
    /// A store of at most `max_sessions` sessions of at most `max_turns`
    /// turns each (both at least 1).
    pub fn new(max_sessions: usize, max_turns: usize) -> Self {
        SessionStore {
            inner: Mutex::new(Inner {
                sessions: HashMap::new(),
                clock: 0,
            }),
            max_sessions: max_sessions.max(1),
            max_turns: max_turns.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind, still
        // consistent enough for conversation context.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the session's state, if it exists; marks it used.
    pub fn get(&self, key: &SessionKey) -> Option<SessionState> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        inner.sessions.get_mut(key).map(|e| {
            e.last_used = now;
            e.state.clone()
        })
    }

    /// Changes the session's state with `f`, creating the session (and
    /// dropping the least recently used one when full) if it does not
    /// exist; then drops turns beyond the bound.
    pub fn update(&self, key: &SessionKey, f: impl FnOnce(&mut SessionState)) {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        if !inner.sessions.contains_key(key) && inner.sessions.len() >= self.max_sessions {
            // O(n) over at most `max_sessions`: cheap next to answering.
            let oldest = inner
                .sessions
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                inner.sessions.remove(&oldest);
            }
        }
        let entry = inner.sessions.entry(key.clone()).or_insert_with(|| Entry {
            state: SessionState::default(),
            last_used: now,
        });
        entry.last_used = now;
        f(&mut entry.state);
        while entry.state.turns.len() > self.max_turns {
            entry.state.turns.pop_front();
        }
        let extra = entry
            .state
            .recommendations
            .len()
            .saturating_sub(self.max_turns);
        entry.state.recommendations.drain(..extra);
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// No session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(lab: LabId, user: UserId, id: &str) -> SessionKey {
        SessionKey {
            lab_id: lab,
            user_id: user,
            agent: AgentKind::DriftAnalyzer,
            session_id: id.into(),
        }
    }

    #[test]
    fn the_least_recently_used_session_is_dropped_when_full() {
        let store = SessionStore::new(2, 5);
        let (lab, user) = (LabId::new(), UserId::new());
        store.update(&key(lab, user, "a"), |s| s.package = Some("a".into()));
        store.update(&key(lab, user, "b"), |s| s.package = Some("b".into()));
        assert!(store.get(&key(lab, user, "a")).is_some());
        store.update(&key(lab, user, "c"), |_| {});
        assert_eq!(store.len(), 2);
        assert!(store.get(&key(lab, user, "b")).is_none());
        assert!(store.get(&key(lab, user, "a")).is_some());
        assert!(store.get(&key(lab, user, "c")).is_some());
    }

    #[test]
    fn only_the_last_turns_are_kept() {
        let store = SessionStore::new(10, 3);
        let k = key(LabId::new(), UserId::new(), "s");
        for i in 0..5 {
            store.update(&k, |s| {
                s.turns
                    .push_back(Turn::new(&format!("q{i}"), "a", Utc::now()))
            });
        }
        let turns = store.get(&k).unwrap().turns;
        let questions: Vec<&str> = turns.iter().map(|t| t.question.as_str()).collect();
        assert_eq!(questions, ["q2", "q3", "q4"]);
    }

    #[test]
    fn the_same_session_id_of_another_user_is_another_session() {
        let store = SessionStore::default();
        let lab = LabId::new();
        store.update(&key(lab, UserId::new(), "s"), |s| {
            s.package = Some("requests".into())
        });
        assert!(store.get(&key(lab, UserId::new(), "s")).is_none());
    }

    #[test]
    fn stored_texts_are_cut() {
        let long = "x".repeat(MAX_STORED_CHARS + 10);
        let turn = Turn::new(&long, "ok", Utc::now());
        assert_eq!(turn.question.chars().count(), MAX_STORED_CHARS);
    }
}
