//! What a synced append costs when the servers of one ensemble share a
//! disk, as `cargo xtask bench`'s three nodes do: `N` threads each append
//! a small record to their own file and `fdatasync` it, all at once, round
//! after round, and the program reports when the first and the quorum-th
//! (⌊N/2⌋+1) of them were done. The quorum-th is what a one-client write
//! waits for (issue 4's set 1×1 target).
//!
//! Two layouts: `append`, where every sync also writes the inode for the
//! file's new size (what RocksDB's WAL does: it grows the file), and
//! `overwrite`, where the file was filled with zeros first, so a sync
//! writes the data alone (what a recycled or zero-padded log does).
//!
//! ```sh
//! cargo run --release -p zab-benches --example fsync_contention -- [--dir DIR] [--rounds N]
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Bytes per append: a setData txn of 100 bytes with its header.
const RECORD: usize = 200;
/// Size of a preallocated file; a run must not write past it.
const PREALLOCATED: usize = 16 << 20;

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Append,
    Overwrite,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Append => "append",
            Layout::Overwrite => "overwrite",
        }
    }
}

struct Args {
    dir: PathBuf,
    rounds: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: std::env::temp_dir(),
        rounds: 2000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => args.dir = PathBuf::from(value()?),
            "--rounds" => args.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "-h" | "--help" => {
                return Err(
                    "usage: fsync_contention [--dir DIR] [--rounds N (default 2000)]".into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.rounds == 0 || args.rounds * RECORD > PREALLOCATED {
        return Err(format!(
            "--rounds must be between 1 and {}",
            PREALLOCATED / RECORD
        ));
    }
    Ok(args)
}

fn open(dir: &Path, i: usize, layout: Layout) -> std::io::Result<File> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join(format!("log-{i}")))?;
    if layout == Layout::Overwrite {
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..PREALLOCATED / zeros.len() {
            f.write_all(&zeros)?;
        }
        f.sync_all()?;
        f.seek(SeekFrom::Start(0))?;
    }
    Ok(f)
}

/// Completion times of each round's syncs, from the round's start, sorted.
fn run(
    dir: &Path,
    writers: usize,
    layout: Layout,
    rounds: usize,
) -> std::io::Result<Vec<Vec<Duration>>> {
    let files = (0..writers)
        .map(|i| open(dir, i, layout))
        .collect::<std::io::Result<Vec<_>>>()?;
    let start = Arc::new(Barrier::new(writers + 1));
    let end = Arc::new(Barrier::new(writers + 1));
    let begun = Arc::new(Mutex::new(Instant::now()));
    let done = Arc::new(Mutex::new(Vec::with_capacity(writers)));
    let handles: Vec<_> = files
        .into_iter()
        .map(|mut f| {
            let (start, end, begun, done) =
                (start.clone(), end.clone(), begun.clone(), done.clone());
            std::thread::spawn(move || -> std::io::Result<()> {
                let record = [b'x'; RECORD];
                for _ in 0..rounds {
                    start.wait();
                    f.write_all(&record)?;
                    f.sync_data()?;
                    let at = begun.lock().expect("not poisoned").elapsed();
                    done.lock().expect("not poisoned").push(at);
                    end.wait();
                }
                Ok(())
            })
        })
        .collect();
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        *begun.lock().expect("not poisoned") = Instant::now();
        start.wait();
        end.wait();
        let mut round = std::mem::take(&mut *done.lock().expect("not poisoned"));
        round.sort();
        out.push(round);
    }
    for h in handles {
        h.join().expect("writer thread panicked")?;
    }
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let dir = match tempfile::tempdir_in(&args.dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{}: {e}", args.dir.display());
            std::process::exit(1);
        }
    };
    println!(
        "{} synced appends of {RECORD} B per writer, each writer its own file, in {}",
        args.rounds,
        args.dir.display()
    );
    println!(
        "{:<10} {:>7} | {:>14} {:>14} | {:>14} {:>14}",
        "layout", "writers", "first p50 µs", "first p90 µs", "quorum p50 µs", "quorum p90 µs"
    );
    for writers in [1, 3] {
        for layout in [Layout::Append, Layout::Overwrite] {
            let rounds = match run(dir.path(), writers, layout, args.rounds) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}: {e}", dir.path().display());
                    std::process::exit(1);
                }
            };
            let nth = |k: usize| {
                let mut v: Vec<Duration> =
                    rounds.iter().filter_map(|r| r.get(k).copied()).collect();
                v.sort();
                v
            };
            let (first, quorum) = (nth(0), nth(writers / 2));
            println!(
                "{:<10} {:>7} | {:>14.0} {:>14.0} | {:>14.0} {:>14.0}",
                layout.name(),
                writers,
                percentile(&first, 0.5),
                percentile(&first, 0.9),
                percentile(&quorum, 0.5),
                percentile(&quorum, 0.9),
            );
        }
    }
}
