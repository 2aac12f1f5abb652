//! The daemon's clock: the one place it reads the time, and the one timer
//! that drives every connection's pings, MaxTime and write timeout.
//!
//! # Reading the time
//! Durations and deadlines are tokio's ([`now`], `tokio::time::sleep`,
//! `timeout`), so a test that pauses tokio's clock controls all of them.
//! Timestamps (`~servertime~`, a message's time and age, MaxTime and ping
//! deadlines, listings) are [`unix_now`]: the wall clock, as the original's
//! `time()` (NTP steps included). In unit tests it is moved by however far
//! tokio's clock is ahead of the real one: zero while that clock runs;
//! with it paused, the seconds stand still and advance with
//! `tokio::time::advance`, in step with the timers.
//!
//! # The timer
//! [`run`] visits the connection table in slices (see [`tick`]) and
//! wakes each connection whose deadline came: one timer for every
//! connection instead of a `Sleep` each.

#[cfg(test)]
mod paused_tests;
mod timers;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::state::State;

pub use timers::{
    ConnTimers, MAX_CLOCK_SLICES, MIN_CLOCK_SLICES, WAKE_DEADLINE, WAKE_PING, WAKE_STALLED,
    clock_slices, secs32, tick,
};

/// The clock visits every connection once per round.
pub const ROUND: Duration = Duration::from_secs(1);

/// Now, on tokio's clock: for durations and deadlines.
pub fn now() -> Instant {
    Instant::now()
}

/// Seconds since the epoch, following tokio's clock (see the module doc).
pub fn unix_now() -> u64 {
    unix_time().as_secs()
}

/// Time since the epoch, following tokio's clock: [`unix_now`] before it
/// is cut to whole seconds.
pub fn unix_time() -> Duration {
    let wall = SystemTime::now();
    // Only this crate's unit tests can pause tokio's clock (`test-util` is
    // a dev-dependency feature, and the daemon's runtime is never paused),
    // so only they pay for the two extra clock reads (~75 ns measured):
    // timestamps are taken on every publish.
    #[cfg(test)]
    let wall = paused_offset(wall);
    wall.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// `wall` moved by how far tokio's clock is ahead of the real one: zero
/// unless it is paused; then how far paused time was advanced less how
/// much real time went by since the pause.
#[cfg(test)]
fn paused_offset(wall: SystemTime) -> SystemTime {
    let real = std::time::Instant::now();
    let tokio = Instant::now().into_std();
    let moved = match tokio.checked_duration_since(real) {
        Some(ahead) => wall.checked_add(ahead),
        None => wall.checked_sub(real.saturating_duration_since(tokio)),
    };
    moved.unwrap_or(wall)
}

/// The one timer for every connection, until `stop` changes.
pub async fn run(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    // One round visits every connection once, in `slices` ticks over one
    // second: the resolution of pings, MaxTime and WriteTimeout, which are
    // whole seconds. The number of slices follows the connection count,
    // changed only between rounds so no connection is skipped or visited
    // twice in a round.
    let mut slices = clock_slices(state.connections.len());
    let mut slice = 0usize;
    let mut next = now();
    loop {
        // Late ticks are not made up in a burst: the next one is a full
        // period after this one at the earliest.
        next = (next + ROUND / slices as u32).max(now());
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {
                let write_timeout = state.config().write_timeout;
                let modes = state.modes();
                tick(&state.connections, unix_now(), write_timeout, (slice, slices), |conn| {
                    crate::subscriber::stream::ping_from_clock(&state, &modes, conn)
                });
                slice += 1;
                if slice == slices {
                    slice = 0;
                    slices = clock_slices(state.connections.len());
                }
            }
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_now_is_the_wall_clock_outside_paused_time() {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let ours = unix_now();
        assert!(ours == wall || ours == wall + 1, "{ours} vs {wall}");
    }

    #[tokio::test(start_paused = true)]
    async fn unix_now_follows_paused_time() {
        let start = unix_now();
        // Real time passes, paused time does not: the seconds stand still.
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(unix_now(), start);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(unix_now(), start + 90);
    }
}
