//! HistoryFile / HistoryFsync (issue 14) against the real binary: every
//! acknowledged message comes back after a clean stop and after a SIGKILL
//! right after its OK, with the same ids and bytes; a torn tail is
//! repaired; a damaged or foreign file stops the start naming the file and
//! the byte offset; compaction keeps the file bounded; SIGUSR1 empties it;
//! MaxMessageAge and MaxMessagesPerChannel apply to what is restored.

mod support;

use std::io::Write;
use std::time::Duration;

use support::history::{
    crash, expected, file_len, history_path, poll, publish_many, start, stop, wait_until,
};
use support::process::Scratch;
use support::{Daemon, scratch};

#[test]
fn a_clean_restart_gives_back_every_message_with_its_id_and_bytes() {
    let daemon = start(scratch("hist-term"), "everysec", &[]);
    let a1 = daemon.publish("a", "<b>one</b> caf\u{e9}");
    let b1 = daemon.publish("b", "two\tthree");
    let a2 = daemon.publish("a", "four");
    let before_a = poll(&daemon, "a.h");
    assert_eq!(
        before_a,
        expected(&[(a1, "a", "<b>one</b> caf\u{e9}"), (a2, "a", "four")])
    );
    let dir = stop(daemon);

    let daemon = start(dir, "everysec", &[]);
    assert_eq!(poll(&daemon, "a.h"), before_a);
    assert_eq!(poll(&daemon, "b.h"), expected(&[(b1, "b", "two\tthree")]));
    assert_eq!(
        poll(&daemon, &format!("a.r{a2}")),
        expected(&[(a2, "a", "four")])
    );
    assert!(
        daemon.log_text().contains("history restored"),
        "{}",
        daemon.log_text()
    );
    // The sequence goes on above the restored ids.
    let next = daemon.publish("a", "five");
    assert_eq!(next, a2 + 1, "a clean stop continues the sequence");
    assert_eq!(
        poll(&daemon, "a.h"),
        expected(&[
            (a1, "a", "<b>one</b> caf\u{e9}"),
            (a2, "a", "four"),
            (next, "a", "five")
        ])
    );
}

#[test]
fn a_sigkill_right_after_the_ok_loses_nothing_even_without_fsync() {
    // HistoryFsync no: the page cache alone must hold every acknowledged
    // message when the process dies.
    let daemon = start(scratch("hist-kill"), "no", &[]);
    let ids = publish_many(&daemon, &["k1", "k2"], 200, "m");
    let dir = crash(daemon);

    let daemon = start(dir, "no", &["-MaxMessagesPerChannel", "1000"]);
    for (c, channel) in ["k1", "k2"].iter().enumerate() {
        let want: Vec<(u64, &str, String)> = ids
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 2 == c)
            .map(|(n, id)| (*id, *channel, format!("m-{n}")))
            .collect();
        let want: Vec<(u64, &str, &str)> = want
            .iter()
            .map(|(i, ch, t)| (*i, *ch, t.as_str()))
            .collect();
        assert_eq!(poll(&daemon, &format!("{channel}.h")), expected(&want));
    }
    let after = daemon.publish("k1", "later");
    assert!(
        after > *ids.last().unwrap(),
        "ids never go back after a crash"
    );
}

#[test]
fn udp_publishes_are_written_too() {
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port().to_string()
    };
    let udp_args = ["-UDPIP", "127.0.0.1", "-UDPPort", port.as_str()];
    let daemon = start(scratch("hist-udp"), "always", &udp_args);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(b"ADDMESSAGE u by-udp", daemon.udp.expect("udp port"))
        .unwrap();
    wait_until("the datagram is stored", || {
        poll(&daemon, "u.h").contains("by-udp")
    });
    let before = poll(&daemon, "u.h");
    let dir = crash(daemon);
    let daemon = start(dir, "always", &udp_args);
    assert_eq!(poll(&daemon, "u.h"), before);
}

#[test]
fn every_fsync_policy_keeps_concurrent_publishes_across_a_crash() {
    for policy in ["always", "everysec", "no"] {
        let daemon = start(scratch(&format!("hist-{policy}")), policy, &[]);
        // Four publishers at once: with `always` they share fsyncs.
        let ids: Vec<Vec<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let daemon = &daemon;
                    s.spawn(move || publish_many(daemon, &[&format!("p{t}")], 50, "x"))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let dir = crash(daemon);
        let daemon = start(dir, policy, &[]);
        for (t, ids) in ids.iter().enumerate() {
            let channel = format!("p{t}");
            let texts: Vec<String> = (0..ids.len()).map(|n| format!("x-{n}")).collect();
            let want: Vec<(u64, &str, &str)> = ids
                .iter()
                .zip(&texts)
                .map(|(id, text)| (*id, channel.as_str(), text.as_str()))
                .collect();
            assert_eq!(
                poll(&daemon, &format!("{channel}.h")),
                expected(&want),
                "{policy}"
            );
        }
    }
}

