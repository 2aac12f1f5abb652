//! Raw HTTP exchanges with the subscriber port, for byte-exact answers: a
//! request sent in pieces (with a pause between, so each is its own packet)
//! and everything read until the daemon closes.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use super::Client;

/// Pause between the pieces of a request: long enough that each arrives
/// (and is read) on its own.
pub const PIECE_GAP: Duration = Duration::from_millis(60);

/// Send `pieces` one after the other and return all the daemon sent until
/// it closed.
pub fn exchange(addr: SocketAddr, pieces: &[&[u8]]) -> String {
    let mut client = Client::raw(addr, pieces.first().copied().unwrap_or_default());
    for piece in &pieces[1..] {
        std::thread::sleep(PIECE_GAP);
        client.stream.write_all(piece).expect("send piece");
    }
    client.read_to_close()
}

/// `exchange` of a single piece.
pub fn answer(addr: SocketAddr, request: &[u8]) -> String {
    exchange(addr, &[request])
}
