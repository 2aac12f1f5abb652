//! Tests of the channel registry: fan-out, lifetime, publish and append.

use super::*;
use crate::ids::Ids;

fn waiter() -> (Waiter, Waiter) {
    let conn = Arc::new(crate::connections::Conn::new(
        1,
        crate::connections::ConnKind::Subscriber,
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        0,
    ));
    (conn.clone(), conn)
}

fn ctx() -> PublishContext {
    PublishContext {
        now: 1000,
        generation: 0,
    }
}

fn channels() -> Channels {
    Channels::new(Limits {
        replay_limit: 3,
        max_age: 60,
    })
}

#[test]
fn subscribe_replays_then_reads_live() {
    let ids = Ids::starting_at(1);
    let ch = channels();
    for i in 0..5 {
        ch.publish("a", Bytes::from(format!("{i}")), &ids, ctx());
    }
    ch.publish("b", Bytes::from_static(b"other"), &ids, ctx());
    let (_, waiter) = waiter();
    let mut out = Vec::new();
    let sub = ch.subscribe("a", Backlog::Last(2), &waiter, &mut out);
    assert_eq!(out.iter().map(|m| m.id).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(sub.cursor, 5);
    let m = ch.publish("a", Bytes::from_static(b"live"), &ids, ctx());
    assert_eq!(m.id, 7, "one id sequence across channels");
    out.clear();
    sub.channel.read_after(sub.cursor, 10, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].text()[..], b"live");
    assert_eq!(ch.count_subscribers("a"), 1);
    ch.unsubscribe(sub);
    assert_eq!(ch.count_subscribers("a"), 0);
}

#[test]
fn empty_channel_is_freed_when_last_subscriber_leaves() {
    let ch = channels();
    let (_, waiter) = waiter();
    let mut out = Vec::new();
    let s1 = ch.subscribe("x", Backlog::All, &waiter, &mut out);
    let s2 = ch.subscribe("x", Backlog::All, &waiter, &mut out);
    assert_eq!(ch.list()[0].subscribers, 2);
    ch.unsubscribe(s1);
    assert_eq!(ch.len(), 1);
    ch.unsubscribe(s2);
    assert_eq!(ch.len(), 0);
}

fn poller() -> Waiter {
    let (_, conn) = waiter();
    let details = crate::subscriber::StreamDetails::new("p", "simplepoll", "", 0, false);
    conn.details.set(details).unwrap();
    conn
}

#[test]
fn a_poll_creates_the_channel_but_is_no_subscriber() {
    let ch = channels();
    let mut out = Vec::new();
    let poll = ch.subscribe("new", Backlog::All, &poller(), &mut out);
    assert_eq!(ch.count_subscribers("new"), 0);
    ch.unsubscribe(poll);
    assert_eq!(ch.list()[0].subscribers, 0);
    assert_eq!(ch.len(), 1, "kept until the housekeeping");
    ch.housekeep(1000);
    assert!(ch.is_empty());
}

#[test]
fn clearing_removes_channels_without_streaming_subscribers() {
    let ids = Ids::starting_at(1);
    let ch = channels();
    let (_, waiter) = waiter();
    let mut out = Vec::new();
    let _stream = ch.subscribe("kept", Backlog::None, &waiter, &mut out);
    ch.publish("kept", Bytes::from_static(b"m"), &ids, ctx());
    ch.publish("gone", Bytes::from_static(b"m"), &ids, ctx());
    let _poll = ch.subscribe("polled", Backlog::None, &poller(), &mut out);
    ch.clear_all();
    let names: Vec<String> = ch.list().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["kept"]);
    assert_eq!(ch.list()[0].messages, 0);
}

#[test]
fn channel_with_messages_survives_until_expiry() {
    let ids = Ids::starting_at(1);
    let ch = channels();
    ch.publish("x", Bytes::from_static(b"m"), &ids, ctx());
    ch.housekeep(1030);
    assert_eq!(ch.len(), 1);
    ch.housekeep(1061);
    assert_eq!(ch.len(), 0);
}

#[test]
fn publish_wakes_waiters() {
    let ids = Ids::starting_at(1);
    let ch = channels();
    let (wakeup, waiter) = waiter();
    let mut out = Vec::new();
    let _sub = ch.subscribe("w", Backlog::None, &waiter, &mut out);
    ch.publish("w", Bytes::from_static(b"m"), &ids, ctx());
    // The raise is kept until the wait: this completes at once.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(1), wakeup.wakeup.wait())
            .await
            .expect("woken");
    });
}

#[test]
fn joining_after_everything_expired_is_not_a_lag() {
    let ids = Ids::starting_at(1);
    let ch = channels();
    let (_, first) = waiter();
    let mut out = Vec::new();
    let _keeps_it_alive = ch.subscribe("e", Backlog::None, &first, &mut out);
    ch.publish("e", Bytes::from_static(b"old"), &ids, ctx());
    ch.housekeep(1000 + 61);
    let (_, second) = waiter();
    let sub = ch.subscribe("e", Backlog::All, &second, &mut out);
    assert!(out.is_empty(), "the expired message is not replayed");
    assert_eq!(sub.channel.read_after(sub.cursor, 10, &mut out), Ok(()));
}

