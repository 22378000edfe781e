//! Client-connection framing: the 4-byte length prefix, the
//! `jute.maxbuffer` limit, and four-letter-word detection (reference A, E).
//!
//! Everything here is pure: the caller owns the socket and the buffer and
//! feeds bytes in; nothing blocks or allocates beyond the frame itself.
//!
//! Every frame, in both directions, is a big-endian `int32` length followed
//! by that many payload bytes. The length counts the payload only, not the
//! prefix itself.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub use super::codec::DEFAULT_MAX_BUFFER;

/// Why the bytes at the front of a connection's buffer are not a frame.
/// Either way ZooKeeper closes the connection without a reply (behaviour 16).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The advertised length exceeds `jute.maxbuffer`.
    #[error("frame length {len} exceeds jute.maxbuffer={max}")]
    TooLarge { len: i64, max: usize },
    /// A negative advertised length (ZooKeeper: "Len error").
    #[error("negative frame length {0}")]
    NegativeLength(i32),
}

/// Splits a connection's byte stream into frame payloads.
///
/// The limit applies to the whole frame payload (header and record together),
/// not to individual fields (behaviour 15). ZooKeeper's `NIOServerCnxn`,
/// `NettyServerCnxn` and the Java client's `ClientCnxnSocket` all refuse
/// `len < 0 || len > maxBuffer`, so a payload of exactly `max_buffer` bytes
/// is accepted; this was confirmed against ZooKeeper 3.8.0 (see
/// `tests/golden/max_buffer.txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_buffer: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_BUFFER)
    }
}

/// Length of the frame prefix.
const LEN_PREFIX: usize = 4;

impl FrameDecoder {
    /// A decoder refusing payloads longer than `max_buffer` bytes
    /// (`jute.maxbuffer`; [`DEFAULT_MAX_BUFFER`] unless configured).
    pub fn new(max_buffer: usize) -> Self {
        FrameDecoder { max_buffer }
    }

    /// The configured `jute.maxbuffer`.
    pub fn max_buffer(&self) -> usize {
        self.max_buffer
    }

    /// Takes one complete frame payload off the front of `buf` (without the
    /// 4-byte length), `None` if incomplete.
    ///
    /// The length is validated as soon as its 4 bytes are present, before
    /// the payload arrives, so an oversized frame is refused without
    /// buffering it (as ZooKeeper does). On error `buf` is left untouched;
    /// the connection is unusable and should be closed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buf.first_chunk::<LEN_PREFIX>() else {
            return Ok(None);
        };
        let len = i32::from_be_bytes(*prefix);
        if len < 0 {
            return Err(FrameError::NegativeLength(len));
        }
        // `len` is non-negative, so this conversion is lossless.
        let len = len as usize;
        if len > self.max_buffer {
            return Err(FrameError::TooLarge {
                len: len as i64,
                max: self.max_buffer,
            });
        }
        let total = LEN_PREFIX + len;
        if buf.len() < total {
            // Make room for the rest of the frame in one allocation.
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(LEN_PREFIX);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

/// Appends one frame: the payload's length as a big-endian `int32`, then the
/// payload.
///
/// Payloads come from our own encoders and are expected to stay within
/// `jute.maxbuffer` (clients drop frames beyond their own limit, reference
/// A); a payload longer than `i32::MAX` cannot be framed and is a caller bug.
pub fn encode_frame(payload: &[u8], out: &mut BytesMut) {
    debug_assert!(payload.len() <= i32::MAX as usize, "unframable payload");
    out.reserve(LEN_PREFIX + payload.len());
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
}

/// The four-letter admin commands that share the client port (reference E).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FourLetterWord {
    Conf,
    Cons,
    Crst,
    Dirs,
    Dump,
    Envi,
    Gtmk,
    Ruok,
    /// `stmk` is followed by an 8-byte trace mask the server reads next.
    Stmk,
    Srst,
    Srvr,
    Stat,
    Wchc,
    Wchp,
    Wchs,
    Mntr,
    Isro,
    Hash,
    /// The bytes a telnet client sends on Ctrl-C/close (`0xfff4fffd`, IAC IP
    /// IAC DO): ZooKeeper treats them as a command that just closes.
    TelnetClose,
}

impl FourLetterWord {
    /// Every word, in ZooKeeper's `FourLetterCommands` order.
    pub const ALL: [FourLetterWord; 19] = [
        FourLetterWord::Conf,
        FourLetterWord::Cons,
        FourLetterWord::Crst,
        FourLetterWord::Dirs,
        FourLetterWord::Dump,
        FourLetterWord::Envi,
        FourLetterWord::Gtmk,
        FourLetterWord::Ruok,
        FourLetterWord::Stmk,
        FourLetterWord::Srst,
        FourLetterWord::Srvr,
        FourLetterWord::Stat,
        FourLetterWord::Wchc,
        FourLetterWord::Wchp,
        FourLetterWord::Wchs,
        FourLetterWord::Mntr,
        FourLetterWord::Isro,
        FourLetterWord::Hash,
        FourLetterWord::TelnetClose,
    ];

