//! Latency histograms and counters, and how they are reported: the live
//! progress line, the final table and the JSON summary.
//!
//! Latencies are recorded in microseconds into hdrhistograms with 3
//! significant digits, one per operation class; a session owns its
//! [`Stats`] and the reporter merges them.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use zab_wire::jute::ErrorCode;

use super::workload::OpClass;

/// Highest latency tracked exactly (60 s); longer ones saturate.
const MAX_US: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    // Constant bounds within hdrhistogram's limits: this cannot fail.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid constant histogram bounds")
}

/// Counts and latencies of one session (or of all of them, merged).
#[derive(Debug, Clone)]
pub struct Stats {
    latency: [Histogram<u64>; 3],
    /// Failed requests by reply error code, or a local reason.
    errors: BTreeMap<String, u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency: [histogram(), histogram(), histogram()],
            errors: BTreeMap::new(),
        }
    }
}

/// The name of a reply error code, e.g. `NodeExists(-110)`.
pub fn error_name(code: i32) -> String {
    match ErrorCode::from_code(code) {
        Some(c) => format!("{c:?}({code})"),
        None => format!("error({code})"),
    }
}

impl Stats {
    /// A success of `class` that took `latency`.
    pub fn success(&mut self, class: OpClass, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency[class.index()].saturating_record(us);
    }

    /// A failure, by error name (see [`error_name`]).
    pub fn failure(&mut self, what: String) {
        *self.errors.entry(what).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            // Same bounds on both sides: adding cannot fail.
            let _ = mine.add(theirs);
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    pub fn successes(&self) -> u64 {
        self.latency.iter().map(Histogram::len).sum()
    }

    pub fn failures(&self) -> u64 {
        self.errors.values().sum()
    }

    /// All classes together.
    fn total(&self) -> Histogram<u64> {
        let mut all = histogram();
        for h in &self.latency {
            let _ = all.add(h);
        }
        all
    }

    /// The p99 over every class so far, µs (0 with no samples).
    pub fn p99_us(&self) -> u64 {
        self.total().value_at_quantile(0.99)
    }

    /// The summary over `elapsed` seconds of measurement.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let line = |h: &Histogram<u64>| Line {
            ops: h.len(),
            ops_per_sec: h.len() as f64 / secs,
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        };
        Summary {
            seconds: secs,
            by_op: OpClass::ALL
                .iter()
                .filter(|c| !self.latency[c.index()].is_empty())
                .map(|c| (c.name(), line(&self.latency[c.index()])))
                .collect(),
            total: line(&self.total()),
            errors: self.errors.clone(),
        }
    }
}

/// Throughput and latency percentiles of one operation class, or of all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    pub ops: u64,
    pub ops_per_sec: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Line {
    fn json(&self) -> Value {
        json!({
            "ops": self.ops,
            "ops_per_sec": (self.ops_per_sec * 10.0).round() / 10.0,
            "p50_us": self.p50_us,
            "p90_us": self.p90_us,
            "p99_us": self.p99_us,
            "p999_us": self.p999_us,
            "max_us": self.max_us,
        })
    }
}

/// The result of a measured phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub seconds: f64,
    pub by_op: Vec<(&'static str, Line)>,
    pub total: Line,
    pub errors: BTreeMap<String, u64>,
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

impl Summary {
    /// The final table (latencies in ms).
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<7} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "op", "ops", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        let mut row = |name: &str, l: &Line| {
            s.push_str(&format!(
                "{:<7} {:>10} {:>10.0} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
                name,
                l.ops,
                l.ops_per_sec,
                ms(l.p50_us),
                ms(l.p90_us),
                ms(l.p99_us),
                ms(l.p999_us),
                ms(l.max_us)
            ));
        };
        for (name, l) in &self.by_op {
            row(name, l);
        }
        if self.by_op.len() != 1 {
            row("total", &self.total);
        }
        if self.errors.is_empty() {
            s.push_str("errors: none\n");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k} x{v}"))
                .collect();
            s.push_str(&format!("errors: {}\n", list.join(", ")));
        }
        s
    }

    /// The JSON summary; `run` describes the load (options, set-up).
    pub fn json(&self, run: Value) -> Value {
        let by_op: serde_json::Map<String, Value> = self
            .by_op
            .iter()
            .map(|(name, l)| (name.to_string(), l.json()))
            .collect();
        json!({
            "run": run,
            "seconds": self.seconds,
            "total": self.total.json(),
            "by_op": by_op,
            "errors": self.errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_samples() {
        let mut s = Stats::default();
        for ms in 1..=100u64 {
            s.success(OpClass::Set, Duration::from_millis(ms));
        }
        s.success(OpClass::Get, Duration::from_micros(10));
        s.failure(error_name(-110));
        let sum = s.summary(Duration::from_secs(2));
        assert_eq!(sum.total.ops, 101);
        assert!((sum.total.ops_per_sec - 50.5).abs() < 1e-9);
        let set = sum.by_op.iter().find(|(n, _)| *n == "set").unwrap().1;
        assert_eq!(set.ops, 100);
        // 3 significant digits: within 0.1 %.
        let near = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
        assert!(near(set.p50_us, 50_000), "p50 {}", set.p50_us);
        assert!(near(set.p90_us, 90_000), "p90 {}", set.p90_us);
        assert!(near(set.p99_us, 99_000), "p99 {}", set.p99_us);
        assert!(near(set.max_us, 100_000), "max {}", set.max_us);
        assert_eq!(sum.errors.get("NodeExists(-110)"), Some(&1));
        assert_eq!(s.failures(), 1);
    }

    #[test]
    fn merging_adds_counts_and_errors() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        a.success(OpClass::Get, Duration::from_micros(100));
        b.success(OpClass::Get, Duration::from_micros(300));
        b.failure("closed".into());
        a.merge(&b);
        assert_eq!(a.successes(), 2);
        assert_eq!(a.failures(), 1);
        assert!(a.summary(Duration::from_secs(1)).total.max_us >= 300);
    }

    #[test]
    fn table_and_json_carry_the_figures() {
        let mut s = Stats::default();
        s.success(OpClass::Get, Duration::from_micros(1500));
        s.success(OpClass::Set, Duration::from_micros(2500));
        let sum = s.summary(Duration::from_secs(1));
        let table = sum.table();
        assert!(table.contains("get"), "{table}");
        assert!(table.contains("total"), "{table}");
        assert!(table.contains("errors: none"), "{table}");
        let v = sum.json(json!({"op": "mixed"}));
        assert_eq!(v["total"]["ops"], 2);
        assert_eq!(v["by_op"]["get"]["ops"], 1);
        assert_eq!(v["run"]["op"], "mixed");
    }
}
