//! `cargo xtask`: zab's chores, with no dependencies beyond std.
//!
//! * `cargo xtask test` installs the system packages a fresh Debian machine
//!   lacks (RocksDB, libclang for bindgen, ZooKeeper's own clients for the
//!   compatibility tests), then runs the whole test suite.
//! * `cargo xtask cluster` starts zab servers on 127.0.0.1 and stops them on
//!   Ctrl-C.
//! * `cargo xtask bench` runs the `zab-load` generator, or compares a zab
//!   ensemble with a ZooKeeper one under the same loads.
//! * `cargo xtask deps` only installs the system packages.

mod bench;
mod cluster;
mod disk_space;
mod four_letter;
mod stages;
mod system;

use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test [-- <cargo test args>]   install missing system packages, run every test
  cluster [options]             start a local zab cluster on 127.0.0.1 (see `cluster --help`)
  bench [options]               load generator; `--compare zookeeper` side by side (see `bench --help`)
  deps                          install missing system packages only
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match cmd.as_str() {
        "test" => test(rest),
        "cluster" => cluster::run(rest),
        "bench" => bench::run(rest),
        "deps" => system::ensure_packages(),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs every test of the workspace (unit, property, end-to-end and the
/// compatibility tests with ZooKeeper's own clients).
fn test(extra: &[String]) -> Result<(), String> {
    system::ensure_packages()?;
    disk_space::check(&cluster::target_dir())?;
    let extra: Vec<&String> = extra.iter().skip_while(|a| *a == "--").collect();
    let status = cargo()
        .args(["test", "--workspace", "--locked"])
        .args(extra)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo test failed ({status})"));
    }
    lean_crates()
}

/// The crates a user may take alone, built as such: zab-wire without its
/// tonic services and zab-election without its transport, with their
/// tests (the workspace's own build unifies those features on).
fn lean_crates() -> Result<(), String> {
    for args in [
        &["test", "--locked", "-p", "zab-wire", "--lib"][..],
        &[
            "test",
            "--locked",
            "-p",
            "zab-election",
            "--no-default-features",
        ],
    ] {
        let status = cargo()
            .args(args)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("cargo {} failed ({status})", args.join(" ")));
        }
    }
    Ok(())
}
