//! `meteor-bench`: a load generator for Meteor-protocol push servers
//! (meteord, the Perl original) and for Nchan, like `redis-benchmark` is to
//! Redis. See BENCHMARKS.md for the scenarios and how to run them. The
//! binary (`main.rs`) only dispatches to the three roles below; everything
//! else lives here so integration tests can drive it.
//!
//! Module map:
//! - [`cli`]: command line, scenario defaults, validation (loopback only);
//! - [`coordinator`]: the run, one function per phase; its
//!   [`workers`](coordinator::workers) (processes and pipes) and its
//!   [`report`](coordinator::report) (JSON and summary);
//! - [`worker`]: a subscriber process (`--worker`): the
//!   [`pipe`](worker::pipe) protocol shared with the coordinator, the
//!   [`subscriber`](worker::subscriber) connection lifecycle, and the
//!   [`tally`](worker::tally) of what was delivered;
//! - [`publisher`]: ADDMESSAGE over the controller, or Nchan HTTP POST;
//! - [`payload`]: the timestamped, sequenced message body and its scanner;
//! - [`eventsource`]: meteord's EventSource events (the id before a
//!   payload) and the request that resumes with `Last-Event-ID`;
//! - [`procstat`]: RSS and CPU seconds from /proc;
//! - [`bare`]: the bare server (`--bare-server`), the yardstick that does
//!   nothing but one write per subscriber.
//!
//! The Meteor rules it shares with meteord (the `OK\t<id>` reply, channel
//! names, the open-file limit) come from the `meteor-proto` crate.

pub mod bare;
pub mod cli;
pub mod coordinator;
pub mod eventsource;
pub mod payload;
pub mod procstat;
pub mod publisher;
pub mod worker;
