//! Process-level tests of the development HTTP mode (`--http`): static
//! files from a temporary chat root, the generated `/config.js`, the chat
//! POST through the same handler as FastCGI, and refused path traversal.
//! Raw HTTP over TCP so nothing normalises the request paths for us.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::*;

struct Dev {
    addr: String,
    _proc: Proc,
    _root: TempDir,
}

fn dev_server(controller: &str) -> Dev {
    let root = TempDir::new("root");
    std::fs::write(
        root.path().join("index.html"),
        "<!doctype html><title>chat</title>\n",
    )
    .unwrap();
    std::fs::create_dir(root.path().join("css")).unwrap();
    std::fs::write(root.path().join("css/chat.css"), "body{margin:0}\n").unwrap();
    std::fs::write(root.path().join(".secret"), "hidden").unwrap();
    let root_arg = root.path().display().to_string();
    let (proc, addr) = spawn_fcgi_chat_on_port_0(
        &[
            "--http",
            "127.0.0.1:0",
            "--chat-root",
            &root_arg,
            "--push-url",
            "http://127.0.0.1:4670",
            "--controller",
            controller,
        ],
        &[],
    );
    Dev {
        addr,
        _proc: proc,
        _root: root,
    }
}

struct HttpResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn raw(addr: &str, request: &[u8]) -> HttpResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8(out[..split].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    HttpResponse {
        status,
        head,
        body: out[split + 4..].to_vec(),
    }
}

fn get(addr: &str, path: &str) -> HttpResponse {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

fn post(addr: &str, content_type: &str, body: &str) -> HttpResponse {
    raw(
        addr,
        format!(
            "POST /chat.php HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

#[test]
fn serves_page_config_and_chat_post() {
    let ctl = FakeController::start(Behaviour::Ok);
    let dev = dev_server(&ctl.addr);

    let r = get(&dev.addr, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "<!doctype html><title>chat</title>\n");
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(get(&dev.addr, "/index.html?x=1").text(), r.text());

    let r = get(&dev.addr, "/css/chat.css");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("text/css; charset=utf-8")
    );

    let r = get(&dev.addr, "/config.js");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "window.CHAT_CONFIG = {\"pushBase\": \"http://127.0.0.1:4670\", \"postUrl\": \"chat.php\"};\n"
    );
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );

    let r = post(&dev.addr, FORM, "user=Ann&message=Gr%C3%BC%C3%9Fe");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"ok":true,"id":1}"#);
    assert_eq!(r.header("Cache-Control").as_deref(), Some("no-store"));
    let line = &ctl.lines()[0];
    assert!(line.starts_with("ADDMESSAGE chat <strong>Ann "), "{line}");
    assert!(line.ends_with("</strong> Gr&#252;&#223;e\n"), "{line}");

    let r = get(&dev.addr, "/chat.php");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow").as_deref(), Some("POST"));
    let r = post(&dev.addr, FORM, "message=");
    assert_eq!(r.status, 400);
    let r = post(&dev.addr, "text/plain", "message=x");
    assert_eq!(r.status, 415);
    assert_eq!(ctl.lines().len(), 1);
}

#[test]
fn path_traversal_and_hidden_files_are_refused() {
    let ctl = FakeController::start(Behaviour::Ok);
    let dev = dev_server(&ctl.addr);
    for path in [
        "/../Cargo.toml",
        "/css/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/.secret",
        "//etc/passwd",
        "/css/..%2f..%2fetc%2fpasswd",
        "/nope.html",
        "/css\\..\\x",
    ] {
        let r = get(&dev.addr, path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("root:"), "{path}");
    }
    let r = raw(&dev.addr, b"DELETE /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 405);
}

#[test]
fn oversized_or_unframed_posts_are_refused_early() {
    let ctl = FakeController::start(Behaviour::Ok);
    let dev = dev_server(&ctl.addr);
    // Content-Length far over the cap: answered without sending the body.
    let r = raw(
        &dev.addr,
        b"POST /chat.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n",
    );
    assert_eq!(r.status, 413);
    assert!(r.text().contains("too large"));
    let r = raw(
        &dev.addr,
        b"POST /chat.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 411);
    let r = raw(&dev.addr, b"garbage\r\n\r\n");
    assert_eq!(r.status, 400);
    assert!(ctl.lines().is_empty());
}
