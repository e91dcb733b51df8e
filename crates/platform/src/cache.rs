//! A small cache of serialized responses, invalidated by the store's
//! generation (see `MetadataStore::generation`): an entry is used only while
//! nothing was committed since it was made. It keeps hot listings (a
//! dashboard of 1,000 environments polled by many browsers) off the store.

use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most entries kept; the cache is emptied when it would grow past this.
const CAPACITY: usize = 1024;

/// Serialized responses by key, each tagged with the generation it was
/// computed at.
#[derive(Clone, Default)]
pub struct ResponseCache {
    inner: Arc<Mutex<HashMap<String, (u64, Bytes)>>>,
}

impl ResponseCache {
    /// The entry for `key` if it was made at `generation`.
    pub fn get(&self, key: &str, generation: u64) -> Option<Bytes> {
        let map = self.inner.lock().ok()?;
        map.get(key)
            .filter(|(g, _)| *g == generation)
            .map(|(_, b)| b.clone())
    }

    /// Stores an entry made at `generation`.
    pub fn put(&self, key: String, generation: u64, body: Bytes) {
        if let Ok(mut map) = self.inner.lock() {
            if map.len() >= CAPACITY && !map.contains_key(&key) {
                map.clear();
            }
            map.insert(key, (generation, body));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_used_only_at_the_generation_it_was_made() {
        let c = ResponseCache::default();
        c.put("k".into(), 7, Bytes::from_static(b"page"));
        assert_eq!(c.get("k", 7).as_deref(), Some(&b"page"[..]));
        assert_eq!(c.get("k", 8), None);
        assert_eq!(c.get("other", 7), None);
    }
}
