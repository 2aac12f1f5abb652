//! The controller client against the fake meteord controller of
//! `support/`: one kept connection, a reconnect only when the line cannot
//! have left this process, never a resend once it may have been published,
//! and the HTTP status each failure maps to.

mod support;

use std::time::Duration;

use fcgi_chat::controller::{Controller, SendError};
use support::{Behaviour, FakeController, ReservedPort};

const T: Duration = Duration::from_millis(500);

#[tokio::test]
async fn reuses_one_connection() {
    let f = FakeController::start(Behaviour::Ok);
    let c = Controller::new(&f.addr, T);
    assert_eq!(c.send("ADDMESSAGE chat a\n").await, Ok(1));
    assert_eq!(c.send("ADDMESSAGE chat b\n").await, Ok(2));
    assert_eq!(c.send("ADDMESSAGE chat c\n").await, Ok(3));
    assert_eq!(f.connections(), 1);
}

#[tokio::test]
async fn reconnects_when_the_daemon_closed_the_kept_connection() {
    let f = FakeController::start(Behaviour::OkThenClose);
    let c = Controller::new(&f.addr, T);
    assert_eq!(c.send("ADDMESSAGE chat a\n").await, Ok(1));
    // Let the close reach us so the probe sees it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(c.send("ADDMESSAGE chat b\n").await, Ok(2));
    assert_eq!(f.connections(), 2);
    assert_eq!(f.lines().len(), 2, "each line exactly once");
}

#[tokio::test]
async fn lost_answer_is_not_resent() {
    let f = FakeController::start(Behaviour::CloseAfterLine);
    let c = Controller::new(&f.addr, T);
    let e = c.send("ADDMESSAGE chat a\n").await.unwrap_err();
    assert!(matches!(e, SendError::Unconfirmed(_)), "{e:?}");
    assert_eq!(e.status(), 503);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(f.lines().len(), 1);
    assert_eq!(f.connections(), 1);
}

#[tokio::test]
async fn err_reply_is_502_and_connection_is_kept() {
    let f = FakeController::start(Behaviour::Err);
    let c = Controller::new(&f.addr, T);
    for _ in 0..2 {
        let e = c.send("ADDMESSAGE chat a\n").await.unwrap_err();
        assert_eq!(e, SendError::Rejected("Invalid command syntax".into()));
        assert_eq!(e.status(), 502);
    }
    assert_eq!(f.connections(), 1);
}

#[tokio::test]
async fn garbage_reply_is_502() {
    let f = FakeController::start(Behaviour::Garbage);
    let c = Controller::new(&f.addr, T);
    let e = c.send("ADDMESSAGE chat a\n").await.unwrap_err();
    assert!(matches!(e, SendError::BadReply(_)), "{e:?}");
    assert_eq!(e.status(), 502);
}

#[tokio::test]
async fn silent_daemon_times_out_with_503() {
    let f = FakeController::start(Behaviour::Silent);
    let c = Controller::new(&f.addr, Duration::from_millis(200));
    let started = std::time::Instant::now();
    let e = c.send("ADDMESSAGE chat a\n").await.unwrap_err();
    assert!(matches!(e, SendError::Unconfirmed(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn refused_is_503_unavailable() {
    // Bound, never listening: the connection is refused.
    let port = ReservedPort::new();
    let c = Controller::new(&port.addr, T);
    let e = c.send("ADDMESSAGE chat a\n").await.unwrap_err();
    assert!(matches!(e, SendError::Unavailable(_)), "{e:?}");
    assert!(e.to_string().contains("cannot connect"), "{e}");
    assert_eq!(e.status(), 503);
}
