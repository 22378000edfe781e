//! The date `srvr`, `stat`, `envi`, `mntr` and `zab-server --version` give
//! after "built on". A reproducible build must not read the clock, so it
//! is the source's date, as the Reproducible Builds convention has it:
//! `SOURCE_DATE_EPOCH` when the builder sets it (Debian's packaging does),
//! else the time of the commit being built, else nothing (the server then
//! says the Unix epoch). `ZAB_BUILD_DATE`, read by the crate itself,
//! overrides all of them with a date already written out.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=ZAB_BUILD_DATE");
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse::<i64>().ok(),
        Err(_) => commit_time(&here),
    };
    if let Some(secs) = secs {
        println!("cargo:rustc-env=ZAB_SOURCE_DATE_EPOCH={secs}");
    }
}

/// The committer time of `HEAD` in the git checkout around `dir`, with the
/// files whose change means another commit registered for a rerun.
fn commit_time(dir: &Path) -> Option<i64> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let secs = git(&["log", "-1", "--format=%ct"])?.parse().ok()?;
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        // A missing file would make cargo run this script on every build.
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    Some(secs)
}
