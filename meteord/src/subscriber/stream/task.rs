//! A live stream's task: the hand-written future that an idle stream is.
//! Idle, it holds its [`Live`] and nothing else, and polls the wake-up and
//! the socket's readiness itself; on a wake it boxes the work
//! (`Live::on_wake`) until that is done, then is idle again.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Live;

type WorkFuture = Pin<Box<dyn Future<Output = (Live, io::Result<bool>)> + Send>>;

enum TaskState {
    /// Waiting for a wake-up or client input; holds nothing else.
    Idle(Live),
    /// Handling a wake-up (boxed: only while there is work).
    Working(WorkFuture),
    Finished,
}

/// A live stream's task, written as a plain state machine rather than an
/// `async fn` so that an idle stream costs its [`Live`] and a tag, nothing
/// more: tens of thousands of them sit idle at once.
pub struct LiveTask {
    state: TaskState,
}

impl LiveTask {
    /// Start with a first pass of work: whatever arrived since the
    /// backlog was gathered, and the first look at the clock.
    pub(super) fn new(live: Live) -> LiveTask {
        LiveTask {
            state: TaskState::Working(work(live)),
        }
    }
}

/// The work on one wake-up, owning the stream (and its write turn) until
/// it is done.
fn work(mut live: Live) -> WorkFuture {
    let owed = live.begin_pass();
    Box::pin(async move {
        let result = live.on_wake(owed).await;
        if let Ok(false) = result {
            live.end_pass();
        }
        (live, result)
    })
}

impl Future for LiveTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match std::mem::replace(&mut self.state, TaskState::Finished) {
                TaskState::Finished => return Poll::Ready(()),
                TaskState::Working(mut work) => match work.as_mut().poll(cx) {
                    Poll::Pending => {
                        self.state = TaskState::Working(work);
                        return Poll::Pending;
                    }
                    Poll::Ready((live, Ok(false))) => self.state = TaskState::Idle(live),
                    Poll::Ready((live, result)) => {
                        if let Err(e) = result {
                            tracing::debug!(conn = live.conn.number, ip = %live.conn.ip, error = %e, "stream ended");
                        }
                        return Poll::Ready(());
                    }
                },
                TaskState::Idle(mut live) => {
                    if std::mem::take(&mut live.woken) || live.conn.wakeup.poll_wait(cx).is_ready()
                    {
                        self.state = TaskState::Working(work(live));
                        continue;
                    }
                    match live.stream.poll_read_ready(cx) {
                        Poll::Pending => {
                            self.state = TaskState::Idle(live);
                            return Poll::Pending;
                        }
                        Poll::Ready(ready) => match ready.and_then(|()| live.consume_input()) {
                            Ok(true) => self.state = TaskState::Idle(live),
                            Ok(false) => return Poll::Ready(()),
                            Err(e) => {
                                tracing::debug!(conn = live.conn.number, error = %e, "stream ended");
                                return Poll::Ready(());
                            }
                        },
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::connections::{Conn, ConnKind};
    use crate::state::State;

    /// Every wake-up boxes this future, and moving it into the box costs
    /// in proportion to its size: pin it so the writer path cannot fatten
    /// the hot path (360 bytes before the framing seam, in a test build).
    #[tokio::test]
    async fn a_wake_ups_work_stays_small() {
        let config = crate::config::load_builtin(&crate::config::CommandLine::default()).unwrap();
        let state = Arc::new(State::new(config, crate::ids::Ids::starting_at(1)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let ip = stream.local_addr().unwrap().ip();
        let conn = Arc::new(Conn::new(1, ConnKind::Subscriber, ip, 0));
        let live = Live::new(state.clone(), stream, conn, state.modes().get("").clone());
        let size = std::mem::size_of_val(&*work(live));
        assert!(size <= 360, "a wake-up's work grew to {size} bytes");
    }
}
