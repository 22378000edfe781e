//! Request latency summaries: ZooKeeper's `readlatency` and
//! `updatelatency` (`AvgMinMaxPercentileCounter`), which `mntr`, the admin
//! server's `monitor` and the Prometheus endpoint report.
//!
//! ZooKeeper records each request's latency in whole milliseconds, as an
//! update when the request carried a txn (`ServerStats.updateLatency`:
//! `request.getHdr() != null`) and as a read otherwise, and reports
//! `avg_`/`min_`/`max_`/`cnt_`/`sum_` and the 50th, 95th, 99th and 99.9th
//! percentiles, computed as Dropwizard's `UniformSnapshot` computes them.
//! ZooKeeper keeps a uniform sample of 4,096 latencies for the
//! percentiles; zab counts every latency (few distinct values in whole
//! milliseconds), so its percentiles are ZooKeeper's while fewer than
//! 4,096 requests were recorded, and exact after.

use std::collections::BTreeMap;

use crate::four_letter::Metric;

/// ZooKeeper's `AvgMinMaxCounter`, a summary of the basic detail level
/// (`election_time`, `fsynctime`): count, total, min and max, reported as
/// `avg_`/`min_`/`max_`/`cnt_`/`sum_`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BasicSummary {
    pub count: u64,
    pub sum: u64,
    /// 0 before the first value, as ZooKeeper reports it.
    pub min: u64,
    pub max: u64,
}

/// What the store timed (log syncs, snapshot saves), in ms.
impl From<zab_store::Timings> for BasicSummary {
    fn from(t: zab_store::Timings) -> Self {
        BasicSummary {
            count: t.count,
            sum: t.total_ms,
            min: t.min_ms,
            max: t.max_ms,
        }
    }
}

impl BasicSummary {
    pub fn record(&mut self, value: u64) {
        self.min = if self.count == 0 {
            value
        } else {
            self.min.min(value)
        };
        self.max = self.max.max(value);
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
    }

    /// `AvgMinMaxCounter.values()`, in its order.
    pub fn metrics(&self, name: &str) -> Vec<(String, Metric)> {
        let int = |v: u64| Metric::Int(i64::try_from(v).unwrap_or(i64::MAX));
        vec![
            (
                format!("avg_{name}"),
                Metric::Double(avg4(self.sum as i64, self.count)),
            ),
            (format!("min_{name}"), int(self.min)),
            (format!("max_{name}"), int(self.max)),
            (format!("cnt_{name}"), int(self.count)),
            (format!("sum_{name}"), int(self.sum)),
        ]
    }
}

/// `AvgMinMaxCounter.getAvg`: the mean rounded half up to 4 decimals, 0
/// when empty.
fn avg4(sum: i64, count: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let avg = sum as f64 / count as f64;
    (avg * 10_000.0).round() / 10_000.0
}

/// Latencies below this many ms are counted in an array (one increment on
/// the request path); longer ones, rare, in a map.
const SHORT: usize = 64;

/// Latencies in ms since the last reset (`srst`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencySummary {
    /// How many requests took each latency of `0..SHORT` ms …
    short: [u64; SHORT],
    /// … and each longer one.
    long: BTreeMap<i64, u64>,
    count: u64,
    sum: i64,
}

impl Default for LatencySummary {
    fn default() -> Self {
        LatencySummary {
            short: [0; SHORT],
            long: BTreeMap::new(),
            count: 0,
            sum: 0,
        }
    }
}

