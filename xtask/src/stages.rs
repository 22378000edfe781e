//! `cargo xtask bench --stage-trace`: joins the stage traces of an
//! ensemble's servers (zab-server's `stage-trace` feature, see
//! zab-server/src/stage_trace.rs) into one table: for the sampled txns the
//! leader proposed in the measured window, how long after the proposal
//! each later stage covered them, on each server.
//!
//! Every stage but the proposal and the commit is cumulative (a sync, a
//! durability mark, an ACK, a batch on a link covers every txn up to its
//! zxid), so a txn's time for a stage is that of the first event whose
//! zxid reaches it.

use std::collections::BTreeMap;
use std::fmt::Write;

/// One server's trace: per series (a stage letter, with the link for the
/// leader's per-link stages), events as (time, running maximum of zxid).
struct Trace {
    node: String,
    series: BTreeMap<String, Vec<(u64, i64)>>,
    proposed: Vec<(u64, i64)>,
    steps_ns: Vec<u64>,
}

fn parse(node: &str, text: &str) -> Result<Trace, String> {
    let mut trace = Trace {
        node: node.to_owned(),
        series: BTreeMap::new(),
        proposed: Vec::new(),
        steps_ns: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let bad = || format!("{node}: line {}: `{line}`", i + 1);
        let mut f = line.split_whitespace();
        let (Some(t), Some(stage), Some(a), Some(b), None) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad());
        };
        let t: u64 = t.parse().map_err(|_| bad())?;
        let a: i64 = a.parse().map_err(|_| bad())?;
        let b: i64 = b.parse().map_err(|_| bad())?;
        let (series, zxid) = match stage {
            "P" => {
                trace.proposed.push((t, a));
                continue;
            }
            "E" => {
                trace.steps_ns.push(a.max(0) as u64);
                continue;
            }
            // Per link: the link is `a`, the ACK's zxid `b`.
            "A" | "J" => (format!("{stage}{a}"), b),
            _ => (stage.to_owned(), a),
        };
        let events = trace.series.entry(series).or_default();
        let newest = events.last().map_or(zxid, |&(_, z)| z.max(zxid));
        events.push((t, newest));
    }
    Ok(trace)
}

