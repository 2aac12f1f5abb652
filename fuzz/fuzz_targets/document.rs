//! The static documents (meteord/src/document.rs): path rules, directory
//! index, `<!--#include virtual="…"-->` expansion, the answer's header
//! set, and the cache, through `Documents::respond`.
//!
//! Input: the first line is the URL path asked for; the rest becomes the
//! content of `page.html` in the document root (rewritten every run, so
//! include directives of any shape get expanded). The root also holds
//! `index.html` (which includes `inc.txt`), `inc.txt`, `sub/index.html`,
//! and two symlinks that lead out of it: `out.txt -> ../secret.txt` and
//! `up -> ..`.
//!
//! Holds for every input: no panic; the answer is 200, 404 or 500 with
//! the matching status line, the fixed header set and a Content-length
//! equal to the body's length; a path with a byte outside
//! `[A-Za-z0-9._/-]` or with `..` is 404; nothing outside the root is ever
//! served (the secret's bytes never appear unless the input wrote them);
//! a `page.html` without an include directive is served as it is.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meteord::document::Documents;

const SECRET: &[u8] = b"SECRET-OUTSIDE-THE-ROOT";
const INCLUDE_OPEN: &[u8] = b"<!--#include";

struct Site {
    root: PathBuf,
    documents: Documents,
}

/// A fresh tree per process (the fuzzer may run several at once).
fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let base =
            std::env::temp_dir().join(format!("meteord-fuzz-document-{}", std::process::id()));
        let root = base.join("root");
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(root.join("sub")).expect("create the document tree");
        std::fs::write(base.join("secret.txt"), SECRET).expect("write secret");
        std::fs::write(root.join("inc.txt"), "INCLUDED").expect("write inc.txt");
        std::fs::write(
            root.join("index.html"),
            "top <!--#include virtual=\"inc.txt\"--> end",
        )
        .expect("write index.html");
        std::fs::write(root.join("sub/index.html"), "sub index").expect("write sub/index.html");
        std::fs::write(root.join("page.html"), "").expect("write page.html");
        std::os::unix::fs::symlink("../secret.txt", root.join("out.txt")).expect("symlink out.txt");
        std::os::unix::fs::symlink("..", root.join("up")).expect("symlink up");
        Site {
            documents: Documents::new(root.clone(), "index.html".to_owned()),
            root,
        }
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let (path, content) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let site = site();
    if std::fs::write(site.root.join("page.html"), content).is_err() {
        return;
    }

    let answer = site.documents.respond(path);
    let bytes = &answer.bytes[..];
    let status_line: &[u8] = match answer.status {
        200 => b"HTTP/1.1 200 OK\r\n",
        404 => b"HTTP/1.1 404 Not Found\r\n",
        500 => b"HTTP/1.1 500 Internal Server Error\r\n",
        other => panic!("status {other}"),
    };
    assert!(bytes.starts_with(status_line));
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head that ends")
        + 4;
    let (head, body) = bytes.split_at(head_end);
    let head = std::str::from_utf8(head).expect("an ASCII head");
    assert!(head.contains("\r\nServer: meteord\r\n"));
    assert!(head.contains(&format!("\r\nContent-length: {}\r\n", body.len())));

    let legal = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'));
    if !legal || path.contains("..") {
        assert_eq!(answer.status, 404, "path {path:?}");
    }
    if answer.status != 200 {
        assert!(body.is_empty());
    }
    if !contains(content, SECRET) {
        assert!(
            !contains(body, SECRET),
            "served from outside the root: {path:?}"
        );
    }
    let names_page = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .eq(["page.html"]);
    if names_page && !contains(content, INCLUDE_OPEN) {
        assert_eq!(answer.status, 200);
        assert_eq!(body, content);
    }
});