impl LatencySummary {
    pub fn record(&mut self, latency_ms: i64) {
        match usize::try_from(latency_ms)
            .ok()
            .and_then(|i| self.short.get_mut(i))
        {
            Some(n) => *n += 1,
            None => *self.long.entry(latency_ms).or_insert(0) += 1,
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(latency_ms);
    }

    /// Every recorded latency with its count, in increasing order.
    fn counts(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        let negative = self.long.range(..0).map(|(&l, &n)| (l, n));
        let short = (0..SHORT as i64).zip(self.short.iter().copied());
        let long = self.long.range(SHORT as i64..).map(|(&l, &n)| (l, n));
        negative.chain(short).chain(long).filter(|&(_, n)| n > 0)
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> i64 {
        self.sum
    }

    /// The `i`-th smallest latency (0-based).
    fn nth(&self, i: u64) -> i64 {
        let mut seen = 0;
        let mut last = 0;
        for (latency, n) in self.counts() {
            seen += n;
            last = latency;
            if i < seen {
                return latency;
            }
        }
        last
    }

    /// Dropwizard's `UniformSnapshot.getValue(q)`: the value at position
    /// `q × (n + 1)` of the sorted latencies, interpolated.
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.count;
        if n == 0 {
            return 0.0;
        }
        let pos = q * (n + 1) as f64;
        let index = pos as u64;
        if index < 1 {
            return self.nth(0) as f64;
        }
        if index >= n {
            return self.nth(n - 1) as f64;
        }
        let lower = self.nth(index - 1) as f64;
        let upper = self.nth(index) as f64;
        lower + (pos - pos.floor()) * (upper - lower)
    }

    /// `AvgMinMaxPercentileCounter.values()`, in its order.
    pub fn metrics(&self, name: &str) -> Vec<(String, Metric)> {
        let avg = avg4(self.sum, self.count);
        let first = self.counts().next().map_or(0, |(l, _)| l);
        let last = self.counts().last().map_or(0, |(l, _)| l);
        // Java's `Math.round`: half up.
        let p = |q: f64| Metric::Int((self.quantile(q) + 0.5).floor() as i64);
        vec![
            (format!("avg_{name}"), Metric::Double(avg)),
            (format!("min_{name}"), Metric::Int(first)),
            (format!("max_{name}"), Metric::Int(last)),
            (format!("cnt_{name}"), Metric::Int(self.count as i64)),
            (format!("sum_{name}"), Metric::Int(self.sum)),
            (format!("p50_{name}"), p(0.5)),
            (format!("p95_{name}"), p(0.95)),
            (format!("p99_{name}"), p(0.99)),
            (format!("p999_{name}"), p(0.999)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_reports_zeros() {
        let s = LatencySummary::default();
        let m = s.metrics("readlatency");
        assert_eq!(m.len(), 9);
        assert!(m
            .iter()
            .all(|(_, v)| matches!(v, Metric::Int(0)) || *v == Metric::Double(0.0)));
        assert_eq!(m[0].0, "avg_readlatency");
        assert_eq!(m[8].0, "p999_readlatency");
    }

    /// Against what ZooKeeper 3.8.0 printed for three updates of 1, 4 and
    /// 6 ms: avg 3.6667, min 1, max 6, cnt 3, sum 11, p50 4, p95/p99/p999 6.
    #[test]
    fn figures_as_zookeeper_prints_them() {
        let mut s = LatencySummary::default();
        for l in [6, 1, 4] {
            s.record(l);
        }
        let values: Vec<String> = s
            .metrics("updatelatency")
            .into_iter()
            .map(|(k, v)| match v {
                Metric::Int(i) => format!("{k}={i}"),
                Metric::Double(d) => format!("{k}={d}"),
                Metric::Text(t) => format!("{k}={t}"),
            })
            .collect();
        assert_eq!(
            values,
            [
                "avg_updatelatency=3.6667",
                "min_updatelatency=1",
                "max_updatelatency=6",
                "cnt_updatelatency=3",
                "sum_updatelatency=11",
                "p50_updatelatency=4",
                "p95_updatelatency=6",
                "p99_updatelatency=6",
                "p999_updatelatency=6",
            ]
        );
    }

    #[test]
    fn quantiles_interpolate_as_dropwizard() {
        let mut s = LatencySummary::default();
        for l in 1..=10 {
            s.record(l);
        }
        // pos = 0.5 × 11 = 5.5: between the 5th (5) and 6th (6) values.
        assert_eq!(s.quantile(0.5), 5.5);
        assert_eq!(s.quantile(0.05), 1.0);
        assert_eq!(s.quantile(0.999), 10.0);
        assert_eq!((s.count(), s.sum()), (10, 55));
    }

    #[test]
    fn basic_summaries_report_five_figures() {
        let mut b = BasicSummary::default();
        assert_eq!(
            b.metrics("election_time")[1],
            ("min_election_time".into(), Metric::Int(0))
        );
        for v in [30, 10, 20] {
            b.record(v);
        }
        let m = b.metrics("election_time");
        assert_eq!(
            m.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            [
                "avg_election_time",
                "min_election_time",
                "max_election_time",
                "cnt_election_time",
                "sum_election_time"
            ]
        );
        assert_eq!(
            m.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            [
                Metric::Double(20.0),
                Metric::Int(10),
                Metric::Int(30),
                Metric::Int(3),
                Metric::Int(60)
            ]
        );
    }

    #[test]
    fn long_latencies_sort_after_short_ones() {
        let mut s = LatencySummary::default();
        for l in [5000, 3, 63, 64, 3] {
            s.record(l);
        }
        let m = s.metrics("x");
        assert_eq!(m[1], ("min_x".into(), Metric::Int(3)));
        assert_eq!(m[2], ("max_x".into(), Metric::Int(5000)));
        let sorted: Vec<i64> = (0..5).map(|i| s.nth(i)).collect();
        assert_eq!(sorted, [3, 3, 63, 64, 5000]);
    }
}