#[test]
fn list_is_sorted_and_counts() {
    let ids = Ids::starting_at(1);
    let ch = channels();
    for name in ["zeta", "alpha", "mid"] {
        ch.publish(name, Bytes::from_static(b"m"), &ids, ctx());
    }
    let names: Vec<String> = ch.list().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, vec!["alpha", "mid", "zeta"]);
    ch.clear_all();
    assert!(ch.list().iter().all(|s| s.messages == 0));
    ch.housekeep(1000);
    assert!(ch.is_empty());
}

fn stamped(id: u64, text: &'static str) -> Stamped {
    Stamped {
        id,
        timestamp: 990,
        text: Bytes::from_static(text.as_bytes()),
    }
}

#[test]
fn an_appended_message_is_delivered_like_a_published_one() {
    let ch = channels();
    let (wakeup, waiter) = waiter();
    let mut out = Vec::new();
    let sub = ch.subscribe("f", Backlog::None, &waiter, &mut out);
    let m = ch.append("f", stamped(500, "fed"), ctx()).unwrap();
    assert_eq!((m.id, m.timestamp), (500, 990), "id and time as decided");
    assert!(Arc::ptr_eq(&m.channel, &sub.channel.name));
    sub.channel.read_after(sub.cursor, 10, &mut out).unwrap();
    assert_eq!(out.iter().map(|m| m.id).collect::<Vec<_>>(), [500]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(1), wakeup.wakeup.wait())
            .await
            .expect("woken");
    });
    assert_eq!(ch.summary("f").unwrap().last_id, 500);
}

#[test]
fn append_refuses_ids_at_or_below_the_last() {
    let ch = channels();
    let (_, waiter) = waiter();
    let mut out = Vec::new();
    let _keeps_it_alive = ch.subscribe("r", Backlog::None, &waiter, &mut out);
    ch.append("r", stamped(10, "a"), ctx()).unwrap();
    let refused = |id, text| ch.append("r", stamped(id, text), ctx()).map(|m| m.id);
    assert_eq!(refused(10, "again"), Err(Stale { last: 10 }));
    assert_eq!(refused(7, "older"), Err(Stale { last: 10 }));
    ch.clear_all();
    assert_eq!(
        ch.append("r", stamped(9, "after a clear"), ctx())
            .map(|m| m.id),
        Err(Stale { last: 10 }),
        "a clear forgets the messages, not how far the channel got"
    );
    assert_eq!(
        ch.append("s", stamped(3, "other channel"), ctx())
            .map(|m| m.id),
        Ok(3)
    );
    assert_eq!(ch.summary("r").unwrap().messages, 0);
}

#[test]
fn a_publish_never_goes_below_an_appended_id() {
    let ids = Ids::starting_at(1);
    let ch = channels();
    ch.append("p", stamped(40, "restored"), ctx()).unwrap();
    let m = ch.publish("p", Bytes::from_static(b"new"), &ids, ctx());
    assert_eq!(m.id, 41);
    assert_eq!(
        ids.peek(),
        42,
        "the sequence moved past it for every channel"
    );
}

#[test]
fn a_resume_from_before_the_process_knew_the_ids_is_a_gap() {
    let ids = Ids::starting_at(500);
    let ch = channels();
    ch.set_known_from(ids.peek());
    let m = ch.publish("a", Bytes::from_static(b"x"), &ids, ctx());
    let (_, waiter) = waiter();
    let mut out = Vec::new();
    let (_sub, gap) = ch.subscribe_resuming("a", Backlog::After(100), &waiter, &mut out);
    let expected = Gap {
        requested: 101,
        oldest: Some(m.id),
    };
    assert_eq!(gap, Some(expected), "ids 101..500 may have been on it");
    let (_sub, gap) = ch.subscribe_resuming("a", Backlog::After(499), &waiter, &mut out);
    assert_eq!(gap, None, "everything from 500 on is known");
}

#[test]
fn a_channel_freed_after_losing_messages_keeps_the_gap_for_its_successor() {
    let ids = Ids::starting_at(1);
    let ch = channels();
    for _ in 0..2 {
        ch.publish("gone", Bytes::from_static(b"x"), &ids, ctx());
    }
    // Everything expires and the channel is freed.
    ch.housekeep(ctx().now + 1000);
    assert!(ch.is_empty());
    let (_, waiter) = waiter();
    let mut out = Vec::new();
    let (_sub, gap) = ch.subscribe_resuming("gone", Backlog::After(0), &waiter, &mut out);
    let expected = Gap {
        requested: 1,
        oldest: None,
    };
    assert_eq!(
        gap,
        Some(expected),
        "messages 1 and 2 expired: never silent"
    );
    assert!(out.is_empty());
}
