//! Modes compiled once per configuration generation: each mode's settings,
//! its [`Framing`], and its slot in every message's render cache, so each
//! message is rendered once per mode and the bytes are shared by every
//! subscriber of that mode ([`CompiledMode::message_bytes`]).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::framing::Framing;
use crate::channel::Message;
use crate::config::{Config, ModeSettings};

/// One mode, compiled.
#[derive(Debug)]
pub struct CompiledMode {
    pub settings: Arc<ModeSettings>,
    /// How this mode speaks on the wire.
    pub framing: Framing,
    /// Index of this mode's slot in each message's render cache.
    pub slot: usize,
    /// Which [`CompiledModes`] this belongs to (render caches are per generation).
    pub generation: u64,
}

impl CompiledMode {
    /// Mode `name` (its section's name; `""` for the defaults) of `config`.
    fn new(name: &str, config: &Config, slot: usize, generation: u64) -> CompiledMode {
        let settings = config.modes.get(name).clone();
        CompiledMode {
            framing: Framing::compile(name, config),
            settings,
            slot,
            generation,
        }
    }

    /// The bytes of `message` for this mode: rendered once and shared.
    pub fn message_bytes(&self, message: &Message) -> Bytes {
        message.rendered(self.generation, self.slot, || self.framing.message(message))
    }
}

/// Every mode compiled, for one configuration generation.
#[derive(Debug)]
pub struct CompiledModes {
    pub generation: u64,
    default: Arc<CompiledMode>,
    named: HashMap<String, Arc<CompiledMode>>,
}

impl CompiledModes {
    pub fn compile(config: &Config, generation: u64) -> CompiledModes {
        let modes = &config.modes;
        let default = Arc::new(CompiledMode::new("", config, 0, generation));
        let mut names: Vec<&String> = modes.named.keys().collect();
        names.sort();
        let named = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    name.clone(),
                    Arc::new(CompiledMode::new(name, config, i + 1, generation)),
                )
            })
            .collect();
        CompiledModes {
            generation,
            default,
            named,
        }
    }

    /// The mode named `name` (case-sensitive); unknown modes get the defaults.
    pub fn get(&self, name: &str) -> &Arc<CompiledMode> {
        self.named.get(name).unwrap_or(&self.default)
    }
}
