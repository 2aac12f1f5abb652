//! What a streaming subscriber asked for, kept with its connection for
//! LISTSUBSCRIBERS / DESCRIBE, the hostid rules and the clock's MaxTime.

/// Longest user agent kept for LISTSUBSCRIBERS / DESCRIBE.
const MAX_USER_AGENT: usize = 256;

/// What a streaming subscriber asked for (set once the request is parsed).
/// The three strings share one allocation: there is one of these per idle
/// subscriber.
#[derive(Debug)]
pub struct StreamDetails {
    /// hostid, mode and user agent, concatenated.
    text: Box<str>,
    hostid_len: u16,
    mode_len: u16,
    /// `MaxTime` of its mode, seconds (0 = none).
    pub max_time: u64,
    pub persist: bool,
}

impl StreamDetails {
    pub fn new(
        hostid: &str,
        mode: &str,
        user_agent: &str,
        max_time: u64,
        persist: bool,
    ) -> StreamDetails {
        // Both come from a request line bounded far below 64 KiB.
        let hostid = &hostid[..hostid.len().min(u16::MAX as usize)];
        let mode = &mode[..mode.len().min(u16::MAX as usize)];
        let mut cut = user_agent.len().min(MAX_USER_AGENT);
        while !user_agent.is_char_boundary(cut) {
            cut -= 1;
        }
        StreamDetails {
            text: [hostid, mode, &user_agent[..cut]].concat().into_boxed_str(),
            hostid_len: hostid.len() as u16,
            mode_len: mode.len() as u16,
            max_time,
            persist,
        }
    }

    pub fn hostid(&self) -> &str {
        &self.text[..self.hostid_len as usize]
    }

    pub fn mode(&self) -> &str {
        let start = self.hostid_len as usize;
        &self.text[start..start + self.mode_len as usize]
    }

    pub fn user_agent(&self) -> &str {
        &self.text[(self.hostid_len + self.mode_len) as usize..]
    }
}
