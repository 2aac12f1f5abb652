//! Static documents from `SubscriberDocumentRoot` (how `meteor.js` and
//! `stream.html` reach the browser from the push host).
//!
//! This module owns the entry point ([`Documents::respond`]), the bounds
//! and the Content-Type table; one job per child module:
//! - `path`: a URL path → a regular file inside the root, read bounded;
//! - `include`: `<!--#include virtual="…"-->` expansion;
//! - `cache`: the in-memory cache that never serves a file changed on disk.
//!
//! The response head itself is [`crate::http`]'s, shared with the daemon's
//! other fixed answers.
//!
//! # Path rules (the original's)
//! A URL path may only contain `[A-Za-z0-9._/-]` and no `..` anywhere, else
//! 404 (so percent-encoded tricks such as `%2e%2e` are 404 because `%` is not
//! allowed). Empty and `.` segments are ignored, so `//x` is `/x` and
//! `/app.js/` is `/app.js`. A path naming a directory gets `DirectoryIndex`.
//! Ours also canonicalizes the joined path (symlinks resolved) and requires
//! it to lie inside the canonical root.
//!
//! # Includes (the original's)
//! `<!--#include virtual="x.html"-->` (spaces allowed before `virtual` and
//! `-->`) is replaced by that document's raw content: the path is taken from
//! the root whether or not it starts with `/`, and includes inside included
//! content are left as they are. Only text documents (those sent with
//! `charset=utf-8`) are expanded, so binary files are never rewritten. The
//! included path follows the same rules as a request; **a missing or refused
//! include becomes an empty string** (and a warning in the log).
//!
//! # Answers
//! The original's fixed header set, built by [`crate::http`]: `Server:
//! meteord` and `Content-length` (lower-case l) included; a 404 has an
//! empty body (`Content-length: 0`).
//!
//! # Cache
//! Keyed by URL path; each entry remembers every file it was built from
//! (the document and all includes, including includes that were missing)
//! with a stamp (device, inode, size, mtime, ctime). Every hit re-resolves and
//! re-stats each of them and rebuilds on any difference, so an edit,
//! a replaced file, a retargeted symlink or a newly created include is seen
//! on the next request. Files modified within [`RACY_WINDOW`] are served but
//! not cached, because a second edit within the file system's timestamp
//! granularity could keep the same stamp.

mod cache;
mod include;
mod path;
#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::http;
use cache::Cache;

/// Most documents kept in the cache. A push host serves a handful of files
/// (`meteor.js`, `stream.html`, …); 64 leaves ample room.
pub const MAX_CACHE_ENTRIES: usize = 64;

/// Most response bytes kept in the cache in total: bounds its memory to
/// 8 MiB plus per-entry bookkeeping.
pub const MAX_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Larger responses are served but not cached, so one big file cannot evict
/// everything else.
pub const MAX_CACHED_BODY: usize = 1024 * 1024;

/// Largest response body served at all (document plus expanded includes):
/// a page could include one big file many times. Beyond this the answer is
/// a 500 with the 404's header set and an empty body.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Files whose mtime is this recent are served but not cached: a second
/// write within the file system's timestamp granularity could leave the
/// stamp unchanged. Two seconds also covers coarse (FAT-style) timestamps.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// One answer: the status (for statistics and logs) and the complete HTTP
/// response bytes (status line, headers, body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentResponse {
    pub status: u16,
    pub bytes: Bytes,
}

/// The static document server: root, index name and cache. `Send + Sync`;
/// share it through an `Arc`.
#[derive(Debug)]
pub struct Documents {
    root: PathBuf,
    directory_index: String,
    cache: Mutex<Cache>,
}

/// Why a document could not be served.
#[derive(Debug)]
enum DocError {
    /// Bad characters, `..`, outside the root, missing, not a regular file,
    /// unreadable: all look the same to the client (404), so nothing about
    /// the file system leaks.
    NotFound(&'static str),
    /// The body would exceed [`MAX_BODY`].
    TooLarge,
    /// Reading a file that exists failed: 404 as well, as in the original.
    Io(io::Error),
}

impl Documents {
    /// A document server for `root` whose directories are answered with
    /// `directory_index`. The root need not exist yet (until it does, every
    /// document is 404).
    pub fn new(root: PathBuf, directory_index: String) -> Self {
        Documents {
            root,
            directory_index,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Full HTTP response bytes (status line, headers, body) for a GET of
    /// `url_path` (already stripped of `?query`). Never panics; does blocking
    /// file I/O, so async callers run it in `spawn_blocking`.
    pub fn respond(&self, url_path: &str) -> DocumentResponse {
        if let Some(response) = self.cached(url_path) {
            return DocumentResponse {
                status: 200,
                bytes: response,
            };
        }
        let mut deps = Vec::new();
        let mut budget = MAX_BODY;
        match self.render(url_path, true, &mut deps, &mut budget) {
            Ok((body, content_type)) => {
                let response = http::response(http::OK, content_type, is_text(content_type), &body);
                // The file system's clock, not the daemon's (crate::clock):
                // it is compared with the files' mtimes.
                let now = SystemTime::now();
                let settled = deps.iter().all(|dep| dep.settled(now));
                if settled && body.len() <= MAX_CACHED_BODY {
                    self.lock()
                        .insert(url_path.to_owned(), response.clone(), deps);
                }
                tracing::debug!(path = url_path, bytes = body.len(), "document served");
                DocumentResponse {
                    status: 200,
                    bytes: response,
                }
            }
            Err(DocError::NotFound(why)) => {
                tracing::debug!(path = url_path, reason = why, "document not found");
                DocumentResponse {
                    status: 404,
                    bytes: http::empty(http::NOT_FOUND),
                }
            }
            Err(DocError::TooLarge) => {
                tracing::warn!(
                    path = url_path,
                    limit = MAX_BODY,
                    "document too large to serve"
                );
                DocumentResponse {
                    status: 500,
                    bytes: http::empty(http::INTERNAL_SERVER_ERROR),
                }
            }
            Err(DocError::Io(err)) => {
                tracing::warn!(path = url_path, error = %err, "document read failed");
                DocumentResponse {
                    status: 404,
                    bytes: http::empty(http::NOT_FOUND),
                }
            }
        }
    }

    /// Drop the cache (SIGHUP / SIGUSR2).
    pub fn clear_cache(&self) {
        self.lock().clear();
    }

    /// Number of cached documents (for tests and statistics).
    pub fn cached_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        // The cache holds no invariant a panicking holder could break
        // half-way that matters for correctness (every hit is re-validated),
        // so a poisoned lock is simply taken over.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Content-Type for a file name, by extension (case-insensitive).
fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        // .shtml is where SSI pages traditionally live.
        "html" | "htm" | "shtml" => "text/html",
        "js" | "mjs" => "text/javascript",
        "css" => "text/css",
        "json" => "application/json",
        "txt" => "text/plain",
        "xml" => "text/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "gif" => "image/gif",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "swf" => "application/x-shockwave-flash",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Text types get `; charset=utf-8` and include expansion.
fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || matches!(content_type, "application/json" | "image/svg+xml")
}

/// A status with the same header set and an empty body: the original's 404
/// (`Content-length: 0`), and the shape of every other fixed answer ours adds.
/// Kept for callers of the document API; [`http::empty`] builds it.
pub fn empty_response(status: &str) -> Bytes {
    http::empty(status)
}
