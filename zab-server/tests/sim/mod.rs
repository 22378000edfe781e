//! A deterministic simulation of a zab ensemble: the real election,
//! leader, learner and tree cores composed as `zab-server/src/quorum.rs`
//! composes them, over a simulated network, disk and clock.
//!
//! * [`rng`]: the seeded generator every random choice comes from;
//! * [`history`]: applied histories with O(1) prefix comparison;
//! * [`disk`]: what survives a crash (durable log, epochs, snapshot);
//! * [`net`]: the clock, the event queue and the in-memory network;
//! * [`node`]: one server (quorum.rs's `Peer` without I/O);
//! * [`checker`]: the ensemble-wide invariants;
//! * [`world`]: the nodes, the client driver, faults and checks.

pub mod checker;
pub mod disk;
pub mod history;
pub mod net;
pub mod node;
pub mod rng;
pub mod world;
