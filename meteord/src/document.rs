//! Static documents from `SubscriberDocumentRoot` (how `meteor.js` and
//! `stream.html` reach the browser from the push host).
//!
//! Owns: mapping a URL path to a file inside the root (and nothing outside
//! it), `DirectoryIndex`, `<!--#include virtual="…"-->` expansion, the
//! Content-Type table, the exact response header set, and an in-memory cache
//! that never serves a file that changed on disk.
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
//! The original's fixed header set, `Server: meteord` and `Content-length`
//! (lower-case l) included; a 404 has an empty body (`Content-length: 0`).
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

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

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

/// The opening of an include directive.
const INCLUDE_OPEN: &[u8] = b"<!--#include";
/// The closing of any SSI directive.
const INCLUDE_CLOSE: &[u8] = b"-->";

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

/// Identity and version of a file as far as the cache cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
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
struct Dep {
    url_path: String,
    target: Option<(PathBuf, Stamp)>,
}

/// A resolved document: the canonical file and what it looked like.
#[derive(Debug)]
struct Resolved {
    file: PathBuf,
    stamp: Stamp,
    /// Name used for the Content-Type (the requested name, or the index).
    name: String,
}

#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, CacheEntry>,
    total_bytes: usize,
    /// Logical clock for least-recently-used eviction.
    tick: u64,
}

#[derive(Debug)]
struct CacheEntry {
    response: Bytes,
    deps: Arc<[Dep]>,
    last_used: u64,
}

