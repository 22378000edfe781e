//! Opt-in timestamps of a write's stages on its way through an ensemble:
//! where its latency goes, leg by leg (BENCHMARKS.md, "stage by stage").
//!
//! Only a server built with the `stage-trace` feature records anything;
//! without it [`record`] and [`packets`] are empty and inline to nothing.
//! With it, a server started with `ZAB_STAGE_TRACE=FILE` keeps the events
//! in memory and writes them to FILE when it shuts down, one per line:
//! `<unix ns> <stage letter> <a> <b>`.
//! `cargo xtask bench --stage-trace` runs a load this way and joins the
//! three servers' files into one table.
//!
//! Proposals and commits are recorded for every 16th zxid; the cumulative
//! stages (a sync, a durability mark, an ACK, a batch on a link) for every
//! occurrence, so a reader finds, for a sampled zxid, the first event that
//! covers it.

use std::path::PathBuf;

use zab_wire::proto::{PacketType, QuorumPacket};
use zab_wire::Zxid;

/// What happened. The letter is the stage's code in the trace file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Leader core: txn `a` proposed (every 16th zxid).
    Proposed,
    /// Log writer: the sync covering txns up to `a` returned.
    Synced,
    /// Core: its log is durable up to `a` (the writer's report handled).
    Durable,
    /// Leader core: ACK `b` from link `a` handled.
    AckHandled,
    /// Leader core: txn `a` committed (every 16th zxid).
    Committed,
    /// Learner core: a batch with proposals up to `a` handled.
    ProposalsHandled,
    /// Learner core: a batch with commits up to `a` handled.
    CommitsHandled,
    /// Learner core: ACK `a` queued for the leader.
    AckQueued,
    /// A batch handed to tonic: proposals up to `a` (leader).
    ProposalsOut,
    /// A batch handed to tonic: commits up to `a` (leader).
    CommitsOut,
    /// A batch handed to tonic: ACK `a` (learner).
    AckOut,
    /// Learner: a batch off the link with proposals up to `a`.
    ProposalsIn,
    /// Learner: a batch off the link with commits up to `a`.
    CommitsIn,
    /// Leader: a batch off link `a` with ACK `b`.
    AckIn,
    /// A batch handed to tonic: LEADER_DURABLE `a` (leader).
    DurableOut,
    /// Learner: a batch off the link with LEADER_DURABLE `a`.
    DurableIn,
    /// Learner core: committed txns up to `a` handed on to be applied,
    /// whether on a COMMIT or on its own (zab-learner's `commit_early`).
    Applied,
    /// Core: one message took `a` ns to handle.
    Step,
}

impl Stage {
    pub fn letter(self) -> char {
        match self {
            Stage::Proposed => 'P',
            Stage::Synced => 'W',
            Stage::Durable => 'D',
            Stage::AckHandled => 'A',
            Stage::Committed => 'C',
            Stage::ProposalsHandled => 'R',
            Stage::CommitsHandled => 'K',
            Stage::AckQueued => 'S',
            Stage::ProposalsOut => 'B',
            Stage::CommitsOut => 'X',
            Stage::AckOut => 'b',
            Stage::ProposalsIn => 'I',
            Stage::CommitsIn => 'M',
            Stage::AckIn => 'J',
            Stage::DurableOut => 'U',
            Stage::DurableIn => 'V',
            Stage::Applied => 'Y',
            Stage::Step => 'E',
        }
    }
}

/// Which way a batch of packets went on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Out,
    /// In, from the link with this id (0 on a learner: it has one link).
    In(u64),
}

/// Whether a txn is one of the sampled ones.
pub fn sampled(zxid: Zxid) -> bool {
    zxid.0 % 16 == 0
}

/// The newest proposal, commit, ACK and LEADER_DURABLE zxids in a batch
/// (0 for none).
pub fn newest(packets: &[QuorumPacket]) -> [i64; 4] {
    let mut newest = [0; 4];
    for p in packets {
        let slot = match PacketType::try_from(p.r#type) {
            Ok(PacketType::Proposal) => 0,
            Ok(PacketType::Commit) => 1,
            Ok(PacketType::Ack) => 2,
            Ok(PacketType::LeaderDurable) => 3,
            _ => continue,
        };
        newest[slot] = newest[slot].max(p.zxid);
    }
    newest
}

/// Records what a batch on a link carried.
#[inline(always)]
pub fn packets(direction: Direction, packets: &[QuorumPacket]) {
    if !ENABLED {
        return;
    }
    let [proposal, commit, ack, durable] = newest(packets);
    let stages = match direction {
        Direction::Out => [
            (Stage::ProposalsOut, proposal),
            (Stage::CommitsOut, commit),
            (Stage::AckOut, ack),
            (Stage::DurableOut, durable),
        ],
        Direction::In(_) => [
            (Stage::ProposalsIn, proposal),
            (Stage::CommitsIn, commit),
            (Stage::AckIn, ack),
            (Stage::DurableIn, durable),
        ],
    };
    for (stage, zxid) in stages.into_iter().filter(|&(_, zxid)| zxid != 0) {
        match (stage, direction) {
            (Stage::AckIn, Direction::In(link)) => record(stage, link as i64, zxid),
            _ => record(stage, zxid, 0),
        }
    }
}

