//! The ZAB leader.
//!
//! This crate will own discovery (epoch agreement), one `LearnerHandler` per
//! learner with sync selection (DIFF / TRUNC / SNAP), and the proposal
//! pipeline (zxid assignment, ack counting, in-order commit, INFORM to
//! observers). It holds no follower logic. (Work in progress: see the
//! replication issue.)
