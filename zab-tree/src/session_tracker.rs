//! Session expiry and passwords (being written).
