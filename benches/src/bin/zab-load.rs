//! `zab-load`: drives a ZooKeeper-compatible ensemble with pipelined
//! sessions and reports throughput and latency percentiles.
//!
//! ```text
//! zab-load --hosts 127.0.0.1:2181,127.0.0.1:2182 --clients 32 --inflight 8 \
//!          --op set --value-size 100 --duration 15 --json set.json
//! ```
//!
//! `cargo xtask bench` builds this binary in release and runs it, alone or
//! against a zab and a ZooKeeper ensemble side by side.

#[path = "../load/mod.rs"]
mod load;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let opts = load::options::Options::parse();
    let mut rt = if opts.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(opts.threads);
        b
    };
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zab-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(load::run::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zab-load: {e}");
            ExitCode::FAILURE
        }
    }
}