/// A learner's core handled a batch whose [`newest`] zxids were these.
#[inline(always)]
pub fn handled([proposal, commit, _, _]: [i64; 4]) {
    if proposal != 0 {
        record(Stage::ProposalsHandled, proposal, 0);
    }
    if commit != 0 {
        record(Stage::CommitsHandled, commit, 0);
    }
}

/// Whether this build records: the recorder below is compiled (and
/// tested) in every build, but only this one reaches it.
pub const ENABLED: bool = cfg!(feature = "stage-trace");

/// Records `stage` now (in a `stage-trace` build asked for a trace).
#[inline(always)]
pub fn record(stage: Stage, a: i64, b: i64) {
    if ENABLED {
        recorder::record(stage, a, b);
    }
}

/// Starts recording if `ZAB_STAGE_TRACE=FILE` is set. In a build without
/// the `stage-trace` feature that is an error: a silently empty trace
/// would read as a measurement.
pub fn start_from_env() -> Result<(), String> {
    let Some(file) = std::env::var_os("ZAB_STAGE_TRACE") else {
        return Ok(());
    };
    if !ENABLED {
        return Err(
            "ZAB_STAGE_TRACE is set, but this zab-server was built without the `stage-trace` feature"
                .into(),
        );
    }
    if file.is_empty() {
        return Err("ZAB_STAGE_TRACE: expected the file to write the trace to".into());
    }
    recorder::start(PathBuf::from(file));
    Ok(())
}

/// Writes what was recorded to the trace's file, and stops recording.
pub fn finish() {
    if ENABLED {
        recorder::finish();
    }
}

mod recorder {
    use std::fmt::Write;
    use std::path::PathBuf;
    use std::sync::{Mutex, MutexGuard};
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::Stage;

    /// At ≈ 40k events/s under write load, about 100 s of them (128 MiB).
    const MAX_EVENTS: usize = 4 << 20;

    struct Trace {
        file: PathBuf,
        events: Vec<(u64, Stage, i64, i64)>,
        dropped: u64,
    }

    /// `None` unless a trace was asked for.
    static TRACE: Mutex<Option<Trace>> = Mutex::new(None);

    fn trace() -> MutexGuard<'static, Option<Trace>> {
        TRACE.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(stage: Stage, a: i64, b: i64) {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        if let Some(t) = trace().as_mut() {
            if t.events.len() < MAX_EVENTS {
                t.events.push((at, stage, a, b));
            } else {
                t.dropped += 1;
            }
        }
    }

    pub fn start(file: PathBuf) {
        *trace() = Some(Trace {
            file,
            events: Vec::new(),
            dropped: 0,
        });
    }

    /// The trace file's text: `<unix ns> <stage letter> <a> <b>` a line.
    pub(super) fn render(events: &[(u64, Stage, i64, i64)]) -> String {
        let mut text = String::with_capacity(events.len() * 32);
        for (at, stage, a, b) in events {
            let _ = writeln!(text, "{at} {} {a} {b}", stage.letter());
        }
        text
    }

    pub fn finish() {
        let Some(t) = trace().take() else {
            return;
        };
        let file = t.file.display();
        match std::fs::write(&t.file, render(&t.events)) {
            Ok(()) if t.dropped > 0 => {
                tracing::warn!(%file, dropped = t.dropped, "stage trace full: later events dropped")
            }
            Ok(()) => tracing::info!(%file, "stage trace written"),
            Err(e) => tracing::error!(%file, error = %e, "cannot write the stage trace"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum_transport::tests::packet;

    #[test]
    fn a_batch_reports_its_newest_proposal_commit_and_ack() {
        let batch = [
            packet(PacketType::Proposal, 7),
            packet(PacketType::Commit, 5),
            packet(PacketType::Proposal, 8),
            packet(PacketType::Ping, 99),
            packet(PacketType::Commit, 6),
            packet(PacketType::LeaderDurable, 7),
        ];
        assert_eq!(newest(&batch), [8, 6, 0, 7]);
        assert_eq!(newest(&[packet(PacketType::Ack, 4)]), [0, 0, 4, 0]);
        assert_eq!(newest(&[]), [0, 0, 0, 0]);
    }

    #[test]
    fn the_trace_file_has_one_event_a_line() {
        let events = [
            (1_000, Stage::Proposed, 16, 0),
            (2_500, Stage::AckIn, 2, 16),
        ];
        assert_eq!(recorder::render(&events), "1000 P 16 0\n2500 J 2 16\n");
    }

    #[test]
    fn every_sixteenth_zxid_is_sampled() {
        assert!(sampled(Zxid(0x1_0000_0010)));
        assert!(!sampled(Zxid(0x1_0000_0011)));
    }
}
