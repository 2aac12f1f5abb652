//! The document server's behaviour through [`Documents::respond`]: headers,
//! path rules, includes and the cache, on real files in a temporary root.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::include::{find, parse_include};
use super::path::read_bounded;
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
    let end = find(bytes, b"\r\n\r\n").expect("header end");
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
    assert!(docs.lock().contains(&last));
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
