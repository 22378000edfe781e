//! zab's server-to-server messages (protobuf, generated from
//! `proto/zab.proto`) and their tonic services.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("zab.v1");
