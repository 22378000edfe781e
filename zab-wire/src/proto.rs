//! zab's server-to-server messages (protobuf, generated from
//! `proto/zab.proto`) and, with the `grpc` feature, their tonic services.

#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/zab.v1.rs"));
