//! A daemon with its metrics listener on a reserved loopback port, and a
//! scrape of `GET /metrics` parsed by a real Prometheus text-format parser
//! (the `prometheus-parse` crate).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::process::ReservedPort;
use super::{Daemon, WAIT};

/// A daemon serving metrics, and where.
pub struct WithMetrics {
    pub daemon: Daemon,
    pub metrics: SocketAddr,
    _port: ReservedPort,
}

impl WithMetrics {
    /// Start with the built-in configuration plus `extra`, metrics on.
    pub fn start(name: &str, extra: &[&str]) -> WithMetrics {
        let port = ReservedPort::new();
        let mut args = vec!["-MetricsIP", "127.0.0.1", "-MetricsPort"];
        let arg = port.arg();
        args.push(&arg);
        args.extend_from_slice(extra);
        let daemon = Daemon::start(name, &args);
        WithMetrics {
            daemon,
            metrics: port.addr(),
            _port: port,
        }
    }

    /// One scrape: the raw HTTP answer.
    pub fn raw(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect_timeout(&self.metrics, WAIT).expect("connect metrics");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(request).unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).expect("metrics answer");
        String::from_utf8(got).expect("UTF-8 metrics")
    }

    /// One scrape parsed: the body's samples.
    pub fn scrape(&self) -> Scrape {
        let answer = self.raw(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        let lines = body.lines().map(|l| Ok(l.to_owned()));
        let parsed = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
        Scrape {
            parsed,
            text: body.to_owned(),
        }
    }
}

/// A parsed scrape.
pub struct Scrape {
    pub parsed: prometheus_parse::Scrape,
    pub text: String,
}

impl Scrape {
    /// The value of `name` with `labels` (all of them), if present.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.parsed
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    }

    /// Like [`Scrape::value`], but it must be there.
    pub fn must(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{}", self.text)) as u64
    }

    /// Every family's declared type.
    pub fn types(&self) -> HashMap<String, String> {
        let mut types = HashMap::new();
        for line in self.text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                types.insert(name.to_owned(), kind.to_owned());
            }
        }
        types
    }
}
