//! The tonic transport (in progress).
