//! UDP publish (`UDPPort`, off by default): each datagram is one
//! `ADDMESSAGE <channel> <text>` line, no reply. This is how the original
//! fans out to several nodes (a broadcast to all of them).

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;

use crate::broker;
use crate::controller::command::{self, Command};
use crate::state::State;
use crate::stats::Stats;

/// Largest datagram read; bigger ones are truncated by the kernel and
/// therefore dropped here.
const MAX_DATAGRAM: usize = 65_507;

/// Receive datagrams until the socket fails.
pub async fn serve(state: Arc<State>, socket: UdpSocket) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "UDP receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if n > MAX_DATAGRAM {
            tracing::warn!(%peer, "UDP datagram too large; dropped");
            continue;
        }
        let mut line = &buf[..n];
        if let Some(l) = line.strip_suffix(b"\n") {
            line = l;
        }
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        match command::parse(line) {
            Ok(Command::AddMessage { channel, text }) => {
                match broker::publish(&state, channel, Bytes::copy_from_slice(text)) {
                    Ok(_) => Stats::add(&state.stats.udp_messages, 1),
                    Err(e) => tracing::info!(%peer, error = %e, "UDP message refused"),
                }
            }
            _ => tracing::info!(%peer, "UDP datagram is not an ADDMESSAGE line; dropped"),
        }
    }
}
