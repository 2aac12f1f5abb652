//! The text exposition format (Prometheus 0.0.4): for each family a
//! `# HELP` and a `# TYPE` line, then one line per sample. Pure.

use std::fmt::Write;

/// Counter or gauge: the two types the daemon exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
}

/// One metric family: its name, help, type and samples (each an optional
/// `label="value"` pair and a value).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Type,
    pub samples: Vec<(Option<(&'static str, String)>, u64)>,
}

impl Family {
    /// A family of one unlabelled sample.
    pub fn single(name: &'static str, help: &'static str, kind: Type, value: u64) -> Family {
        Family {
            name,
            help,
            kind,
            samples: vec![(None, value)],
        }
    }

    /// A family with one sample per `(label value, value)`.
    pub fn labelled(
        name: &'static str,
        help: &'static str,
        kind: Type,
        label: &'static str,
        samples: impl IntoIterator<Item = (String, u64)>,
    ) -> Family {
        Family {
            name,
            help,
            kind,
            samples: samples
                .into_iter()
                .map(|(value, n)| (Some((label, value)), n))
                .collect(),
        }
    }
}

/// A label value with `\`, `"` and line ends escaped, as the format asks.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// The exposition of `families`, in order.
pub fn render(families: &[Family]) -> String {
    let mut out = String::with_capacity(4096);
    for f in families {
        let kind = match f.kind {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {kind}", f.name);
        for (label, value) in &f.samples {
            match label {
                Some((key, v)) => {
                    let _ = writeln!(out, "{}{{{key}=\"{}\"}} {value}", f.name, escape(v));
                }
                None => {
                    let _ = writeln!(out, "{} {value}", f.name);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_with_help_type_and_samples() {
        let families = [
            Family::single("meteord_channels", "Channels.", Type::Gauge, 3),
            Family::labelled(
                "meteord_closes_total",
                "Closes.",
                Type::Counter,
                "reason",
                [("lagged".to_owned(), 1), ("a\"b\\c\nd".to_owned(), 2)],
            ),
        ];
        assert_eq!(
            render(&families),
            "# HELP meteord_channels Channels.\n\
             # TYPE meteord_channels gauge\n\
             meteord_channels 3\n\
             # HELP meteord_closes_total Closes.\n\
             # TYPE meteord_closes_total counter\n\
             meteord_closes_total{reason=\"lagged\"} 1\n\
             meteord_closes_total{reason=\"a\\\"b\\\\c\\nd\"} 2\n"
        );
    }
}
