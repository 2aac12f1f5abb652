//! The cluster's data in Redis and the Lua that changes it, so that taking
//! an id, storing the message and trimming happen as one step no other
//! node can interleave with.
//!
//! Keys (all under the hash tag `{m}`, so Redis Cluster keeps them in one
//! slot, the price of one sequence for everything):
//! - `meteord:{m}:seq`: the last id handed out;
//! - `meteord:{m}:log`: a stream of every message, entry id `<id>-0`,
//!   fields `p` (the id of the entry before it, 0 for the first), `c`
//!   (channel), `t` (milliseconds), `d` (text), trimmed to about
//!   [`LOG_KEEP`] entries; every node tails it, and `p` tells it exactly
//!   when it missed something (the log trimmed past it, or a Redis that
//!   lost its data starting a new log);
//! - `meteord:{m}:h:<channel>`: the channel's history, the same entry ids,
//!   fields `t` and `d`, trimmed to MaxMessagesPerChannel and MaxMessageAge;
//!   what a late node or one that fell behind the log loads.
//!
//! Lua numbers are doubles: ids stay exact below 2^53 (the clock-based
//! floor is about 1.8e15 for this century) and are formatted with `%d`, as
//! plain `tostring` would write them in exponent form.

use ::redis::Script;

/// Prefix of every key.
pub const PREFIX: &str = "meteord:{m}:";
/// Entries kept in the shared log: what a node may fall behind by (an
/// outage of its own, a slow feed) and still catch up from the log alone;
/// further behind, it reloads the channel histories.
pub const LOG_KEEP: u64 = 100_000;

pub fn seq_key() -> String {
    format!("{PREFIX}seq")
}

pub fn log_key() -> String {
    format!("{PREFIX}log")
}

/// The history key of `channel` (channel names are arbitrary bytes).
pub fn history_key(channel: &[u8]) -> Vec<u8> {
    let mut key = format!("{PREFIX}h:").into_bytes();
    key.extend_from_slice(channel);
    key
}

/// The SCAN pattern of every history key, and the channel a key names.
pub fn history_pattern() -> String {
    format!("{PREFIX}h:*")
}

pub fn channel_of(key: &[u8]) -> Option<&[u8]> {
    key.strip_prefix(format!("{PREFIX}h:").as_bytes())
        .filter(|c| !c.is_empty())
}

/// KEYS: sequence, log, history. ARGV: channel, text, milliseconds, floor,
/// keep (MaxMessagesPerChannel; -1 = no limit, 0 = keep none), log size,
/// MaxMessageAge seconds. Returns the id as a decimal string.
///
/// The id is one above the highest of: the stored sequence, the floor the
/// node sends (the highest id it has seen, so a Redis that lost its data
/// never hands out an id again), and the log's last entry (XADD refuses an
/// id at or below it). Age trimming removes at most 16 entries per publish:
/// enough to keep up with any publish rate, and a bound on the script's run.
const PUBLISH: &str = r"
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[4])
if floor > seq then seq = floor end
local prev = 0
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
if top then
  prev = tonumber(string.match(top[1], '^(%d+)'))
  if prev > seq then seq = prev end
end
seq = string.format('%d', seq + 1)
redis.call('SET', KEYS[1], seq)
local id = seq .. '-0'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], id, 'p', string.format('%d', prev),
  'c', ARGV[1], 't', ARGV[3], 'd', ARGV[2])
local keep = tonumber(ARGV[5])
if keep ~= 0 then
  if keep > 0 then
    redis.call('XADD', KEYS[3], 'MAXLEN', keep, id, 't', ARGV[3], 'd', ARGV[2])
  else
    redis.call('XADD', KEYS[3], id, 't', ARGV[3], 'd', ARGV[2])
  end
  local max_age = tonumber(ARGV[7])
  local cutoff = tonumber(ARGV[3]) - max_age * 1000
  for _ = 1, 16 do
    local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
    if not first or tonumber(first[2][2]) >= cutoff then break end
    redis.call('XDEL', KEYS[3], first[1])
  end
  redis.call('EXPIRE', KEYS[3], max_age + 120)
end
return seq
";

/// KEYS: sequence. ARGV: floor. Raises the sequence to the floor (never
/// lowers it); returns the sequence. A node runs it on every (re)connect,
/// before it publishes, so a Redis restarted empty continues above every
/// id the node has seen.
const RAISE: &str = r"
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if floor > seq then
  seq = floor
  redis.call('SET', KEYS[1], string.format('%d', seq))
end
return string.format('%d', seq)
";

/// The two scripts, hashed once.
#[derive(Debug)]
pub struct Scripts {
    pub publish: Script,
    pub raise: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            publish: Script::new(PUBLISH),
            raise: Script::new(RAISE),
        }
    }
}

/// What the publish script takes besides the keys.
#[derive(Debug, Clone, Copy)]
pub struct PublishArgs {
    pub millis: u64,
    pub floor: u64,
    /// MaxMessagesPerChannel as the daemon holds it (`usize::MAX` = no
    /// limit).
    pub keep: usize,
    pub max_age: u64,
}

impl PublishArgs {
    /// `keep` in the script's terms.
    pub fn keep_arg(&self) -> i64 {
        if self.keep == usize::MAX {
            -1
        } else {
            i64::try_from(self.keep).unwrap_or(i64::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keys_round_trip_any_channel_bytes() {
        let key = history_key(b"chat room\xff");
        assert_eq!(key, b"meteord:{m}:h:chat room\xff");
        assert_eq!(channel_of(&key), Some(&b"chat room\xff"[..]));
        assert_eq!(channel_of(b"meteord:{m}:h:"), None);
        assert_eq!(channel_of(b"other:h:x"), None);
    }

    #[test]
    fn keep_means_what_max_messages_per_channel_means() {
        let args = |keep| PublishArgs {
            millis: 0,
            floor: 0,
            keep,
            max_age: 0,
        };
        assert_eq!(args(usize::MAX).keep_arg(), -1);
        assert_eq!(args(0).keep_arg(), 0);
        assert_eq!(args(250).keep_arg(), 250);
    }
}
