//! A one-bit wake-up for one task: the smallest thing a publish can poke.
//!
//! Each connection has one. A publisher (or the clock, or a stop request)
//! *raises* it; the connection's task *waits* for it. Unlike a
//! `tokio::sync::Notify`, waiting needs no future with an intrusive waiter
//! node of its own — it is a plain poll function — which keeps the state of
//! tens of thousands of idle subscriber tasks small.

use std::future::poll_fn;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
pub struct Wakeup {
    raised: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Wakeup {
    pub fn new() -> Wakeup {
        Wakeup::default()
    }

    /// Wake the waiting task (or make its next wait return at once).
    pub fn raise(&self) {
        if self.raised.swap(true, Ordering::AcqRel) {
            // Already raised and not yet consumed: that raise woke it.
            return;
        }
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ready (and lowered again) once raised since the last wait.
    pub fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.raised.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        {
            let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        // A raise between the first check and storing the waker found no
        // waker to wake: look once more.
        if self.raised.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Wait until raised.
    pub async fn wait(&self) {
        poll_fn(|cx| self.poll_wait(cx)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_raise_before_the_wait_is_kept() {
        let w = Wakeup::new();
        w.raise();
        w.raise();
        tokio::time::timeout(Duration::from_secs(1), w.wait())
            .await
            .unwrap();
        // Consumed: the next wait blocks.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), w.wait())
                .await
                .is_err()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn raises_from_another_thread_wake_the_waiter() {
        let w = Arc::new(Wakeup::new());
        for _ in 0..1000 {
            let raiser = w.clone();
            let handle = std::thread::spawn(move || raiser.raise());
            tokio::time::timeout(Duration::from_secs(5), w.wait())
                .await
                .expect("woken");
            handle.join().unwrap();
        }
    }
}