#[test]
fn an_unknown_fsync_policy_is_refused() {
    let dir = Scratch::new("hist-badpolicy");
    let file = dir.arg("h");
    let (refusal, _) = support::config::refuse(
        "hist-badpolicy",
        None,
        &["-HistoryFile", &file, "-HistoryFsync", "sometimes"],
    );
    assert_eq!(refusal.code, Some(64));
    assert!(
        refusal.stderr.contains(
            "command line: parameter HistoryFsync: invalid value \"sometimes\": must be always, \
             everysec or no (Redis' appendfsync words)"
        ),
        "{}",
        refusal.stderr
    );
}

#[test]
fn a_tail_cut_short_is_cut_off_and_logged() {
    let daemon = start(scratch("hist-torn"), "everysec", &[]);
    let id = daemon.publish("t", "kept");
    let dir = stop(daemon);
    let path = history_path(&dir);
    let good = file_len(&path);
    // The first bytes of a record header, as a crash mid-write leaves them.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0x30, 0, 0, 0, 0xcf, 0xff])
        .unwrap();

    let daemon = start(dir, "everysec", &[]);
    assert_eq!(poll(&daemon, "t.h"), expected(&[(id, "t", "kept")]));
    assert_eq!(
        file_len(&path),
        good,
        "the torn bytes are gone from the file"
    );
    let log = daemon.log_text();
    assert!(
        log.contains("cut off at that offset") && log.contains(&format!("offset={good}")),
        "{log}"
    );
    // Appends continue after the good part.
    let next = daemon.publish("t", "after");
    let dir = stop(daemon);
    let daemon = start(dir, "everysec", &[]);
    assert_eq!(
        poll(&daemon, "t.h"),
        expected(&[(id, "t", "kept"), (next, "t", "after")])
    );
}

#[test]
fn damage_in_the_middle_stops_the_start_naming_file_and_offset() {
    let daemon = start(scratch("hist-corrupt"), "everysec", &[]);
    daemon.publish("c", "first");
    daemon.publish("c", "second");
    let dir = stop(daemon);
    let path = history_path(&dir);
    let mut bytes = std::fs::read(&path).unwrap();
    // The first record's text (header 12 + record header 12 + 20 + "c").
    bytes[12 + 12 + 20 + 1] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let file = path.display().to_string();
    let (refusal, _) = support::config::refuse("hist-corrupt-run", None, &["-HistoryFile", &file]);
    assert_eq!(refusal.code, Some(65), "{}", refusal.stderr);
    assert!(
        refusal.stderr.contains(&format!(
            "history file {file} is damaged or not a meteord history file, at byte offset 12: \
             record checksum mismatch; not starting over it (docs/history.md"
        )),
        "{}",
        refusal.stderr
    );
    assert!(!refusal.stderr.contains("panicked"), "{}", refusal.stderr);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a refused file is left as it is"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_foreign_file_stops_the_start() {
    let dir = Scratch::new("hist-foreign");
    let file = dir.arg("not-history");
    std::fs::write(&file, "1000042\n").unwrap();
    let (refusal, _) = support::config::refuse("hist-foreign-run", None, &["-HistoryFile", &file]);
    assert_eq!(refusal.code, Some(65), "{}", refusal.stderr);
    assert!(
        refusal.stderr.contains(&format!(
            "history file {file} is damaged or not a meteord history file, at byte offset 0: \
             not a meteord history file (no METEORDH header)"
        )),
        "{}",
        refusal.stderr
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"1000042\n");
}

