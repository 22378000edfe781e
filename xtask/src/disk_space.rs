//! Free disk space before the tests run.
//!
//! The tests open hundreds of RocksDB stores under the temporary directory.
//! Debian's `librocksdb` is built with assertions on: after a write that
//! failed for want of space, the next write on that file aborts the whole
//! test binary with `Assertion 'sync_without_flush_called_' failed`, which
//! names neither the disk nor the test (a CI run ended so, most likely on
//! a full disk). So `cargo xtask test` first says how much room there is,
//! gives back cargo's incremental caches when it is short (cargo rebuilds
//! them), and stops with a plain message if that is still not enough.

use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;
/// Below this much free space, the incremental caches go.
const TRIM_BELOW: u64 = 2048 * MIB;
/// Below this much free space, the tests are not started. A whole run of
/// the suite held about 85 MiB of stores and logs under the temporary
/// directory at its peak (sampled every 2 s, 2026-12-07; 640 MiB before
/// zab-store capped RocksDB's WAL preallocation); this leaves room for the
/// build's own output.
const REFUSE_BELOW: u64 = 256 * MIB;

/// Checks the room for build output and for the tests' temporary files.
pub fn check(target_dir: &Path) -> Result<(), String> {
    let temp_dir = std::env::temp_dir();
    let report = |what: &str, dir: &Path| {
        let free = free_bytes(dir);
        match free {
            Some(free) => eprintln!(
                "xtask: {} MiB free for {what} ({})",
                free / MIB,
                dir.display()
            ),
            None => eprintln!("xtask: cannot tell the free space for {what}"),
        }
        free
    };
    let short = |free: Option<u64>, below: u64| free.is_some_and(|f| f < below);
    let mut target_free = report("build output", target_dir);
    let mut temp_free = report("temporary files", &temp_dir);
    if short(target_free, TRIM_BELOW) || short(temp_free, TRIM_BELOW) {
        let freed = trim_incremental(target_dir);
        eprintln!(
            "xtask: short of disk space: removed cargo's incremental caches ({} MiB)",
            freed / MIB
        );
        target_free = report("build output", target_dir);
        temp_free = report("temporary files", &temp_dir);
    }
    for (free, dir) in [(target_free, target_dir), (temp_free, temp_dir.as_path())] {
        if short(free, REFUSE_BELOW) {
            return Err(format!(
                "only {} MiB free under {}: the tests' RocksDB stores would fail \
                 to write (and Debian's RocksDB aborts on that); free some space",
                free.unwrap_or(0) / MIB,
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Free bytes on the file system holding `dir` (or its nearest existing
/// ancestor), as `df` reports them to an unprivileged user.
fn free_bytes(dir: &Path) -> Option<u64> {
    let existing = dir.ancestors().find(|d| d.exists())?;
    let out = Command::new("df").arg("-Pk").arg(existing).output().ok()?;
    if !out.status.success() {
        return None;
    }
    parse_df_available(&String::from_utf8_lossy(&out.stdout))
}

/// The "Available" column of `df -Pk`'s one data line, in bytes.
fn parse_df_available(out: &str) -> Option<u64> {
    let line = out.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

/// Removes `<target>/<profile>/incremental` for every profile; returns the
/// bytes freed.
fn trim_incremental(target_dir: &Path) -> u64 {
    let Ok(profiles) = std::fs::read_dir(target_dir) else {
        return 0;
    };
    let mut freed = 0;
    for profile in profiles.flatten() {
        let dir: PathBuf = profile.path().join("incremental");
        if dir.is_dir() {
            let size = tree_size(&dir);
            if std::fs::remove_dir_all(&dir).is_ok() {
                freed += size;
            }
        }
    }
    freed
}

fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_available_column_of_df() {
        let out = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                   /dev/vda         263112772 12582912  83886080      14% /\n";
        assert_eq!(parse_df_available(out), Some(83_886_080 * 1024));
        assert_eq!(parse_df_available("Filesystem 1024-blocks\n"), None);
        assert_eq!(parse_df_available(""), None);
        assert_eq!(
            parse_df_available("h\n/dev/x 1 2 lots 3% /\n"),
            None,
            "a column that is not a number"
        );
    }

    #[test]
    fn trimming_removes_only_incremental_caches() {
        let target = tempfile_dir("trim");
        for profile in ["debug", "release"] {
            std::fs::create_dir_all(target.join(profile).join("incremental/a")).unwrap();
            std::fs::write(target.join(profile).join("incremental/a/x"), [0u8; 1000]).unwrap();
            std::fs::create_dir_all(target.join(profile).join("deps")).unwrap();
            std::fs::write(target.join(profile).join("deps/keep"), [0u8; 10]).unwrap();
        }
        assert_eq!(trim_incremental(&target), 2000);
        for profile in ["debug", "release"] {
            assert!(!target.join(profile).join("incremental").exists());
            assert!(target.join(profile).join("deps/keep").exists());
        }
        std::fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn the_free_space_of_a_directory_not_yet_made_is_its_parents() {
        let missing = std::env::temp_dir().join("zab-xtask-no-such-dir/below");
        assert!(free_bytes(&missing).is_some());
    }

    /// xtask has no dependencies, so no `tempfile`: a directory named for
    /// the test and the process.
    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zab-xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
