//! The configuration reader (meteord/src/config/: `parse_document`, then
//! validation) through its public entry `config::load_from_text`, with the
//! default command line. Thin on purpose: one call, no panic (and an error
//! that formats) is the property; the reader is being reworked, and this
//! target is meant to follow it with a one-line change.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meteord::config::{CommandLine, load_from_text};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = load_from_text(text, "fuzz.conf", &CommandLine::default()) {
        let _ = err.to_string();
    }
});
