//! The one request handler both front ends (FastCGI and dev HTTP) call:
//! validate → escape and format → send to meteord → [`Response`]. Also
//! counts the requests in flight so shutdown can let them finish.

use jiff::{Timestamp, tz::TimeZone};

use crate::controller::Controller;
use crate::form::{self, Limits};
use crate::line;
use crate::response::Response;

/// Settings the handler needs besides the controller.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Channel the messages go to (validated with [`line::validate_channel`]).
    pub channel: String,
    /// Zone for the `HH:MM:SS` stamp.
    pub time_zone: TimeZone,
    /// Field limits.
    pub limits: Limits,
    /// Subscriber tokens for the page (`--token-secret`); `None` = off.
    pub tokens: Option<crate::token::Minter>,
}

/// Shared state of a running responder.
#[derive(Debug)]
pub struct App {
    config: ChatConfig,
    controller: Controller,
    /// Number of requests being served, so shutdown can let them finish.
    in_flight: tokio::sync::watch::Sender<usize>,
}

/// Marks one request as in flight until dropped.
#[derive(Debug)]
pub struct InFlight(tokio::sync::watch::Sender<usize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl App {
    /// Builds the shared state.
    pub fn new(config: ChatConfig, controller: Controller) -> Self {
        Self {
            config,
            controller,
            in_flight: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Counts a request as in flight; front ends hold the guard until the
    /// answer is written.
    pub fn begin_request(&self) -> InFlight {
        self.in_flight.send_modify(|n| *n += 1);
        InFlight(self.in_flight.clone())
    }

    /// Waits until no request is in flight, for at most `limit`; returns
    /// how many were still running when it gave up.
    pub async fn drain(&self, limit: std::time::Duration) -> usize {
        let mut rx = self.in_flight.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
        *self.in_flight.borrow()
    }

    /// The configured limits (front ends size their body caps from them).
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The answer to `GET chat.php?token…` when tokens are on; `None`
    /// otherwise (the request is then an ordinary one).
    pub fn token_answer(&self, method: &str, query: &str) -> Option<Response> {
        let minter = self.config.tokens.as_ref()?;
        (method == "GET" && crate::token::wants_token(query))
            .then(|| minter.answer(query, crate::token::unix_now()))
    }

    /// Whether tokens are on (the dev server's config.js says so).
    pub fn tokens_on(&self) -> bool {
        self.config.tokens.is_some()
    }

    /// Handles one chat request.
    pub async fn handle(&self, method: &str, content_type: Option<&str>, body: &[u8]) -> Response {
        let msg = match form::validate(method, content_type, body, &self.config.limits) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::info!(status = e.status(), "rejected: {e}");
                return Response::error(e.status(), &e.to_string());
            }
        };
        let text = line::chat_text(&msg, Timestamp::now(), &self.config.time_zone);
        let cmd = line::addmessage_line(&self.config.channel, &text);
        match self.controller.send(&cmd).await {
            Ok(id) => {
                tracing::debug!(id, channel = %self.config.channel, text = %text, "published");
                Response::ok(id)
            }
            Err(e) => {
                tracing::error!(controller = %self.controller.addr(), status = e.status(), "{e}");
                Response::error(e.status(), &e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_requests_in_flight() {
        let app = std::sync::Arc::new(App::new(
            ChatConfig {
                channel: "chat".into(),
                time_zone: TimeZone::UTC,
                limits: Limits::default(),
                tokens: None,
            },
            Controller::new("127.0.0.1:9", std::time::Duration::from_millis(100)),
        ));
        assert_eq!(app.drain(std::time::Duration::from_secs(1)).await, 0);
        let guard = app.begin_request();
        let second = app.begin_request();
        assert_eq!(app.drain(std::time::Duration::from_secs(1)).await, 2);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            drop(guard);
        });
        assert_eq!(app.drain(std::time::Duration::from_secs(1)).await, 1);
        drop(second);
        assert_eq!(app.drain(std::time::Duration::from_secs(1)).await, 0);
    }

    #[tokio::test]
    async fn rejected_input_never_reaches_the_controller() {
        // Port 9 (discard) on loopback is not listened on here; but a
        // rejected request must fail before any connect is attempted.
        let app = App::new(
            ChatConfig {
                channel: "chat".into(),
                time_zone: TimeZone::UTC,
                limits: Limits::default(),
                tokens: None,
            },
            Controller::new("127.0.0.1:9", std::time::Duration::from_millis(100)),
        );
        let r = app
            .handle(
                "POST",
                Some("application/x-www-form-urlencoded"),
                b"message=",
            )
            .await;
        assert_eq!(r.status, 400);
        let r = app.handle("GET", None, b"").await;
        assert_eq!(r.status, 405);
        let r = app
            .handle(
                "POST",
                Some("application/x-www-form-urlencoded"),
                b"message=hi",
            )
            .await;
        assert_eq!(r.status, 503, "{r:?}");
    }
}