impl Cache {
    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.total_bytes -= old.response.len();
        }
    }

    fn insert(&mut self, key: String, response: Bytes, deps: Vec<Dep>) {
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
                let response = build_response("200 OK", content_type, &body);
                let now = SystemTime::now();
                let settled = deps
                    .iter()
                    .all(|dep| dep.target.as_ref().is_none_or(|(_, s)| !s.is_racy(now)));
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
                    bytes: empty_response("404 Not Found"),
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
                    bytes: empty_response("500 Internal Server Error"),
                }
            }
            Err(DocError::Io(err)) => {
                tracing::warn!(path = url_path, error = %err, "document read failed");
                DocumentResponse {
                    status: 404,
                    bytes: empty_response("404 Not Found"),
                }
            }
        }
    }

    /// Drop the cache (SIGHUP / SIGUSR2).
    pub fn clear_cache(&self) {
        let mut cache = self.lock();
        cache.entries.clear();
        cache.total_bytes = 0;
    }

    /// Number of cached documents (for tests and statistics).
    pub fn cached_count(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        // The cache holds no invariant a panicking holder could break
        // half-way that matters for correctness (every hit is re-validated),
        // so a poisoned lock is simply taken over.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached response for `url_path` if every file it was built from
    /// is unchanged; a stale entry is dropped.
    fn cached(&self, url_path: &str) -> Option<Bytes> {
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

    /// Map `url_path` to a regular file inside the canonical `root`.
    fn resolve(&self, root: &Path, url_path: &str) -> Result<Resolved, DocError> {
        if !url_path.bytes().all(is_path_byte) {
            return Err(DocError::NotFound("character outside [A-Za-z0-9._/-]"));
        }
        if url_path.contains("..") {
            return Err(DocError::NotFound("'..' in the path"));
        }
        let mut joined = root.to_path_buf();
        let mut name = String::new();
        for segment in url_path.split('/') {
            match segment {
                "" | "." => {}
                segment => {
                    joined.push(segment);
                    name = segment.to_owned();
                }
            }
        }
        let wants_directory = name.is_empty();
        if wants_directory {
            joined.push(&self.directory_index);
            name.clone_from(&self.directory_index);
        }
        let (mut file, mut meta) = canonical_inside(root, &joined)?;
        if meta.is_dir() && !wants_directory {
            joined = file.join(&self.directory_index);
            name.clone_from(&self.directory_index);
            (file, meta) = canonical_inside(root, &joined)?;
        }
        if !meta.is_file() {
            return Err(DocError::NotFound("not a regular file"));
        }
        Ok(Resolved {
            file,
            stamp: Stamp::of(&meta),
            name,
        })
    }

    /// The body of `url_path`, its includes expanded if `expand`, and its
    /// Content-Type. Every file consulted is appended to `deps`; `budget` is
    /// what may still be added to the body.
    fn render(
        &self,
        url_path: &str,
        expand: bool,
        deps: &mut Vec<Dep>,
        budget: &mut usize,
    ) -> Result<(Vec<u8>, &'static str), DocError> {
        let root = canonical_root(&self.root)?;
        let resolved = match self.resolve(&root, url_path) {
            Ok(resolved) => resolved,
            Err(err) => {
                deps.push(Dep {
                    url_path: url_path.to_owned(),
                    target: None,
                });
                return Err(err);
            }
        };
        let (raw, stamp) = read_bounded(&resolved.file, *budget)?;
        *budget -= raw.len();
        deps.push(Dep {
            url_path: url_path.to_owned(),
            target: Some((resolved.file, stamp)),
        });
        let content_type = content_type(&resolved.name);
        if !expand || !is_text(content_type) || memchr(&raw, INCLUDE_OPEN).is_none() {
            return Ok((raw, content_type));
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut rest = &raw[..];
        while let Some(at) = memchr(rest, INCLUDE_OPEN) {
            out.extend_from_slice(&rest[..at]);
            let Some((target, used)) = parse_include(&rest[at..]) else {
                // Not a well-formed include: keep the text as it is.
                out.extend_from_slice(INCLUDE_OPEN);
                rest = &rest[at + INCLUDE_OPEN.len()..];
                continue;
            };
            rest = &rest[at + used..];
            // The directive's own bytes were counted in the budget; give
            // them back before adding the included text.
            *budget += used;
            match self.render(target, false, deps, budget) {
                Ok((included, _)) => out.extend_from_slice(&included),
                Err(DocError::NotFound(why)) => {
                    tracing::warn!(
                        path = url_path,
                        include = target,
                        reason = why,
                        "include not found, left empty"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        out.extend_from_slice(rest);
        Ok((out, content_type))
    }
}

/// Bytes allowed in a URL path.
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-')
}

/// The root, canonicalized now (it may have been created or moved since
/// the daemon started). The file system's root serves nothing, as in the
/// original (`SubscriberDocumentRoot /` means no documents).
fn canonical_root(root: &Path) -> Result<PathBuf, DocError> {
    // Empty = no document root configured: nothing is served (never the
    // current directory, which an empty path would otherwise name).
    if root.as_os_str().is_empty() {
        return Err(DocError::NotFound("no document root"));
    }
    let root = fs::canonicalize(root).map_err(|_| DocError::NotFound("document root missing"))?;
    if root.parent().is_none() {
        return Err(DocError::NotFound("the document root is /"));
    }
    Ok(root)
}

/// Canonicalize `path` and require it inside `root`; also return its metadata.
fn canonical_inside(root: &Path, path: &Path) -> Result<(PathBuf, Metadata), DocError> {
    let file = fs::canonicalize(path).map_err(|_| DocError::NotFound("no such file"))?;
    if !file.starts_with(root) {
        tracing::warn!(path = %path.display(), target = %file.display(), "symlink points outside the document root");
        return Err(DocError::NotFound("outside the document root"));
    }
    let meta = fs::metadata(&file).map_err(|_| DocError::NotFound("no such file"))?;
    Ok((file, meta))
}

/// Read at most `limit` bytes of `file`, with the stamp taken *before*
/// reading (a write racing with the read then shows up as a changed stamp on
/// the next request rather than as stale content).
fn read_bounded(file: &Path, limit: usize) -> Result<(Vec<u8>, Stamp), DocError> {
    // Non-blocking open and a type check on the open handle: if the file was
    // swapped for a FIFO since it was resolved, opening it must not hang a
    // worker thread. (O_NONBLOCK has no effect on reading regular files.)
    let mut handle = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(file)
        .map_err(|err| match err.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
                DocError::NotFound("cannot open file")
            }
            _ => DocError::Io(err),
        })?;
    let meta = handle.metadata().map_err(DocError::Io)?;
    if !meta.is_file() {
        return Err(DocError::NotFound("not a regular file"));
    }
    if meta.size() > limit as u64 {
        return Err(DocError::TooLarge);
    }
    let mut raw = Vec::with_capacity(usize::try_from(meta.size()).unwrap_or(0));
    // One byte past the limit tells "grew while reading" from "fits".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    (&mut handle)
        .take(cap)
        .read_to_end(&mut raw)
        .map_err(DocError::Io)?;
    if raw.len() > limit {
        return Err(DocError::TooLarge);
    }
    Ok((raw, Stamp::of(&meta)))
}

/// Position of `needle` in `haystack`.
fn memchr(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Parse `<!--#include virtual="PATH" -->` at the start of `text`: the
/// path and the directive's length in bytes.
fn parse_include(text: &[u8]) -> Option<(&str, usize)> {
    let mut at = INCLUDE_OPEN.len();
    let skip_spaces = |at: &mut usize| {
        while text.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
    };
    let before = at;
    skip_spaces(&mut at);
    if at == before {
        return None;
    }
    text.get(at..)?.strip_prefix(b"virtual")?;
    at += b"virtual".len();
    skip_spaces(&mut at);
    let rest = text.get(at..)?.strip_prefix(b"=\"")?;
    at += b"=\"".len();
    let len = rest
        .iter()
        .position(|&b| b == b'"')
        .filter(|&len| len > 0)?;
    let target = std::str::from_utf8(&rest[..len]).ok()?;
    at += len + 1;
    skip_spaces(&mut at);
    text.get(at..)?.strip_prefix(INCLUDE_CLOSE)?;
    Some((target, at + INCLUDE_CLOSE.len()))
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

/// Status line and the fixed header set, in the original's order.
fn build_response(status: &str, content_type: &str, body: &[u8]) -> Bytes {
    let charset = if is_text(content_type) {
        "; charset=utf-8"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\n\
         Server: {server}\r\n\
         Content-Type: {content_type}{charset}\r\n\
         Pragma: no-cache\r\n\
         Cache-Control: no-cache, no-store, must-revalidate\r\n\
         Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\
         Content-length: {len}\r\n\
         \r\n",
        server = crate::SERVER_NAME,
        len = body.len(),
    );
    let mut bytes = Vec::with_capacity(head.len() + body.len());
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(body);
    Bytes::from(bytes)
}

/// A status with the same header set and an empty body: the original's 404
/// (`Content-length: 0`), and the shape of every other fixed answer ours adds.
pub fn empty_response(status: &str) -> Bytes {
    build_response(status, "text/html", b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::TempDir;

    /// Write `content` to `dir/rel` with an mtime an hour ago, so the
    /// document is old enough to be cached.
    fn write_old(dir: &Path, rel: &str, content: &str) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, content).unwrap();
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
    }

    /// Split a response into (head, body).
    fn split(response: &DocumentResponse) -> (String, Vec<u8>) {
        let bytes = &response.bytes[..];
        let end = memchr(bytes, b"\r\n\r\n").expect("header end");
        (
            String::from_utf8(bytes[..end + 4].to_vec()).unwrap(),
            bytes[end + 4..].to_vec(),
        )
    }

    fn body_text(response: &DocumentResponse) -> String {
        String::from_utf8(split(response).1).unwrap()
    }

    fn docs(dir: &TempDir) -> Documents {
        Documents::new(dir.0.clone(), "index.html".to_owned())
    }

    #[test]
    fn serves_file_with_exact_headers() {
        let dir = TempDir::new("headers");
        write_old(&dir.0, "meteor.js", "var x = 1;\n");
        let response = docs(&dir).respond("/meteor.js");
        assert_eq!(response.status, 200);
        let expected = format!(
            "HTTP/1.1 200 OK\r\n\
             Server: {}\r\n\
             Content-Type: text/javascript; charset=utf-8\r\n\
             Pragma: no-cache\r\n\
             Cache-Control: no-cache, no-store, must-revalidate\r\n\
             Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\
             Content-length: 11\r\n\
             \r\n\
             var x = 1;\n",
            crate::SERVER_NAME
        );
        assert_eq!(&response.bytes[..], expected.as_bytes());
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a.HTML"), "text/html");
        assert_eq!(content_type("a.htm"), "text/html");
        assert_eq!(content_type("a.shtml"), "text/html");
        assert_eq!(content_type("a.css"), "text/css");
        assert_eq!(content_type("a.json"), "application/json");
        assert_eq!(content_type("a.txt"), "text/plain");
        assert_eq!(content_type("a.svg"), "image/svg+xml");
        assert_eq!(content_type("a.png"), "image/png");
        assert_eq!(content_type("a.jpg"), "image/jpeg");
        assert_eq!(content_type("a.ico"), "image/x-icon");
        assert_eq!(content_type("Makefile"), "application/octet-stream");
        assert_eq!(content_type("a.tar.gz"), "application/octet-stream");
    }

    #[test]
    fn binary_types_have_no_charset() {
        let dir = TempDir::new("binary");
        write_old(&dir.0, "logo.png", "\u{89}PNG");
        let (head, _) = split(&docs(&dir).respond("/logo.png"));
        assert!(head.contains("Content-Type: image/png\r\n"), "{head}");
    }

    #[test]
    fn directory_index_for_slash_and_directories() {
        let dir = TempDir::new("index");
        write_old(&dir.0, "index.html", "root index");
        write_old(&dir.0, "sub/index.html", "sub index");
        let docs = docs(&dir);
        assert_eq!(body_text(&docs.respond("/")), "root index");
        assert_eq!(body_text(&docs.respond("")), "root index");
        assert_eq!(body_text(&docs.respond("/sub/")), "sub index");
        assert_eq!(body_text(&docs.respond("/sub")), "sub index");
        assert_eq!(body_text(&docs.respond("//sub//")), "sub index");
        let (head, _) = split(&docs.respond("/sub"));
        assert!(head.contains("Content-Type: text/html; charset=utf-8\r\n"));
    }

    #[test]
    fn traversal_attempts_are_404() {
        let outer = TempDir::new("traversal");
        let root = outer.0.join("root");
        write_old(&outer.0, "secret.txt", "secret");
        write_old(&root, "ok.txt", "ok");
        std::os::unix::fs::symlink(outer.0.join("secret.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(&outer.0, root.join("updir")).unwrap();
        let docs = Documents::new(root.clone(), "index.html".to_owned());
        assert_eq!(docs.respond("/ok.txt").status, 200);
        assert_eq!(docs.respond("/ok.txt/").status, 200, "trailing slashes go");
        for path in [
            "/../secret.txt",
            "/a/../../secret.txt",
            "..",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/link.txt",
            "/updir/secret.txt",
            "/updir/",
            "/ok.txt?x=1",
            "/ok.txt\0",
            "/ok .txt",
            "\\..\\secret.txt",
            "/ok..txt",
            "/missing.txt",
            "/", // no index.html in root
        ] {
            let response = docs.respond(path);
            assert_eq!(response.status, 404, "{path:?}");
            assert!(!body_text(&response).contains("secret"), "{path:?}");
        }
        // An absolute file-system path is taken relative to the root.
        let absolute = format!("{}/secret.txt", outer.0.display());
        assert_eq!(docs.respond(&absolute).status, 404);
    }

    #[test]
    fn symlink_inside_root_is_served() {
        let dir = TempDir::new("innerlink");
        write_old(&dir.0, "real.js", "real");
        std::os::unix::fs::symlink(dir.0.join("real.js"), dir.0.join("alias.js")).unwrap();
        assert_eq!(body_text(&docs(&dir).respond("/alias.js")), "real");
    }

    #[test]
    fn fifo_and_directory_as_index_are_404_without_blocking() {
        let dir = TempDir::new("fifo");
        nix::unistd::mkfifo(&dir.0.join("pipe.txt"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        fs::create_dir_all(dir.0.join("d/index.html")).unwrap();
        let docs = docs(&dir);
        assert_eq!(docs.respond("/pipe.txt").status, 404);
        assert_eq!(docs.respond("/d/").status, 404);
        // read_bounded itself refuses a FIFO (the race after resolving).
        assert!(matches!(
            read_bounded(&dir.0.join("pipe.txt"), MAX_BODY),
            Err(DocError::NotFound(_))
        ));
    }

    #[test]
    fn not_found_is_the_originals_empty_answer() {
        let dir = TempDir::new("notfound");
        let response = docs(&dir).respond("/nope.html");
        assert_eq!(response.status, 404);
        assert_eq!(
            &response.bytes[..],
            b"HTTP/1.1 404 Not Found\r\n\
              Server: meteord\r\n\
              Content-Type: text/html; charset=utf-8\r\n\
              Pragma: no-cache\r\n\
              Cache-Control: no-cache, no-store, must-revalidate\r\n\
              Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\
              Content-length: 0\r\n\
              \r\n"
        );
    }

    #[test]
    fn the_file_system_root_serves_nothing() {
        let docs = Documents::new(PathBuf::from("/"), "index.html".to_owned());
        assert_eq!(docs.respond("/etc/passwd").status, 404);
        let docs = Documents::new(PathBuf::from("/tmp/.."), "index.html".to_owned());
        assert_eq!(docs.respond("/etc/passwd").status, 404);
    }

    #[test]
    fn missing_root_is_404() {
        let dir = TempDir::new("noroot");
        let docs = Documents::new(dir.0.join("absent"), "index.html".to_owned());
        assert_eq!(docs.respond("/x.html").status, 404);
    }

    #[test]
    fn includes_are_taken_from_the_root_and_not_nested() {
        let dir = TempDir::new("include");
        write_old(
            &dir.0,
            "page.html",
            "A<!--#include virtual=\"/parts/head.html\"-->B<!--#include virtual=\"/gone.html\" -->C",
        );
        write_old(
            &dir.0,
            "parts/head.html",
            "[<!--#include virtual=\"inner.html\"-->]",
        );
        write_old(
            &dir.0,
            "parts/rel.html",
            "<!--#include virtual=\"inner.html\"-->",
        );
        write_old(&dir.0, "parts/inner.html", "parts inner");
        write_old(&dir.0, "inner.html", "root inner");
        let docs = docs(&dir);
        let response = docs.respond("/page.html");
        assert_eq!(
            body_text(&response),
            "A[<!--#include virtual=\"inner.html\"-->]BC"
        );
        let (head, _) = split(&response);
        assert!(head.contains("Content-length: 41\r\n"), "{head}");
        assert_eq!(body_text(&docs.respond("/parts/rel.html")), "root inner");
    }

    #[test]
    fn malformed_include_is_kept_verbatim() {
        let dir = TempDir::new("badinclude");
        let text =
            "x<!--#include file=\"a\"--> <!--#includevirtual=\"a\"--> <!--#include virtual=\"a\"";
        write_old(&dir.0, "p.html", text);
        write_old(&dir.0, "a", "A");
        assert_eq!(body_text(&docs(&dir).respond("/p.html")), text);
    }

    #[test]
    fn a_document_including_itself_is_expanded_once() {
        let dir = TempDir::new("cycle");
        write_old(
            &dir.0,
            "loop.html",
            "x<!--#include virtual=\"/loop.html\"-->",
        );
        let response = docs(&dir).respond("/loop.html");
        assert_eq!(response.status, 200);
        assert_eq!(
            body_text(&response),
            "xx<!--#include virtual=\"/loop.html\"-->"
        );
    }

    #[test]
    fn include_outside_root_or_bad_path_is_empty() {
        let outer = TempDir::new("includeout");
        let root = outer.0.join("root");
        write_old(&outer.0, "secret.txt", "secret");
        write_old(
            &root,
            "p.html",
            "<!--#include virtual=\"../secret.txt\"-->|<!--#include virtual=\"/%2e%2e/secret.txt\"-->",
        );
        let docs = Documents::new(root, "index.html".to_owned());
        assert_eq!(body_text(&docs.respond("/p.html")), "|");
    }

    #[test]
    fn binary_files_are_not_expanded() {
        let dir = TempDir::new("noexpand");
        let text = "<!--#include virtual=\"/a.txt\"-->";
        write_old(&dir.0, "blob.bin", text);
        write_old(&dir.0, "a.txt", "A");
        assert_eq!(body_text(&docs(&dir).respond("/blob.bin")), text);
    }

    #[test]
    fn cache_hits_and_never_serves_stale_content() {
        let dir = TempDir::new("cache");
        write_old(&dir.0, "a.js", "one");
        let docs = docs(&dir);
        assert_eq!(body_text(&docs.respond("/a.js")), "one");
        assert_eq!(docs.cached_count(), 1);
        assert_eq!(body_text(&docs.respond("/a.js")), "one");
        assert_eq!(docs.cached_count(), 1);
        // Same size and again an hour-old mtime: the stamp still differs
        // (mtime nanoseconds, ctime), so the change is seen.
        write_old(&dir.0, "a.js", "two");
        assert_eq!(body_text(&docs.respond("/a.js")), "two");
        // Replaced by a new file (new inode).
        let tmp = dir.0.join("a.js.new");
        fs::write(&tmp, "three").unwrap();
        fs::rename(&tmp, dir.0.join("a.js")).unwrap();
        assert_eq!(body_text(&docs.respond("/a.js")), "three");
        // A freshly written file is not cached (racy window).
        assert_eq!(docs.cached_count(), 0);
        fs::remove_file(dir.0.join("a.js")).unwrap();
        assert_eq!(docs.respond("/a.js").status, 404);
    }

    #[test]
    fn cache_sees_changed_and_created_includes() {
        let dir = TempDir::new("cacheinc");
        write_old(
            &dir.0,
            "p.html",
            "<!--#include virtual=\"/a.html\"-->+<!--#include virtual=\"/b.html\"-->",
        );
        write_old(&dir.0, "a.html", "a1");
        let docs = docs(&dir);
        assert_eq!(body_text(&docs.respond("/p.html")), "a1+");
        assert_eq!(docs.cached_count(), 1);
        write_old(&dir.0, "a.html", "a2");
        assert_eq!(body_text(&docs.respond("/p.html")), "a2+");
        write_old(&dir.0, "b.html", "b");
        assert_eq!(body_text(&docs.respond("/p.html")), "a2+b");
    }

    #[test]
    fn cache_sees_retargeted_symlink() {
        let dir = TempDir::new("cachelink");
        write_old(&dir.0, "v1.js", "v1");
        write_old(&dir.0, "v2.js", "v2");
        std::os::unix::fs::symlink(dir.0.join("v1.js"), dir.0.join("cur.js")).unwrap();
        let docs = docs(&dir);
        assert_eq!(body_text(&docs.respond("/cur.js")), "v1");
        assert_eq!(docs.cached_count(), 1);
        fs::remove_file(dir.0.join("cur.js")).unwrap();
        std::os::unix::fs::symlink(dir.0.join("v2.js"), dir.0.join("cur.js")).unwrap();
        assert_eq!(body_text(&docs.respond("/cur.js")), "v2");
    }

    #[test]
    fn clear_cache_empties_it() {
        let dir = TempDir::new("clear");
        write_old(&dir.0, "a.js", "a");
        let docs = docs(&dir);
        docs.respond("/a.js");
        assert_eq!(docs.cached_count(), 1);
        docs.clear_cache();
        assert_eq!(docs.cached_count(), 0);
        assert_eq!(body_text(&docs.respond("/a.js")), "a");
    }

    #[test]
    fn cache_is_bounded_in_entries() {
        let dir = TempDir::new("bounded");
        let docs = docs(&dir);
        for i in 0..MAX_CACHE_ENTRIES + 10 {
            write_old(&dir.0, &format!("f{i}.txt"), "x");
            assert_eq!(docs.respond(&format!("/f{i}.txt")).status, 200);
        }
        assert_eq!(docs.cached_count(), MAX_CACHE_ENTRIES);
        // The most recent one survived eviction.
        let last = format!("/f{}.txt", MAX_CACHE_ENTRIES + 9);
        assert!(docs.lock().entries.contains_key(&last));
    }

    #[test]
    fn large_files_are_served_but_not_cached() {
        let dir = TempDir::new("large");
        write_old(&dir.0, "big.txt", &"y".repeat(MAX_CACHED_BODY + 1));
        let docs = docs(&dir);
        let response = docs.respond("/big.txt");
        assert_eq!(response.status, 200);
        assert_eq!(split(&response).1.len(), MAX_CACHED_BODY + 1);
        assert_eq!(docs.cached_count(), 0);
    }

    #[test]
    fn include_fan_out_is_bounded() {
        let dir = TempDir::new("blowup");
        // 17 copies of 1 MiB are over MAX_BODY (16 MiB); 15 fit.
        write_old(&dir.0, "big.txt", &"z".repeat(1024 * 1024));
        let include = "<!--#include virtual=\"/big.txt\"-->";
        write_old(&dir.0, "many.txt", &include.repeat(17));
        write_old(&dir.0, "fewer.txt", &include.repeat(15));
        let docs = docs(&dir);
        let too_large = docs.respond("/many.txt");
        assert_eq!(too_large.status, 500);
        assert!(split(&too_large).0.contains("Content-length: 0\r\n"));
        let response = docs.respond("/fewer.txt");
        assert_eq!(response.status, 200);
        assert_eq!(split(&response).1.len(), 15 * 1024 * 1024);
    }

    #[test]
    fn include_parser() {
        assert_eq!(
            parse_include(b"<!--#include virtual=\"/a.html\"-->rest"),
            Some(("/a.html", 33))
        );
        assert_eq!(
            parse_include(b"<!--#include   virtual=\"a\"  -->"),
            Some(("a", 31))
        );
        assert_eq!(parse_include(b"<!--#include virtual=\"a\""), None);
        assert_eq!(parse_include(b"<!--#include virtual=a-->"), None);
        assert_eq!(
            parse_include(b"<!--#include virtual =\"a\"-->"),
            Some(("a", 28))
        );
        assert_eq!(parse_include(b"<!--#include virtual= \"a\"-->"), None);
        assert_eq!(parse_include(b"<!--#include virtual=\"\"-->"), None);
    }
}
