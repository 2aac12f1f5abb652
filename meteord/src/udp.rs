//! UDP publish (`UDPPort`, off by default): each datagram is one
//! `ADDMESSAGE <channel> <text>`, no reply. This is how the original fans
//! out to several nodes (a broadcast to all of them). The grammar is the
//! original's UDP one ([`command::parse_datagram`]): the text is the rest
//! of the datagram, a trailing line end included; anything else is
//! ignored and takes no id. Datagrams go through the broker like the
//! controller's ADDMESSAGE, after the same checks: the sender must be in
//! ControllerAllow, the text within MaxMessageSize, the channel name within
//! MaxChannelNameLength.

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;

use crate::broker;
use crate::controller::command;
use crate::limits::Limit;
use crate::state::State;
use crate::stats::Stats;

/// Largest datagram read; bigger ones are truncated by the kernel and
/// therefore dropped here (the original stored the first 8 KiB of any
/// datagram as the message, silently cut).
const MAX_DATAGRAM: usize = 65_507;
/// Pause after a receive error, so the loop does not spin.
const ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Receive datagrams until the socket fails.
pub async fn serve(state: Arc<State>, socket: UdpSocket) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "UDP receive failed");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let config = state.config();
        if !crate::limits::allowed(&config.limits.controller_allow, peer.ip()) {
            state.stats.limits.refused(Limit::ControllerAllow);
            if state
                .stats
                .limits
                .should_log(peer.ip(), crate::clock::unix_now())
            {
                tracing::warn!(%peer, "UDP datagram dropped: sender not in ControllerAllow");
            }
            continue;
        }
        if n > MAX_DATAGRAM {
            tracing::warn!(%peer, "UDP datagram too large; dropped");
            continue;
        }
        match command::parse_datagram(&buf[..n]) {
            Some((_, text)) if text.len() > config.limits.max_message_size => {
                state.stats.limits.refused(Limit::MessageSize);
                tracing::warn!(%peer, bytes = text.len(), "UDP message over MaxMessageSize; dropped");
            }
            Some((channel, _)) if channel.len() > config.limits.max_channel_name_length => {
                state.stats.limits.refused(Limit::ChannelNameLength);
                tracing::warn!(%peer, "UDP message's channel over MaxChannelNameLength; dropped");
            }
            Some((channel, text)) => {
                match broker::publish(&state, channel, Bytes::copy_from_slice(text)).await {
                    // Written now (the history file): a datagram has no
                    // reply to wait for. The broker logs a failure.
                    Ok(_) => {
                        Stats::add(&state.stats.udp_messages, 1);
                        let _ = state.broker.flush();
                    }
                    // No one to tell: the datagram is lost, as one the
                    // network dropped.
                    Err(e) => tracing::warn!(%peer, error = %e, "UDP message not published"),
                }
            }
            None => tracing::info!(%peer, "UDP datagram is not an ADDMESSAGE line; dropped"),
        }
    }
}
