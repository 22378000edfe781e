//! ZAB followers and observers.
//!
//! This crate will own the learner side: find the leader, register
//! (FOLLOWERINFO / OBSERVERINFO → LEADERINFO → ACKEPOCH), sync, then process
//! PROPOSAL / COMMIT / INFORM / PING / SYNC and forward writes. It holds no
//! leader logic. (Work in progress: see the replication issue.)
