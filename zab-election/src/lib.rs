//! FastLeaderElection.
//!
//! This crate will own the election: votes, their total order, logical
//! clocks, handling notifications by the sender's state and the termination
//! rule, as a pure core plus its tonic transport. It knows nothing of the
//! data tree. (Work in progress: see the replication issue.)
