//! The meteord(8) manual page, written in roff from the parameter table
//! that `-help` prints, so the two cannot drift: a parameter added to
//! [`params::PARAMS`] is in the next build's man page with its placeholder,
//! `[mode]` mark, description and default. `meteord -manpage` prints it;
//! the Debian package build (packaging/build-debs.sh) runs exactly that.
//!
//! Signals, files and exit codes are not in the table; they are written out
//! here, next to the one generator, and describe the packaged layout.

use super::params::{self, Param};

/// The manual page, in roff (`man 7 groff_man`).
pub(crate) fn man_page() -> String {
    let mut out = String::new();
    out.push_str(&format!(
        ".TH METEORD 8 \"\" \"meteord {}\" \"System Administration\"\n",
        env!("CARGO_PKG_VERSION")
    ));
    out.push_str(HEAD);
    for p in params::sorted() {
        parameter(&mut out, p);
    }
    out.push_str(TAIL);
    out
}

/// One `.TP` entry: `-Name <placeholder> [mode]`, the description, the
/// default exactly as it would be written in the file.
fn parameter(out: &mut String, p: &Param) {
    out.push_str(".TP\n");
    out.push_str(&format!(
        "\\fB\\-{}\\fR \\fI{}\\fR{}\n",
        p.name,
        escape(p.kind.placeholder()),
        if p.per_mode { "  [mode]" } else { "" }
    ));
    out.push_str(&text_line(
        &p.help.split_whitespace().collect::<Vec<_>>().join(" "),
    ));
    out.push_str(".br\n");
    if p.default.is_empty() {
        out.push_str("Default: (empty)\n");
    } else {
        out.push_str(&format!("Default: \\f(CR{}\\fR\n", escape(p.default)));
    }
}

/// A line of running text: escaped, and protected from being read as a
/// request when it starts with `.` or `'`.
fn text_line(text: &str) -> String {
    let escaped = escape(text);
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}\n")
    } else {
        format!("{escaped}\n")
    }
}

/// roff escapes: a backslash is `\e`, a minus sign `\-` (so options and
/// `-- ` values copy and paste as ASCII hyphen-minus).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            c => out.push(c),
        }
    }
    out
}

const HEAD: &str = r#".SH NAME
meteord \- Meteor\-compatible Comet (server push) daemon
.SH SYNOPSIS
.B meteord
[\fB\-\fIName value\fR]...
.br
.B meteord
.BR \-help " | " \-version " | " \-manpage
.SH DESCRIPTION
.B meteord
holds HTTP connections from web browsers (subscribers) open and streams
to them the messages that publishers add to channels through the
controller port (\fBADDMESSAGE\fR \fIchannel text\fR). It speaks the
protocol of the Perl Meteor server: subscribers request
\fI/push/<hostid>/<mode>/<channel>\fR[\fI.r<id>\fR|\fI.b<n>\fR|\fI.h\fR]...
and get the response shaped by that mode's templates (iframe,
xhrinteractive, longpoll, smartpoll, simplepoll, flash in the shipped
configuration). Any other path is a static file from
\fBSubscriberDocumentRoot\fR (\fImeteor.js\fR, \fIstream.html\fR).
.PP
The configuration file (\fB\-ConfigFileLocation\fR, default
\fI/etc/meteord.conf\fR) has one \fIName value\fR per line and \fI[mode]\fR
sections; the parameters marked [mode] below may appear in a section and
then apply to that mode only. When no file exists there, meteord reads its
built\-in copy of the shipped, commented configuration instead. Every
parameter may also be given on the command line as \fB\-\fIName value\fR
(names case\-insensitive and shortened to any unique prefix, a prefix
meaning what it meant in the original Meteor), or as
\fB\-\fIName.mode value\fR for one mode; a name followed by another
\fB\-\fIName\fR, or by nothing, gets the value 1. The command line wins
over the file. Values understand the escapes \er \en \et \es (space) \e0
(NUL) and \e\e; a value starting with \-\- loses one dash.
.PP
meteord detaches unless \fBForeground\fR or \fBDebug\fR is set or it is
started by systemd (\fBNOTIFY_SOCKET\fR is set); it then reports readiness
only after both ports are bound. Started as root with \fBUser\fR set, it
binds the ports first and then switches to that user.
.SH OPTIONS
.TP
.B \-d
Same as \fB\-Debug\fR (\fBDebug\fR 1).
.TP
.BR \-help ", " \-h ", " \-\-help
Print every parameter with its description and default, and exit.
.TP
.BR \-v ", " \-version ", " \-\-version
Print the version and exit (\fB\-v\fR to \fB\-version\fR anywhere on the
command line).
.TP
.B \-manpage
Print this manual page (roff) and exit.
.SH PARAMETERS
"#;

