//! The ops parameters (issue 14): who may publish (`ControllerAllow`), the
//! named limits, and the metrics listener, built from the layered values
//! into [`LimitSettings`]. Kept apart from `build.rs` so the limits read as
//! one list, each beside its parameter.

use std::net::IpAddr;

use super::build::Values;
use super::error::ConfigError;
use super::params as p;
use crate::limits::{Network, parse_networks};

/// Publisher protection, the named limits and the metrics listener (see
/// docs/limits.md for each one's why, error and counter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    /// Networks whose peers may use the controller port and UDP publish.
    pub controller_allow: Vec<Network>,
    /// Seconds a controller connection may be silent; 0 = never closed.
    pub controller_idle_timeout: u64,
    pub controller_max_line: usize,
    pub max_channel_name_length: usize,
    pub max_channels_per_request: usize,
    /// Subscriber connections per client address; 0 = no limit.
    pub max_connections_per_ip: usize,
    pub max_header_bytes: usize,
    pub max_message_size: usize,
    pub metrics_ip: IpAddr,
    /// 0 = no metrics listener.
    pub metrics_port: u16,
    /// Largest client WebSocket message (bytes).
    pub websocket_max_message: usize,
    /// Client WebSocket frames per second.
    pub websocket_max_rate: u64,
}

/// Reads every ops parameter from `values` (strictly: a bad value names
/// its origin, parameter and value).
pub(super) fn build(values: &Values<'_>) -> Result<LimitSettings, ConfigError> {
    let size = |param| -> Result<usize, ConfigError> {
        let n = values.number(param)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    };
    Ok(LimitSettings {
        controller_allow: values.get(&p::CONTROLLER_ALLOW, parse_networks)?,
        controller_idle_timeout: values.number(&p::CONTROLLER_IDLE_TIMEOUT)?,
        controller_max_line: size(&p::CONTROLLER_MAX_LINE)?,
        max_channel_name_length: size(&p::MAX_CHANNEL_NAME_LENGTH)?,
        max_channels_per_request: size(&p::MAX_CHANNELS_PER_REQUEST)?,
        max_connections_per_ip: size(&p::MAX_CONNECTIONS_PER_IP)?,
        max_header_bytes: size(&p::MAX_HEADER_BYTES)?,
        max_message_size: size(&p::MAX_MESSAGE_SIZE)?,
        metrics_ip: values.ip(&p::METRICS_IP)?,
        metrics_port: values.plain_port(&p::METRICS_PORT)?,
        websocket_max_message: size(&p::WEBSOCKET_MAX_MESSAGE)?,
        websocket_max_rate: values.number(&p::WEBSOCKET_MAX_RATE)?,
    })
}