/// When the first event of `events` reached `zxid`.
fn covered_at(events: &[(u64, i64)], zxid: i64) -> Option<u64> {
    let i = events.partition_point(|&(_, z)| z < zxid);
    events.get(i).map(|&(t, _)| t)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// What each series means, in the order a write meets them.
const LEADER_OUT: [(&str, &str); 3] = [
    ("B", "proposals on a link (first)"),
    ("W", "own log synced"),
    ("D", "own log durable (core)"),
];
const LEARNER_ACK: [(&str, &str); 6] = [
    ("I", "proposals off the link"),
    ("R", "proposals handled (core)"),
    ("W", "log synced"),
    ("D", "log durable (core)"),
    ("S", "ACK queued (core)"),
    ("b", "ACK on the link"),
];
const LEADER_COMMIT: [(&str, &str); 3] = [
    ("C", "committed"),
    ("X", "commits on a link (first)"),
    ("U", "LEADER_DURABLE on a link (first)"),
];
/// A follower applies a txn on the COMMIT, or before it once it holds the
/// txn durably and the leader said it does too (LEADER_DURABLE).
const LEARNER_COMMIT: [(&str, &str); 4] = [
    ("V", "LEADER_DURABLE off the link"),
    ("M", "commits off the link"),
    ("K", "commits handled (core)"),
    ("Y", "applied (core)"),
];

/// The table for the traces of `nodes` (name, file contents), counting the
/// txns proposed between `from_ns` and `to_ns` (unix time).
pub fn report(nodes: &[(String, String)], from_ns: u64, to_ns: u64) -> Result<String, String> {
    let traces = nodes
        .iter()
        .map(|(node, text)| parse(node, text))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(leader) = traces.iter().find(|t| !t.proposed.is_empty()) else {
        return Err("no server's trace has a proposal: was it built with `stage-trace`?".into());
    };
    let sampled: Vec<(u64, i64)> = leader
        .proposed
        .iter()
        .copied()
        .filter(|&(t, _)| (from_ns..=to_ns).contains(&t))
        .collect();
    if sampled.is_empty() {
        return Err("no proposal in the measured window".into());
    }
    let learners: Vec<&Trace> = traces
        .iter()
        .filter(|t| !std::ptr::eq(*t, leader))
        .collect();

    // (what, whose trace, series)
    let mut rows: Vec<(String, &Trace, String)> = Vec::new();
    fn add<'t>(
        rows: &mut Vec<(String, &'t Trace, String)>,
        table: &[(&str, &str)],
        who: &[&'t Trace],
    ) {
        for t in who {
            for (series, what) in table {
                rows.push((what.to_string(), *t, series.to_string()));
            }
        }
    }
    add(&mut rows, &LEADER_OUT, &[leader]);
    add(&mut rows, &LEARNER_ACK, &learners);
    for series in leader.series.keys().filter(|s| s.starts_with('J')) {
        let link = &series[1..];
        rows.push((format!("ACK off link {link}"), leader, series.clone()));
        rows.push((
            format!("ACK of link {link} handled"),
            leader,
            format!("A{link}"),
        ));
    }
    add(&mut rows, &LEADER_COMMIT, &[leader]);
    add(&mut rows, &LEARNER_COMMIT, &learners);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "stages of {} sampled txns (every 16th) proposed by {}, in µs after the proposal",
        sampled.len(),
        leader.node
    );
    let _ = writeln!(
        out,
        "{:<34} {:<8} {:>8} {:>8} {:>8} {:>8}",
        "stage", "server", "p10", "p50", "p90", "mean"
    );
    for (what, trace, series) in rows {
        let node = &trace.node;
        let Some(events) = trace.series.get(&series) else {
            continue;
        };
        let mut after: Vec<f64> = sampled
            .iter()
            .filter_map(|&(t, z)| covered_at(events, z).map(|at| (at as f64 - t as f64) / 1e3))
            .collect();
        if after.is_empty() {
            continue;
        }
        after.sort_by(f64::total_cmp);
        let mean = after.iter().sum::<f64>() / after.len() as f64;
        let _ = writeln!(
            out,
            "{what:<34} {node:<8} {:>8.0} {:>8.0} {:>8.0} {mean:>8.0}",
            percentile(&after, 0.1),
            percentile(&after, 0.5),
            percentile(&after, 0.9),
        );
    }
    let _ = writeln!(out, "\ncore steps (one message each), whole trace:");
    for t in &traces {
        let mut steps: Vec<f64> = t.steps_ns.iter().map(|&ns| ns as f64 / 1e3).collect();
        if steps.is_empty() {
            continue;
        }
        steps.sort_by(f64::total_cmp);
        let busy: f64 = steps.iter().sum();
        let long: f64 = steps.iter().filter(|&&s| s > 100.0).sum();
        let _ = writeln!(
            out,
            "  {:<8} {} steps, p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs; {:.0} % of the busy time in steps over 100 µs",
            t.node,
            steps.len(),
            percentile(&steps, 0.5),
            percentile(&steps, 0.99),
            percentile(&steps, 1.0),
            100.0 * long / busy.max(f64::MIN_POSITIVE),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_is_reached_by_the_first_event_covering_the_txn() {
        // Leader node3 proposes 16 at 1,000 µs and 32 at 2,000 µs; its log
        // syncs 20 at 1,500 and 40 at 2,600; follower node1 acks 16 at
        // 1,800 (ACK up to 31, so it covers 16 but not 32) and 40 at 3,000.
        let leader = "1000000 P 16 0\n2000000 P 32 0\n1500000 W 20 0\n2600000 W 40 0\n\
                      1900000 J 1 31\n3100000 J 1 40\n2100000 C 16 0\n3200000 C 32 0\n\
                      1000000 E 5000 0\n";
        // It applies 16 at 2,050 (early: before any COMMIT) and 32 at 3,300.
        let follower = "1800000 S 31 0\n3000000 S 40 0\n2050000 Y 16 0\n3300000 Y 32 0\n";
        let nodes = [
            ("node1".to_owned(), follower.to_owned()),
            ("node3".to_owned(), leader.to_owned()),
        ];
        let table = report(&nodes, 0, u64::MAX).unwrap();
        let row = |what: &str, node: &str| {
            let line = table
                .lines()
                .find(|l| l.starts_with(what) && l.contains(node))
                .unwrap_or_else(|| panic!("no `{what}` row for {node} in\n{table}"));
            line.split_whitespace().last().unwrap().to_owned()
        };
        // Means of the two sampled txns: (500 + 600) / 2, (800 + 1000) / 2...
        assert_eq!(row("own log synced", "node3"), "550");
        assert_eq!(row("ACK queued", "node1"), "900");
        assert_eq!(row("ACK off link 1", "node3"), "1000");
        assert_eq!(row("committed", "node3"), "1150");
        assert_eq!(row("applied", "node1"), "1175");
        assert!(table.contains("node3    1 steps, p50 5 µs"), "{table}");

        // Only proposals inside the window count.
        let table = report(&nodes, 1_500_000, u64::MAX).unwrap();
        assert!(table.starts_with("stages of 1 sampled txns"), "{table}");
    }

    #[test]
    fn traces_without_proposals_or_with_bad_lines_are_refused() {
        let quiet = [("node1".to_owned(), "5 W 1 0\n".to_owned())];
        assert!(report(&quiet, 0, u64::MAX)
            .unwrap_err()
            .contains("no server"));
        let bad = [("node1".to_owned(), "5 W one 0\n".to_owned())];
        assert!(report(&bad, 0, u64::MAX).unwrap_err().contains("line 1"));
    }
}
