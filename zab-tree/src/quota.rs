//! ZooKeeper's quotas: `org.apache.zookeeper.Quotas`, `StatsTrack`, and the
//! quota half of its `DataTree` (`pTrie`, `updateQuotaStat`,
//! `updateQuotaForPath`, `setupQuota`), as of 3.8.
//!
//! A path has a quota while `/zookeeper/quota<path>/zookeeper_limits`
//! exists. The tree keeps the node count and data bytes of that path's
//! subtree in `/zookeeper/quota<path>/zookeeper_stats`, whose data it
//! rewrites in place — no new version, no zxid — on every create, delete
//! and setData below the path. Every server applies the same txns, so every
//! server rewrites it alike. Clients read both nodes (`listquota`), and
//! with `enforceQuota=true` the leader refuses writes past a hard limit
//! ([`crate::prepare`]).
//!
//! This module owns the stats format and the set of paths with a quota;
//! [`crate::tree`] calls it where ZooKeeper's `DataTree` does.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use crate::path;

/// The child of `/zookeeper/quota<path>` whose existence sets a quota.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// The child of `/zookeeper/quota<path>` that holds the usage.
pub const STAT_NODE: &str = "zookeeper_stats";

/// `Quotas.limitPath`.
pub fn limit_path(p: &str) -> String {
    format!("{}{p}/{LIMIT_NODE}", path::QUOTA)
}

/// `Quotas.statPath`.
pub fn stat_path(p: &str) -> String {
    format!("{}{p}/{STAT_NODE}", path::QUOTA)
}

/// ZooKeeper's `StatsTrack`: `key=value` pairs of longs, separated by `,`
/// or `;`, a missing key reading as -1. Limit nodes hold `count`, `bytes`
/// and the hard limits `countHardLimit` and `byteHardLimit`; stats nodes
/// hold `count` and `bytes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD_LIMIT: &str = "countHardLimit";
const BYTE_HARD_LIMIT: &str = "byteHardLimit";

impl StatsTrack {
    /// Parses as `new StatsTrack(String)` does, or `None` where Java throws
    /// (a pair without a value, a value that is not a long). Java splits on
    /// the regex `[,;]+` and each pair on `=`, dropping trailing empty
    /// parts: `bytes=5=` reads as `bytes=5`, and a leading separator makes
    /// an empty pair, which throws.
    pub fn parse(data: &[u8]) -> Option<StatsTrack> {
        let text = String::from_utf8_lossy(data);
        let is_separator = |c: char| c == ',' || c == ';';
        let mut values = BTreeMap::new();
        // Java's split keeps an empty first part when the text starts with
        // a separator, and that pair throws; all its trailing empty parts
        // go, so a text of separators alone holds no pair.
        if text.chars().all(is_separator) {
            return Some(StatsTrack { values });
        }
        if text.starts_with(is_separator) {
            return None;
        }
        for pair in text.split(is_separator).filter(|p| !p.is_empty()) {
            let mut parts: Vec<&str> = pair.split('=').collect();
            while parts.last() == Some(&"") {
                parts.pop();
            }
            let (key, value) = (*parts.first()?, *parts.get(1)?);
            // `count==5`: an empty value that is not the last part is -1.
            let value = if value.is_empty() {
                -1
            } else {
                value.parse().ok()?
            };
            values.insert(key.to_owned(), value);
        }
        Some(StatsTrack { values })
    }

    fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }
    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }
    pub fn count_hard_limit(&self) -> i64 {
        self.get(COUNT_HARD_LIMIT)
    }
    pub fn byte_hard_limit(&self) -> i64 {
        self.get(BYTE_HARD_LIMIT)
    }
    pub fn set_count(&mut self, v: i64) {
        self.values.insert(COUNT.to_owned(), v);
    }
    pub fn set_bytes(&mut self, v: i64) {
        self.values.insert(BYTES.to_owned(), v);
    }

    /// The node count the quota allows: the hard limit if set, else the
    /// soft one (`QuotaMetricsUtils.getQuotaLimit`).
    pub fn count_limit(&self) -> i64 {
        hard_or_soft(self.count_hard_limit(), self.count())
    }
    /// The data bytes the quota allows, as [`StatsTrack::count_limit`].
    pub fn bytes_limit(&self) -> i64 {
        hard_or_soft(self.byte_hard_limit(), self.bytes())
    }
}

fn hard_or_soft(hard: i64, soft: i64) -> i64 {
    if hard > -1 {
        hard
    } else {
        soft
    }
}

/// `StatsTrack.toString`: `count` and `bytes` first, then, after an extra
/// `=` that kept 3.4's parser reading, the other keys in order, each after
/// a `;` — `count=4,bytes=5=;byteHardLimit=-1;countHardLimit=10`.
impl fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{COUNT}={},{BYTES}={}", self.count(), self.bytes())?;
        let mut rest = self
            .values
            .iter()
            .filter(|(k, _)| *k != COUNT && *k != BYTES)
            .peekable();
        if rest.peek().is_some() {
            f.write_str("=")?;
        }
        for (k, v) in rest {
            write!(f, ";{k}={v}")?;
        }
        Ok(())
    }
}

