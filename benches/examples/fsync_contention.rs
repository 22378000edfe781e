//! What a synced append costs when the servers of one ensemble share a
//! disk, as `cargo xtask bench`'s three nodes do: `N` threads each append
//! a small record to their own file and `fdatasync` it, all at once, round
//! after round, and the program reports when the first and the quorum-th
//! (⌊N/2⌋+1) of them were done. The quorum-th is what a one-client write
//! waits for (issue 4's set 1×1 target).
//!
//! Four layouts: `append`, where every sync also writes the inode for
//! the file's new size; `prealloc`, the file first given its blocks with
//! `fallocate(FALLOC_FL_KEEP_SIZE)` — what RocksDB does for its WAL: the
//! size still grows, and the blocks are unwritten extents a write must
//! convert; `overwrite`, where the file was filled with zeros first, so
//! a sync writes the data alone (what a recycled or zero-padded log, such
//! as ZooKeeper's, does); and `direct`, the same zero-filled file written
//! with `O_DIRECT | O_DSYNC` (no page cache, no separate `fdatasync`;
//! records padded to 4 KiB). Each writer also reports the CPU time and the
//! voluntary context switches its syncs cost (`getrusage` of its thread).
//!
//! ```sh
//! cargo run --release -p zab-benches --example fsync_contention -- \
//!     [--dir DIR] [--rounds N] [--record-bytes B]
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Bytes per append by default: a setData txn of 100 bytes with its
/// header. (Under load a group of ≈ 180 such txns, ≈ 30 KB, is one sync.)
const RECORD: usize = 200;
/// Size of a preallocated file; a run must not write past it.
const PREALLOCATED: usize = 64 << 20;
/// `direct` layout: records padded to this, written at offsets aligned to it.
const DIRECT_ALIGN: usize = 4096;

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Append,
    Prealloc,
    Overwrite,
    Direct,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Append => "append",
            Layout::Prealloc => "prealloc",
            Layout::Overwrite => "overwrite",
            Layout::Direct => "direct",
        }
    }
}

struct Args {
    dir: PathBuf,
    rounds: usize,
    record: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: std::env::temp_dir(),
        rounds: 2000,
        record: RECORD,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => args.dir = PathBuf::from(value()?),
            "--rounds" => args.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--record-bytes" => {
                args.record = value()?
                    .parse()
                    .map_err(|e| format!("--record-bytes: {e}"))?
            }
            "-h" | "--help" => {
                return Err(
                    "usage: fsync_contention [--dir DIR] [--rounds N (default 2000)] \
                            [--record-bytes B (default 200)]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    // The `direct` layout pads every record to a block.
    let padded = args.record.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
    if args.record == 0 || args.rounds == 0 || args.rounds * padded > PREALLOCATED {
        return Err(format!(
            "--rounds × --record-bytes must be between 1 and {PREALLOCATED}"
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
    if layout == Layout::Prealloc {
        use std::os::fd::AsRawFd;
        // SAFETY: fallocate(2) on a file descriptor we own.
        let r = unsafe {
            libc::fallocate(
                f.as_raw_fd(),
                libc::FALLOC_FL_KEEP_SIZE,
                0,
                PREALLOCATED as libc::off_t,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    if matches!(layout, Layout::Overwrite | Layout::Direct) {
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..PREALLOCATED / zeros.len() {
            f.write_all(&zeros)?;
        }
        f.sync_all()?;
        f.seek(SeekFrom::Start(0))?;
    }
    if layout == Layout::Direct {
        use std::os::unix::fs::OpenOptionsExt;
        f = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
            .open(dir.join(format!("log-{i}")))?;
    }
    Ok(f)
}

/// The calling thread's CPU time (user + system) and voluntary context
/// switches so far.
fn thread_usage() -> (Duration, u64) {
    // SAFETY: getrusage(2) fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(u.ru_utime) + tv(u.ru_stime), u.ru_nvcsw as u64)
}

/// What a run measured.
struct Measured {
    /// Completion times of each round's syncs, from the round's start,
    /// sorted.
    rounds: Vec<Vec<Duration>>,
    /// Per sync, averaged over the writers: CPU time and voluntary context
    /// switches.
    cpu_per_sync: Duration,
    switches_per_sync: f64,
}

fn run(
    dir: &Path,
    writers: usize,
    layout: Layout,
    rounds: usize,
    record: usize,
) -> std::io::Result<Measured> {
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
            std::thread::spawn(move || -> std::io::Result<(Duration, u64)> {
                let record = vec![b'x'; record];
                // O_DIRECT wants buffer, length and offset aligned to the
                // block size: the record padded to 4 KiB in an aligned buffer.
                let padded = record.len().div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
                let mut aligned = vec![0u8; padded + DIRECT_ALIGN];
                let skew = aligned.as_ptr().align_offset(DIRECT_ALIGN);
                let aligned = &mut aligned[skew..skew + padded];
                aligned[..record.len()].copy_from_slice(&record);
                let (cpu0, switches0) = thread_usage();
                for round in 0..rounds {
                    start.wait();
                    if layout == Layout::Direct {
                        use std::os::unix::fs::FileExt;
                        f.write_all_at(aligned, (round * padded) as u64)?;
                    } else {
                        f.write_all(&record)?;
                        f.sync_data()?;
                    }
                    let at = begun.lock().expect("not poisoned").elapsed();
                    done.lock().expect("not poisoned").push(at);
                    end.wait();
                }
                let (cpu1, switches1) = thread_usage();
                Ok((cpu1 - cpu0, switches1 - switches0))
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
    let (mut cpu, mut switches) = (Duration::ZERO, 0);
    for h in handles {
        let (c, s) = h.join().expect("writer thread panicked")?;
        cpu += c;
        switches += s;
    }
    let syncs = (writers * rounds) as u32;
    Ok(Measured {
        rounds: out,
        cpu_per_sync: cpu / syncs,
        // The barriers' waits count too: one or two switches a round.
        switches_per_sync: switches as f64 / syncs as f64,
    })
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
        "{} synced appends of {} B per writer, each writer its own file, in {}",
        args.rounds,
        args.record,
        args.dir.display()
    );
    println!(
        "{:<10} {:>7} | {:>14} {:>14} | {:>14} {:>14} | {:>12} {:>12}",
        "layout",
        "writers",
        "first p50 µs",
        "first p90 µs",
        "quorum p50 µs",
        "quorum p90 µs",
        "CPU µs/sync",
        "switches/sync"
    );
    for writers in [1, 3] {
        for layout in [
            Layout::Append,
            Layout::Prealloc,
            Layout::Overwrite,
            Layout::Direct,
        ] {
            let measured = match run(dir.path(), writers, layout, args.rounds, args.record) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}: {e}", dir.path().display());
                    std::process::exit(1);
                }
            };
            let nth = |k: usize| {
                let mut v: Vec<Duration> = measured
                    .rounds
                    .iter()
                    .filter_map(|r| r.get(k).copied())
                    .collect();
                v.sort();
                v
            };
            let (first, quorum) = (nth(0), nth(writers / 2));
            println!(
                "{:<10} {:>7} | {:>14.0} {:>14.0} | {:>14.0} {:>14.0} | {:>12.0} {:>12.1}",
                layout.name(),
                writers,
                percentile(&first, 0.5),
                percentile(&first, 0.9),
                percentile(&quorum, 0.5),
                percentile(&quorum, 0.9),
                measured.cpu_per_sync.as_secs_f64() * 1e6,
                measured.switches_per_sync,
            );
        }
    }
}
