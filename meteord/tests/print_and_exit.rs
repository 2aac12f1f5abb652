//! The print-and-exit flags of the real binary: `--version` (what the
//! Debian package's version check and admins read) and `-manpage` (the
//! meteord(8) page the package ships, generated from the parameter table).

use std::process::{Command, Output};

fn meteord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meteord"))
        .args(args)
        .output()
        .expect("meteord runs")
}

#[test]
fn version_prints_name_and_cargo_version() {
    for spelling in ["--version", "-version", "-v"] {
        let out = meteord(&[spelling]);
        assert!(out.status.success(), "{spelling}: {:?}", out.status);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("meteord {}\n", env!("CARGO_PKG_VERSION")),
            "{spelling}"
        );
        assert!(out.stderr.is_empty(), "{spelling}");
    }
}

#[test]
fn manpage_is_roff_listing_what_help_lists() {
    let out = meteord(&["-manpage"]);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        page.starts_with(&format!(
            ".TH METEORD 8 \"\" \"meteord {}\" \"System Administration\"\n.SH NAME\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        &page[..80.min(page.len())]
    );
    // Every parameter line of -help ("  -Name <kind>") has its entry.
    let help = String::from_utf8(meteord(&["-help"]).stdout).expect("utf-8");
    let names: Vec<&str> = help
        .lines()
        .filter_map(|l| l.strip_prefix("  -"))
        .filter_map(|l| l.split(' ').next())
        .filter(|n| n.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .collect();
    assert!(names.len() > 30, "{names:?}");
    for name in names {
        assert!(
            page.contains(&format!(".TP\n\\fB\\-{name}\\fR ")),
            "{name} missing from the man page"
        );
    }
}