/// ZooKeeper's four quota gauge sets, by namespace (the first component
/// of the path a quota is on): `quota_count_limit_per_namespace`,
/// `quota_bytes_limit_per_namespace`, `quota_count_usage_per_namespace`
/// and `quota_bytes_usage_per_namespace`. Quotas in one namespace add up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaGauges {
    pub count_limit: BTreeMap<String, i64>,
    pub bytes_limit: BTreeMap<String, i64>,
    pub count_usage: BTreeMap<String, i64>,
    pub bytes_usage: BTreeMap<String, i64>,
}

/// The paths with a quota: ZooKeeper's `PathTrie`, which keys paths by
/// their components and skips empty or all-blank ones (`"/a/ /b"` is
/// `/a/b` to it).
#[derive(Debug, Clone, Default)]
pub(crate) struct QuotaPaths {
    paths: HashSet<String>,
}

impl QuotaPaths {
    pub(crate) fn clear(&mut self) {
        self.paths.clear();
    }

    /// `pTrie.addPath`. ZooKeeper throws for an empty path (a limit node
    /// made right under `/zookeeper/quota`), and then a path with no
    /// component marks nothing; zab ignores both.
    pub(crate) fn add(&mut self, p: &str) {
        if let Some(p) = normalize(p) {
            self.paths.insert(p);
        }
    }

    /// `pTrie.deletePath`.
    pub(crate) fn remove(&mut self, p: &str) {
        if let Some(p) = normalize(p) {
            self.paths.remove(&p);
        }
    }

    /// `getMaxPrefixWithQuota`: the deepest path with a quota at or above
    /// `p`, component by component; never the root.
    pub(crate) fn max_prefix(&self, p: &str) -> Option<String> {
        if self.paths.is_empty() {
            return None;
        }
        let mut full = normalize(p)?;
        loop {
            if self.paths.contains(&full) {
                return Some(full);
            }
            let cut = full.rfind('/').filter(|&i| i > 0)?;
            full.truncate(cut);
        }
    }
}

/// `/` and the path's non-blank components, or `None` if it has none.
fn normalize(p: &str) -> Option<String> {
    let mut out = String::with_capacity(p.len() + 1);
    // Java's `trim` drops every char up to U+0020.
    for c in p.split('/').filter(|c| !c.chars().all(|ch| ch <= ' ')) {
        out.push('/');
        out.push_str(c);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tree_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<StatsTrack> {
        StatsTrack::parse(s.as_bytes())
    }

    #[test]
    fn stats_text_as_zookeeper_writes_it() {
        let mut s = StatsTrack::default();
        assert_eq!(s.to_string(), "count=-1,bytes=-1");
        s.set_bytes(12);
        s.set_count(3);
        assert_eq!(s.to_string(), "count=3,bytes=12");
        // What zkCli's `setquota -n 10` writes.
        let limits = parse("count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1").unwrap();
        assert_eq!(
            (limits.count(), limits.bytes(), limits.count_hard_limit()),
            (10, -1, -1)
        );
        assert_eq!(
            limits.to_string(),
            "count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
        );
        assert_eq!(limits.count_limit(), 10);
        let hard = parse("count=10,bytes=-1=;byteHardLimit=7;countHardLimit=4").unwrap();
        assert_eq!((hard.count_limit(), hard.bytes_limit()), (4, 7));
    }

    #[test]
    fn stats_parse_follows_java_split() {
        assert_eq!(parse("").unwrap(), StatsTrack::default());
        assert_eq!(parse("count=1;;,bytes=2,").unwrap().bytes(), 2);
        assert_eq!(parse("count=+5").unwrap().count(), 5);
        assert_eq!(parse("count=1,count=2").unwrap().count(), 2);
        assert_eq!(parse("=5").unwrap().get(""), 5);
        assert_eq!(parse(",;").unwrap(), StatsTrack::default());
        assert_eq!(parse("count==5").unwrap().count(), -1);
        assert_eq!(parse("count=1=2x").unwrap().count(), 1);
        // Java throws for each of these.
        for bad in [
            ",count=1",
            "count=",
            "count",
            "=",
            "count=x",
            "count= 1",
            "count=1.5",
            "count=99999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn paths_match_by_component_and_never_the_root() {
        let mut q = QuotaPaths::default();
        assert_eq!(q.max_prefix("/a"), None);
        q.add("/a");
        q.add("/a/b/c");
        q.add("");
        q.add("/");
        assert_eq!(q.max_prefix("/a").as_deref(), Some("/a"));
        assert_eq!(q.max_prefix("/a/b").as_deref(), Some("/a"));
        assert_eq!(q.max_prefix("/a/b/c/d").as_deref(), Some("/a/b/c"));
        assert_eq!(q.max_prefix("/ab"), None);
        assert_eq!(q.max_prefix("/"), None);
        // The trie skips blank components on both sides.
        assert_eq!(q.max_prefix("/ /a/x").as_deref(), Some("/a"));
        q.add("X");
        assert_eq!(q.max_prefix("/X/y").as_deref(), Some("/X"));
        q.remove("/a/b/c");
        assert_eq!(q.max_prefix("/a/b/c/d").as_deref(), Some("/a"));
        q.remove("/a");
        assert_eq!(q.max_prefix("/a/b/c/d"), None);
    }
}
