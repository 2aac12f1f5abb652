//! The controller's line parser (meteord/src/controller/command.rs,
//! `command::parse`) on any line. Thin on purpose: one call, no panic is
//! the property; the parser is being reworked, and this target is meant to
//! follow it with a one-line change.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meteord::controller::command;

fuzz_target!(|line: &[u8]| {
    let _ = command::parse(line);
});