#[test]
fn compaction_keeps_the_file_bounded_under_a_steady_load() {
    let limit = ["-MaxMessagesPerChannel", "5"];
    let daemon = start(scratch("hist-compact"), "everysec", &limit);
    let path = history_path(&daemon.dir);
    let text = "y".repeat(200);
    let channels = ["c0", "c1", "c2", "c3"];
    let mut written = 0;
    let mut largest = 0;
    let mut ids = Vec::new();
    // About 6 MB in rounds, each well under the compaction's floor
    // (256 KiB) beyond what one check interval lets through.
    for _ in 0..24 {
        ids = publish_many(&daemon, &channels, 1000, &text);
        written += 1000 * (24 + 20 + 2 + text.len() + 4);
        largest = largest.max(file_len(&path));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(written >= 6_000_000, "{written}");
    // Left alone, the file is compacted once past the floor, whatever
    // the last round left.
    wait_until("the file is compacted down to the floor", || {
        file_len(&path) <= 256 << 10
    });
    // The floor plus about one round (250 KB) while the rewrite runs.
    assert!(largest < 1 << 20, "the file grew to {largest} bytes");
    assert!(daemon.log_text().contains("history file compacted"));

    let before: Vec<String> = channels
        .iter()
        .map(|c| poll(&daemon, &format!("{c}.h")))
        .collect();
    // The last round's last five messages per channel.
    let last = &ids[ids.len() - 4..];
    assert!(before[3].contains(&format!("Meteor.process({},\"c3\",", last[3])));
    let dir = crash(daemon);
    let daemon = start(dir, "everysec", &limit);
    let after: Vec<String> = channels
        .iter()
        .map(|c| poll(&daemon, &format!("{c}.h")))
        .collect();
    assert_eq!(after, before);
    assert_eq!(before[0].matches("Meteor.process(").count(), 5);
}

#[test]
fn sigusr1_empties_the_file_too() {
    let daemon = start(scratch("hist-usr1"), "everysec", &[]);
    daemon.publish("c", "gone");
    let path = history_path(&daemon.dir);
    assert!(file_len(&path) > 12);
    daemon.signal("USR1");
    wait_until("the file holds only its header", || file_len(&path) == 12);
    let kept = daemon.publish("c", "kept");
    let dir = stop(daemon);
    let daemon = start(dir, "everysec", &[]);
    assert_eq!(poll(&daemon, "c.h"), expected(&[(kept, "c", "kept")]));
}

#[test]
fn max_message_age_and_per_channel_limit_apply_on_restore() {
    let daemon = start(scratch("hist-age"), "everysec", &[]);
    daemon.publish("old", "stale");
    std::thread::sleep(Duration::from_millis(4200));
    let fresh = daemon.publish("old", "fresh");
    let ids: Vec<u64> = (0..3)
        .map(|n| daemon.publish("many", &format!("n{n}")))
        .collect();
    let dir = stop(daemon);

    let daemon = start(
        dir,
        "everysec",
        &["-MaxMessageAge", "2", "-MaxMessagesPerChannel", "2"],
    );
    assert_eq!(poll(&daemon, "old.h"), expected(&[(fresh, "old", "fresh")]));
    assert_eq!(
        poll(&daemon, "many.h"),
        expected(&[(ids[1], "many", "n1"), (ids[2], "many", "n2")])
    );
}

#[test]
fn without_history_file_nothing_is_written_and_histories_start_empty() {
    let daemon = Daemon::start("hist-off", &[]);
    daemon.publish("c", "volatile");
    let daemon = daemon.restart();
    assert_eq!(poll(&daemon, "c.h"), expected(&[]));
    assert!(!history_path(&daemon.dir).exists());
}

#[test]
fn a_reload_keeps_the_history_file_it_started_with() {
    let dir = scratch("hist-reload");
    let first = history_path(&dir);
    let config = format!("HistoryFile {}\nHistoryFsync no\n", first.display());
    std::fs::write(dir.join("meteord.conf"), &config).unwrap();
    let conf = dir.join("meteord.conf").display().to_string();
    let daemon = Daemon::start_in(dir.clone(), &["-ConfigFileLocation", &conf]);
    daemon.publish("c", "one");
    let other = dir.join("other.history");
    std::fs::write(
        dir.join("meteord.conf"),
        format!("HistoryFile {}\nHistoryFsync always\n", other.display()),
    )
    .unwrap();
    daemon.signal("HUP");
    wait_until("the reload is logged", || {
        daemon.log_text().contains("configuration reloaded")
    });
    assert!(
        daemon.log_text().contains(
            "HistoryFile or HistoryFsync changed in the configuration; they take effect after a restart"
        ),
        "{}",
        daemon.log_text()
    );
    daemon.publish("c", "two");
    let dir = stop(daemon);
    assert!(
        !other.exists(),
        "the new name is used only from the next start"
    );
    let records = std::fs::read(&first).unwrap();
    assert!(
        records.windows(3).any(|w| w == b"two"),
        "still written to the first file"
    );
    let _ = std::fs::remove_dir_all(dir);
}