const TAIL: &str = r#".SH SIGNALS
.TP
.B SIGHUP
Re\-read the configuration file (the command line's parameters are applied
again), reopen the log file and drop the document cache. Connected
subscribers stay connected and get the new templates. A file with an error
is refused, logged, and the running configuration kept.
.TP
.B SIGUSR1
Forget every channel's message history (message ids continue).
.TP
.B SIGUSR2
Drop the document cache.
.TP
.BR SIGTERM ", " SIGINT
Send every subscriber its \fBSubscriberShutdownMsg\fR and the footer,
every controller connection \fBControllerShutdownMsg\fR, let the buffers
drain for up to \fBShutdownTimeout\fR seconds, and exit 0. A second one
exits at once with status 1.
.SH FILES
.TP
.I /etc/meteord.conf
The configuration file (a conffile of the package: upgrades keep your
edits).
.TP
.I /etc/default/meteord
Settings of the SysV init script \fI/etc/init.d/meteord\fR (user, pid file,
extra parameters, open\-files limit).
.TP
.I /usr/lib/systemd/system/meteord.service
The systemd unit; change it with \fBsystemctl edit meteord\fR.
.TP
.I /var/lib/meteord/
State directory, owned by the \fBmeteord\fR user: \fImeteord.state\fR keeps
the message\-id high\-water mark (\fBStateFile\fR) so ids never go back
across a restart.
.TP
.I /usr/share/meteord/public/
The documents served to browsers (\fBSubscriberDocumentRoot\fR):
\fImeteor.js\fR, \fIstream.html\fR.
.TP
.I /run/meteord/meteord.pid
Pid file written by the SysV init script.
.TP
.I /var/log/meteord/
Directory for \fBLogFilename\fR, if you log to a file instead of syslog
(\fBSyslogFacility none\fR; rotated by \fI/etc/logrotate.d/meteord\fR).
.TP
.I /etc/apache2/sites\-available/meteord\-push.conf
Apache virtual host that reverse\-proxies the push host name to the
subscriber port (\fBa2ensite meteord\-push\fR).
.SH EXIT STATUS
0 after a clean shutdown, 64 for a bad command line or configuration
(the message names the parameter, file and line), 1 for any other failure
to start (such as a port in use).
.SH SEE ALSO
.BR fcgi\-chat (8),
.BR systemctl (1),
.BR invoke\-rc.d (8),
.I /usr/share/doc/meteord/
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_has_its_entry_description_and_default() {
        let page = man_page();
        for p in params::PARAMS {
            let head = format!(
                ".TP\n\\fB\\-{}\\fR \\fI{}\\fR",
                p.name,
                escape(p.kind.placeholder())
            );
            let at = page
                .find(&head)
                .unwrap_or_else(|| panic!("{} has no entry", p.name));
            let entry = &page[at..];
            let entry = &entry[..entry.find("Default:").expect("a default line")];
            assert_eq!(entry.contains("[mode]"), p.per_mode, "{}", p.name);
            let first_word = escape(p.help.split_whitespace().next().expect("help"));
            assert!(
                entry.contains(&first_word),
                "{} lacks its description",
                p.name
            );
            let default = if p.default.is_empty() {
                "Default: (empty)\n".to_string()
            } else {
                format!("Default: \\f(CR{}\\fR\n", escape(p.default))
            };
            assert!(
                page[at..].contains(&default),
                "{} lacks its default",
                p.name
            );
        }
    }

    #[test]
    fn escapes_backslashes_and_minus_signs() {
        assert_eq!(escape(r"a\r\n-b"), r"a\er\en\-b");
        assert_eq!(text_line(".r<id> requests"), "\\&.r<id> requests\n");
        let page = man_page();
        assert!(
            page.contains(r"Default: \f(CRHTTP/1.1 ~status~\er\en\er\en~channelinfo~\er\en\fR")
        );
    }

    #[test]
    fn no_line_is_a_stray_request() {
        // Every line starting with "." must be one of the macros we use.
        const MACROS: [&str; 8] = [".TH ", ".SH ", ".TP", ".B ", ".BR ", ".I ", ".PP", ".br"];
        for line in man_page().lines().filter(|l| l.starts_with('.')) {
            assert!(
                MACROS.iter().any(|m| line.starts_with(m)),
                "unexpected request line: {line}"
            );
        }
    }

    #[test]
    fn names_every_signal_and_the_packaged_files() {
        let page = man_page();
        for needle in [
            "SIGHUP",
            "SIGUSR1",
            "SIGUSR2",
            "SIGTERM",
            "SIGINT",
            "/etc/meteord.conf",
            "/etc/default/meteord",
            "/var/lib/meteord/",
            "/usr/share/meteord/public/",
        ] {
            assert!(page.contains(needle), "{needle} missing");
        }
        assert!(page.starts_with(".TH METEORD 8 "));
    }
}
