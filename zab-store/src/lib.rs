//! Durability on RocksDB.
