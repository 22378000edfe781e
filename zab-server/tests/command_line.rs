//! The `zab-server` binary's own command line: `--version` and `--help`
//! answer and exit 0, and anything it does not know is refused with the
//! usage and exit code 2, never read as a zoo.cfg path.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zab-server"))
        .args(args)
        .env("ZAB_LOG", "error")
        .output()
        .expect("run zab-server")
}

#[test]
fn version_and_help_answer_and_exit_0() {
    for flag in ["--version", "-V"] {
        let out = run(&[flag]);
        assert!(out.status.success(), "{flag}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("zab-server, version 3.8.0-zab-") && text.contains(", built on "),
            "{flag}: {text}"
        );
    }
    for flag in ["--help", "-h"] {
        let out = run(&[flag]);
        assert!(out.status.success(), "{flag}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("usage: zab-server path/to/zoo.cfg")
        );
    }
}

#[test]
fn unknown_options_and_no_arguments_get_the_usage_and_exit_2() {
    for args in [
        &["--bogus"][..],
        &[],
        &["a", "b"],
        &["--import-zookeeper", "dir"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("usage: zab-server path/to/zoo.cfg"),
            "{args:?}: {err}"
        );
    }
}
