//! The Prometheus endpoint of ZooKeeper's `PrometheusMetricsProvider`:
//! `/metrics` in the text exposition format (0.0.4).
//!
//! Pure rendering. The gauges are the ones ZooKeeper 3.8 registers with
//! its metrics provider (`registerGauge` in `ZooKeeperServer`,
//! `LeaderZooKeeperServer`, `QuorumZooKeeperServer`): the numeric figures
//! `mntr` prints, under the same names, each `# HELP <name> <name>` and
//! `# TYPE <name> gauge` as the Prometheus Java client writes them, values
//! as Java doubles; then the counters and summaries of ZooKeeper's
//! `ServerMetrics` that zab measures the same way (`looking_count`,
//! `proposal_count`, `diff_count`, `snap_count`, `election_time`,
//! `fsynctime`, `readlatency`, `updatelatency`). Its other counters and
//! summaries are internal to its Java request processors and zab has no
//! equivalent: they are absent. With `metricsProvider.exportJvmInfo` (the
//! default), the Java client's standard `process_*` metrics follow, from
//! `/proc`; its `jvm_*` ones have no meaning here.

use std::fmt::Write as _;

use crate::four_letter::{gauge_values, java_double, Metric, ProviderMetrics, ServerStatus};
use crate::latency_summary::LatencySummary;

/// This process's figures for the standard `process_*` metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessMetrics {
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
    pub open_fds: i64,
    pub max_fds: i64,
    pub virtual_memory_bytes: u64,
    pub resident_memory_bytes: u64,
}

impl ProcessMetrics {
    /// Reads `/proc/self` (Linux); what cannot be read stays 0.
    pub fn read(start_time_ms: i64, open_fds: i64, max_fds: i64) -> ProcessMetrics {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the command (which may hold spaces) and its `)`:
        // state is field 3, utime 14 and stime 15, vsize 23, rss 24.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        // SAFETY: sysconf has no preconditions.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let cpu_ticks = field(14).unwrap_or(0) + field(15).unwrap_or(0);
        ProcessMetrics {
            cpu_seconds: if ticks > 0 {
                cpu_ticks as f64 / ticks as f64
            } else {
                0.0
            },
            start_time_seconds: start_time_ms as f64 / 1000.0,
            open_fds,
            max_fds,
            virtual_memory_bytes: field(23).unwrap_or(0),
            resident_memory_bytes: field(24).unwrap_or(0) * page.max(0) as u64,
        }
    }
}

