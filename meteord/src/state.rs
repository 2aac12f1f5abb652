//! The daemon's shared state: one `Arc<State>` handed to every task.
//!
//! Things SIGHUP may replace (configuration, compiled modes, the document
//! server) sit behind an `RwLock<Arc<_>>`: readers clone the `Arc` and drop
//! the lock at once, so a reload never waits for a slow connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::broker::{Broker, LocalBroker};
use crate::channel::{Channels, Limits, PublishContext};
use crate::config::Config;
use crate::connections::Connections;
use crate::document::Documents;
use crate::ids::Ids;
use crate::stats::Stats;
use crate::subscriber::mode::CompiledModes;

#[derive(Debug)]
pub struct State {
    config: RwLock<Arc<Config>>,
    modes: RwLock<Arc<CompiledModes>>,
    /// Generation of `modes`, readable without the lock: subscribers check
    /// it on every wake to pick up reloaded templates.
    generation: AtomicU64,
    documents: RwLock<Arc<Documents>>,
    pub channels: Channels,
    /// Where every publish goes (decides ids, stores, wakes).
    pub broker: Arc<dyn Broker>,
    pub connections: Connections,
    pub stats: Stats,
    /// What outside writers (the clock's pings, publishers' direct
    /// writes) wrote in part, for their streams to finish.
    pub write_rests: crate::write_turn::Rests,
}

/// Seconds since the epoch: the daemon clock's, here beside the state
/// every task already imports.
pub use crate::clock::unix_now;

fn limits(config: &Config) -> Limits {
    Limits {
        replay_limit: config.max_messages_per_channel,
        max_age: config.max_message_age,
    }
}

impl State {
    /// State for one process: publishes go to a [`LocalBroker`] over `ids`.
    pub fn new(config: Config, ids: Ids) -> State {
        State::with_broker(config, Arc::new(LocalBroker::new(ids)))
    }

    pub fn with_broker(config: Config, broker: Arc<dyn Broker>) -> State {
        let modes = CompiledModes::compile(&config, 1);
        let documents = Documents::new(
            // No root (SubscriberDocumentRoot empty or /): an empty path,
            // which Documents answers as not found for every request.
            config.subscriber_document_root.clone().unwrap_or_default(),
            config.directory_index.clone(),
        );
        State {
            channels: Channels::new(limits(&config)),
            config: RwLock::new(Arc::new(config)),
            generation: AtomicU64::new(modes.generation),
            modes: RwLock::new(Arc::new(modes)),
            documents: RwLock::new(Arc::new(documents)),
            broker,
            connections: Connections::new(),
            stats: Stats::new(),
            write_rests: Default::default(),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn modes(&self) -> Arc<CompiledModes> {
        self.modes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn modes_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn documents(&self) -> Arc<Documents> {
        self.documents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What a publish needs to stamp a message.
    pub fn publish_context(&self) -> PublishContext {
        // The generation alone, not `modes()`: a read lock and an `Arc`
        // clone on every publish bounced one cache line between the
        // controller threads (7 % of the daemon's CPU at 400,000 publishes
        // a second, perf). The generation is stored after the modes, so
        // it never names modes that are not there yet.
        PublishContext {
            now: unix_now(),
            generation: self.modes_generation(),
        }
    }

    /// SIGHUP: switch to `config` without touching connections. Listening
    /// addresses cannot change without a restart; the caller warns.
    pub fn apply_reload(&self, config: Config) {
        let generation = self.modes().generation + 1;
        let modes = CompiledModes::compile(&config, generation);
        let documents = Documents::new(
            // No root (SubscriberDocumentRoot empty or /): an empty path,
            // which Documents answers as not found for every request.
            config.subscriber_document_root.clone().unwrap_or_default(),
            config.directory_index.clone(),
        );
        self.channels.set_limits(limits(&config), unix_now());
        *self.modes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(modes);
        *self.documents.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(documents);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        self.generation.store(generation, Ordering::Release);
        // A stream picks up new modes when it next works; one that only
        // takes direct writes and clock pings might never work again, so
        // wake them all once (each re-arms its timers and offers its
        // socket again only if the new mode allows direct writes).
        for conn in self.connections.all() {
            if conn.kind == crate::connections::ConnKind::Subscriber {
                conn.wake();
            }
        }
    }
}
