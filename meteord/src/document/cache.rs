//! The document cache: answers keyed by URL path, each remembering every
//! file it was built from with a [`Stamp`], re-checked on every hit (see
//! the parent module's *Cache* section). Bounded in entries and bytes,
//! least recently used out first.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::path::canonical_root;
use super::{Documents, MAX_CACHE_BYTES, MAX_CACHE_ENTRIES, RACY_WINDOW};

/// Identity and version of a file as far as the cache cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub(super) fn of(meta: &Metadata) -> Self {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Modified so recently that a further write might not change the stamp.
    fn is_racy(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return true;
        };
        let horizon = now.saturating_sub(RACY_WINDOW).as_secs();
        // mtime at or after the horizon second (or before the epoch) is racy.
        u64::try_from(self.mtime.0).map_or(true, |secs| secs >= horizon)
    }
}

/// One file a cached response was built from: the URL path it was reached
/// by, and what that path resolved to (`None` = it did not resolve, as for a
/// missing include).
#[derive(Debug, Clone)]
pub(super) struct Dep {
    pub(super) url_path: String,
    pub(super) target: Option<(PathBuf, Stamp)>,
}

impl Dep {
    /// Old enough to be cached at `now` (a dependency that did not resolve
    /// has no timestamp to race with).
    pub(super) fn settled(&self, now: SystemTime) -> bool {
        self.target
            .as_ref()
            .is_none_or(|(_, stamp)| !stamp.is_racy(now))
    }
}

/// The entries and their total size, behind [`Documents`]' lock.
#[derive(Debug, Default)]
pub(super) struct Cache {
    entries: HashMap<String, CacheEntry>,
    total_bytes: usize,
    /// Logical clock for least-recently-used eviction.
    tick: u64,
}

/// One cached answer and the files it was built from.
#[derive(Debug)]
struct CacheEntry {
    response: Bytes,
    deps: Arc<[Dep]>,
    last_used: u64,
}

impl Cache {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.total_bytes = 0;
    }

    #[cfg(test)]
    pub(super) fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.total_bytes -= old.response.len();
        }
    }

    pub(super) fn insert(&mut self, key: String, response: Bytes, deps: Vec<Dep>) {
        self.remove(&key);
        while !self.entries.is_empty()
            && (self.entries.len() >= MAX_CACHE_ENTRIES
                || self.total_bytes + response.len() > MAX_CACHE_BYTES)
        {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(oldest) => self.remove(&oldest),
                None => break,
            }
        }
        if response.len() > MAX_CACHE_BYTES {
            return;
        }
        self.tick += 1;
        self.total_bytes += response.len();
        let entry = CacheEntry {
            response,
            deps: deps.into(),
            last_used: self.tick,
        };
        self.entries.insert(key, entry);
    }
}

impl Documents {
    /// The cached response for `url_path` if every file it was built from
    /// is unchanged; a stale entry is dropped.
    pub(super) fn cached(&self, url_path: &str) -> Option<Bytes> {
        let (response, deps) = {
            let cache = self.lock();
            let entry = cache.entries.get(url_path)?;
            (entry.response.clone(), Arc::clone(&entry.deps))
        };
        // Validation does file I/O: done without holding the lock.
        let root = canonical_root(&self.root).ok();
        let fresh = root.is_some_and(|root| {
            deps.iter().all(|dep| {
                let now = self.resolve(&root, &dep.url_path).ok();
                match (&dep.target, now) {
                    (None, None) => true,
                    (Some((file, stamp)), Some(now)) => *file == now.file && *stamp == now.stamp,
                    _ => false,
                }
            })
        });
        let mut cache = self.lock();
        if fresh {
            cache.tick += 1;
            let tick = cache.tick;
            if let Some(entry) = cache.entries.get_mut(url_path) {
                entry.last_used = tick;
            }
            Some(response)
        } else {
            cache.remove(url_path);
            None
        }
    }
}
