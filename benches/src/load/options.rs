//! The command line of `zab-load`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// What the timed phase sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OpKind {
    /// `create` of a new persistent node per request.
    Create,
    /// `setData` (version -1) on a random existing key.
    Set,
    /// `getData` (no watch) on a random existing key.
    Get,
    /// `getData` with probability `--read-ratio`, `setData` otherwise.
    Mixed,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Set => "set",
            OpKind::Get => "get",
            OpKind::Mixed => "mixed",
        }
    }
}

/// Load generator for ZooKeeper-compatible ensembles.
#[derive(Debug, Clone, Parser)]
#[command(name = "zab-load", version, about)]
pub struct Options {
    /// Servers, comma-separated host:port; sessions are spread round-robin.
    #[arg(long, default_value = "127.0.0.1:2181", value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Sessions (one TCP connection each).
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Outstanding requests per session.
    #[arg(long, default_value_t = 8)]
    pub inflight: usize,
    /// Operation of the timed phase.
    #[arg(long, value_enum, default_value_t = OpKind::Set)]
    pub op: OpKind,
    /// Fraction of reads for `--op mixed`.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Bytes of data per node (creates and sets).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Keys created before the timed phase (`/bench/k<i>`); sets and gets
    /// pick among them uniformly.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Seconds of the measured phase; 0 only creates the keys.
    #[arg(long, default_value_t = 15.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts (JIT, caches, connections).
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Requested session timeout, ms.
    #[arg(long, default_value_t = 30_000)]
    pub session_timeout: i32,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Name of the system under test, copied into the JSON.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Runtime worker threads (1 = a single-threaded runtime, which leaves
    /// the other core to the servers).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seed of the key and operation choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

impl Options {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.hosts.is_empty() {
            return Err("--hosts is empty".into());
        }
        if self.clients == 0 || self.inflight == 0 {
            return Err("--clients and --inflight must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err("--read-ratio must be within [0, 1]".into());
        }
        if !self.duration.is_finite() || self.duration < 0.0 {
            return Err("--duration must be a non-negative number of seconds".into());
        }
        if !self.warmup.is_finite() || self.warmup < 0.0 {
            return Err("--warmup must be a non-negative number of seconds".into());
        }
        if matches!(self.op, OpKind::Set | OpKind::Get | OpKind::Mixed)
            && self.keys == 0
            && self.duration > 0.0
        {
            return Err(format!(
                "--op {} needs --keys of at least 1",
                self.op.name()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_issue_flags() {
        let o = Options::try_parse_from([
            "zab-load",
            "--hosts",
            "127.0.0.1:1,127.0.0.1:2",
            "--clients",
            "4",
            "--inflight",
            "2",
            "--op",
            "mixed",
            "--read-ratio",
            "0.5",
            "--value-size",
            "10",
            "--duration",
            "1.5",
        ])
        .unwrap();
        assert_eq!(o.hosts, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!((o.clients, o.inflight, o.value_size), (4, 2, 10));
        assert_eq!(o.op, OpKind::Mixed);
        assert_eq!(o.read_ratio, 0.5);
        assert_eq!(o.duration, 1.5);
        assert!(o.validate().is_ok());
    }

    #[test]
    fn refuses_a_ratio_outside_zero_one() {
        let o = Options::try_parse_from(["zab-load", "--read-ratio", "1.5"]).unwrap();
        assert!(o.validate().is_err());
    }

    #[test]
    fn reads_need_keys() {
        let o = Options::try_parse_from(["zab-load", "--op", "get", "--keys", "0"]).unwrap();
        assert!(o.validate().is_err());
        let o = Options::try_parse_from(["zab-load", "--op", "create", "--keys", "0"]).unwrap();
        assert!(o.validate().is_ok());
    }
}
