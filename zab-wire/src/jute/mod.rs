//! ZooKeeper's client protocol: jute records and their binary encoding.
//!
//! Jute encodes a record as its fields concatenated in declaration order, all
//! integers big-endian, with no tags and no lengths of its own (reference A).
//! Buffers and strings are an `int` length then the bytes, `-1` meaning null;
//! vectors are an `int` count then the elements.
//!
//! Decoding never panics: every read is bounds-checked and reports a
//! [`DecodeError`]. Strings are decoded lossily, because Java clients send
//! non-BMP characters as CESU-8 surrogate pairs that are not valid UTF-8
//! (ZooKeeper's own reader replaces them too; the path check then rejects the
//! replacement character).
//!
//! [`frame`] splits a connection's byte stream into frames and recognises
//! four-letter words; [`Request`] and [`Response`] decode frame bodies by
//! opcode.

mod codec;
pub mod frame;
mod records;
mod request;

pub use codec::{DecodeError, Jute, Reader, Writer, DEFAULT_MAX_BUFFER};
pub use frame::{encode_frame, four_letter_word, FourLetterWord, FrameDecoder, FrameError};
pub use records::*;
pub use request::{MultiOp, MultiResponse, MultiResult, Request, Response};