    /// The command's name as ZooKeeper prints it (e.g. in the whitelist
    /// refusal `"<word> is not executed because it is not in the whitelist."`).
    pub fn as_str(self) -> &'static str {
        match self {
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Stmk => "stmk",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Hash => "hash",
            FourLetterWord::TelnetClose => "telnet close",
        }
    }

    /// The four bytes that select this command on the wire.
    pub fn wire_bytes(self) -> [u8; 4] {
        match self {
            FourLetterWord::TelnetClose => [0xff, 0xf4, 0xff, 0xfd],
            word => {
                let mut out = [0u8; 4];
                out.copy_from_slice(word.as_str().as_bytes());
                out
            }
        }
    }
}

impl std::fmt::Display for FourLetterWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Four-letter words (reference E): on a connection that has not sent a
/// ConnectRequest, the first 4 bytes compared to the known words.
///
/// ZooKeeper makes this check before it validates those bytes as a frame
/// length, so it must come before [`FrameDecoder::decode`] on a fresh
/// connection (`telnet close` would otherwise be a negative length). The
/// comparison is exact and case-sensitive, as ZooKeeper compares ints.
pub fn four_letter_word(first4: [u8; 4]) -> Option<FourLetterWord> {
    FourLetterWord::ALL
        .into_iter()
        .find(|w| w.wire_bytes() == first4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        encode_frame(payload, &mut out);
        out
    }

    #[test]
    fn encode_prefixes_the_payload_length() {
        assert_eq!(framed(b"abc").as_ref(), b"\x00\x00\x00\x03abc");
        assert_eq!(framed(b"").as_ref(), b"\x00\x00\x00\x00");
    }

    #[test]
    fn decode_waits_for_a_whole_frame_then_takes_exactly_one() {
        let d = FrameDecoder::default();
        let mut wire = framed(b"first");
        wire.extend_from_slice(&framed(b"second"));
        let all = wire.clone();
        // Feed byte by byte: a frame appears only when its last byte arrives.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for (i, b) in all.iter().enumerate() {
            buf.put_u8(*b);
            if let Some(frame) = d.decode(&mut buf).unwrap() {
                got.push((i, frame));
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (4 + 5 - 1, Bytes::from_static(b"first")));
        assert_eq!(got[1], (all.len() - 1, Bytes::from_static(b"second")));
        assert!(buf.is_empty());
    }

    #[test]
    fn empty_frame_is_a_frame() {
        let mut buf = framed(b"");
        assert_eq!(
            FrameDecoder::default().decode(&mut buf).unwrap(),
            Some(Bytes::new())
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn limit_is_len_greater_than_max_buffer() {
        // Behaviour 15: 0xFFFFF is accepted, 0x100000 refused.
        let d = FrameDecoder::default();
        let mut at_limit = BytesMut::from(&(DEFAULT_MAX_BUFFER as i32).to_be_bytes()[..]);
        assert_eq!(d.decode(&mut at_limit), Ok(None));
        let mut over = BytesMut::from(&(DEFAULT_MAX_BUFFER as i32 + 1).to_be_bytes()[..]);
        assert_eq!(
            d.decode(&mut over),
            Err(FrameError::TooLarge {
                len: DEFAULT_MAX_BUFFER as i64 + 1,
                max: DEFAULT_MAX_BUFFER
            })
        );
        // Refused from the prefix alone, and the buffer is left as it was.
        assert_eq!(over.len(), 4);
    }

    #[test]
    fn configured_limit_is_honoured() {
        let d = FrameDecoder::new(3);
        assert_eq!(d.max_buffer(), 3);
        assert_eq!(
            d.decode(&mut framed(b"abc")).unwrap(),
            Some(Bytes::from_static(b"abc"))
        );
        assert!(matches!(
            d.decode(&mut framed(b"abcd")),
            Err(FrameError::TooLarge { len: 4, max: 3 })
        ));
    }

    #[test]
    fn negative_length_is_refused() {
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert_eq!(
            FrameDecoder::default().decode(&mut buf),
            Err(FrameError::NegativeLength(-1))
        );
    }

    #[test]
    fn four_letter_words_are_recognised_exactly() {
        for w in FourLetterWord::ALL {
            assert_eq!(four_letter_word(w.wire_bytes()), Some(w), "{w}");
        }
        assert_eq!(four_letter_word(*b"ruok"), Some(FourLetterWord::Ruok));
        assert_eq!(four_letter_word(*b"mntr"), Some(FourLetterWord::Mntr));
        assert_eq!(
            four_letter_word([0xff, 0xf4, 0xff, 0xfd]),
            Some(FourLetterWord::TelnetClose)
        );
        assert_eq!(four_letter_word(*b"RUOK"), None);
        assert_eq!(four_letter_word(*b"ruo\n"), None);
        // A ConnectRequest's length prefix (45) is not a word.
        assert_eq!(four_letter_word(45i32.to_be_bytes()), None);
    }

    #[test]
    fn words_are_distinct_and_four_bytes() {
        let mut seen = std::collections::HashSet::new();
        for w in FourLetterWord::ALL {
            assert!(seen.insert(w.wire_bytes()), "{w} duplicated");
        }
        assert_eq!(seen.len(), 19);
    }
}