/// The exposition: `provider`'s counters and summaries, the server's
/// gauges and latency summaries when it serves (`status`), then the
/// process metrics when exported. `names`,
/// when not empty, keeps only those metric families (the Java client's
/// `name[]` query parameter).
pub fn render(
    status: Option<&ServerStatus>,
    provider: &ProviderMetrics,
    process: Option<&ProcessMetrics>,
    names: &[String],
) -> String {
    let wanted = |name: &str| names.is_empty() || names.iter().any(|n| n == name);
    let mut out = String::new();
    let family = |out: &mut String, name: &str, kind: &str, help: &str, value: f64| {
        if wanted(name) {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {}", go_double(value));
        }
    };
    // ZooKeeper's `ServerMetrics` counters and basic summaries: registered
    // once, so served in an election too.
    let p = provider;
    for (name, v) in [
        ("looking_count", p.looking_count),
        ("proposal_count", p.proposal_count),
        ("commit_count", p.commit_count),
        (
            "learner_proposal_received_count",
            p.learner_proposals_received,
        ),
        ("learner_commit_received_count", p.learner_commits_received),
        ("diff_count", p.diff_count),
        ("snap_count", p.snap_count),
        ("digest_mismatches_count", p.digest_mismatches),
    ] {
        family(&mut out, name, "counter", name, v as f64);
    }
    for (name, s) in p.basic_summaries() {
        if wanted(name) {
            // A basic summary: no quantiles.
            let _ = writeln!(out, "# HELP {name} {name}");
            let _ = writeln!(out, "# TYPE {name} summary");
            let _ = writeln!(out, "{name}_count {}", go_double(s.count as f64));
            let _ = writeln!(out, "{name}_sum {}", go_double(s.sum as f64));
        }
    }
    // The gauges and the figures of the server that serves.
    if let Some(status) = status {
        for (key, value) in gauge_values(status) {
            let v = match value {
                Metric::Int(i) => i as f64,
                Metric::Double(d) => d,
                // `version`, `server_state`, `peer_state`: text, no gauge.
                Metric::Text(_) => continue,
            };
            family(&mut out, &key, "gauge", &key, v);
        }
        // Gauge and counter sets are labelled by `key`, as ZooKeeper's
        // provider registers them.
        let labelled = |out: &mut String, name: &str, kind: &str, values: Vec<(&String, f64)>| {
            if wanted(name) {
                let _ = writeln!(out, "# HELP {name} {name}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
                for (key, v) in values {
                    let key = escape_label(key);
                    let _ = writeln!(out, "{name}{{key=\"{key}\",}} {}", go_double(v));
                }
            }
        };
        for (name, by_namespace) in crate::four_letter::quota_gauge_sets(&status.quota) {
            let values = by_namespace.iter().map(|(k, v)| (k, *v as f64)).collect();
            labelled(&mut out, name, "gauge", values);
        }
        let exceeded = status
            .quota_exceeded
            .iter()
            .map(|(k, v)| (k, *v as f64))
            .collect();
        labelled(
            &mut out,
            crate::four_letter::QUOTA_EXCEEDED,
            "counter",
            exceeded,
        );
        for (name, s) in [
            ("readlatency", &status.read_latency),
            ("updatelatency", &status.update_latency),
        ] {
            if wanted(name) {
                summary(&mut out, name, s);
            }
        }
    }
    if let Some(p) = process {
        let standard: [(&str, &str, &str, f64); 6] = [
            (
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                p.cpu_seconds,
            ),
            (
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                p.start_time_seconds,
            ),
            (
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                p.open_fds as f64,
            ),
            (
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                p.max_fds as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                p.virtual_memory_bytes as f64,
            ),
            (
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                p.resident_memory_bytes as f64,
            ),
        ];
        for (name, kind, help, value) in standard {
            family(&mut out, name, kind, help, value);
        }
    }
    out
}

/// One summary family as ZooKeeper's `PrometheusSummary` exports an
/// advanced one: quantiles 0.5, 0.9 and 0.99, then `_count` and `_sum`
/// (the Java client writes a label list with a trailing comma).
fn summary(out: &mut String, name: &str, s: &LatencySummary) {
    let _ = writeln!(out, "# HELP {name} {name}");
    let _ = writeln!(out, "# TYPE {name} summary");
    for q in ["0.5", "0.9", "0.99"] {
        let v = s.quantile(q.parse().unwrap_or(0.5));
        let _ = writeln!(out, "{name}{{quantile=\"{q}\",}} {}", go_double(v));
    }
    let _ = writeln!(out, "{name}_count {}", go_double(s.count() as f64));
    let _ = writeln!(out, "{name}_sum {}", go_double(s.sum() as f64));
}

/// The text format's escapes in a label value (`TextFormat.writeEscapedLabelValue`).
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Java client's `Collector.doubleToGoString`: `+Inf`, `-Inf`, `NaN`,
/// else Java's `Double.toString`.
fn go_double(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        java_double(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::four_letter::ServerMode;

    #[test]
    fn gauges_are_mntrs_numbers_and_text_is_left_out() {
        let status = ServerStatus {
            node_count: 5,
            mode: ServerMode::Standalone,
            ..ServerStatus::default()
        };
        let text = render(Some(&status), &status.provider, None, &[]);
        assert!(text.contains(
            "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n"
        ));
        assert!(text.contains("\nconnection_drop_probability 0.0\n"));
        assert!(!text.contains("version") && !text.contains("server_state"));
        assert!(!text.contains("process_"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.split_once(' ').unwrap();
            // A summary's quantiles carry a label.
            let name = name.split('{').next().unwrap();
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{line}"
            );
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn quota_sets_are_labelled_by_namespace() {
        let mut status = ServerStatus::default();
        status.quota.count_limit.insert("app".into(), 10);
        status.quota.count_limit.insert("we\"b".into(), -1);
        status.quota_exceeded.insert("app".into(), 2);
        let text = render(
            Some(&status),
            &status.provider,
            None,
            &[
                "quota_count_limit_per_namespace".into(),
                "quota_bytes_usage_per_namespace".into(),
                "quota_exceeded_error_per_namespace".into(),
            ],
        );
        assert_eq!(
            text,
            "# HELP quota_count_limit_per_namespace quota_count_limit_per_namespace\n\
             # TYPE quota_count_limit_per_namespace gauge\n\
             quota_count_limit_per_namespace{key=\"app\",} 10.0\n\
             quota_count_limit_per_namespace{key=\"we\\\"b\",} -1.0\n\
             # HELP quota_bytes_usage_per_namespace quota_bytes_usage_per_namespace\n\
             # TYPE quota_bytes_usage_per_namespace gauge\n\
             # HELP quota_exceeded_error_per_namespace quota_exceeded_error_per_namespace\n\
             # TYPE quota_exceeded_error_per_namespace counter\n\
             quota_exceeded_error_per_namespace{key=\"app\",} 2.0\n"
        );
    }

    #[test]
    fn latency_summaries_as_the_java_client_writes_them() {
        let mut status = ServerStatus::default();
        for ms in [6, 1, 4] {
            status.update_latency.record(ms);
        }
        assert_eq!(
            render(
                Some(&status),
                &status.provider,
                None,
                &["updatelatency".into()]
            ),
            "# HELP updatelatency updatelatency\n# TYPE updatelatency summary\n\
             updatelatency{quantile=\"0.5\",} 4.0\n\
             updatelatency{quantile=\"0.9\",} 6.0\n\
             updatelatency{quantile=\"0.99\",} 6.0\n\
             updatelatency_count 3.0\nupdatelatency_sum 11.0\n"
        );
        let all = render(Some(&status), &status.provider, None, &[]);
        assert!(all.contains("# TYPE readlatency summary\n"));
        assert!(
            !all.contains("avg_updatelatency"),
            "summaries are no gauges"
        );
    }

    /// ZooKeeper's counters and summaries are served while the server
    /// does not serve (an election), its gauges only while it does.
    #[test]
    fn counters_and_summaries_are_served_in_an_election() {
        let provider = ProviderMetrics {
            looking_count: 3,
            ..ProviderMetrics::default()
        };
        let text = render(None, &provider, None, &[]);
        assert!(
            text.contains("# TYPE looking_count counter\nlooking_count 3.0\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE election_time summary\n"), "{text}");
        assert!(text.contains("\nfsynctime_count 0.0\n"), "{text}");
        assert!(!text.contains("znode_count"), "{text}");
    }

    #[test]
    fn process_metrics_and_the_name_filter() {
        let p = ProcessMetrics::read(1_700_000_000_000, 40, 1024);
        assert!(
            p.resident_memory_bytes > 0 && p.virtual_memory_bytes > 0,
            "{p:?}"
        );
        let text = render(None, &ProviderMetrics::default(), Some(&p), &[]);
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
        assert!(
            text.contains("\nprocess_start_time_seconds 1.7E9\n"),
            "{text}"
        );
        assert!(text.contains("\nprocess_open_fds 40.0\n"));
        let only = render(
            None,
            &ProviderMetrics::default(),
            Some(&p),
            &["process_max_fds".into()],
        );
        assert_eq!(
            only,
            "# HELP process_max_fds Maximum number of open file descriptors.\n\
             # TYPE process_max_fds gauge\nprocess_max_fds 1024.0\n"
        );
        assert_eq!(go_double(f64::INFINITY), "+Inf");
        assert_eq!(go_double(f64::NAN), "NaN");
    }
}
