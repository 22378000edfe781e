//! The zab server: the thin composition of the zab crates.
