//! Client frames written byte by byte (reference A–C) rather than with
//! `zab-wire`, so the tests that send them do not share the server's codec.

/// A tiny jute writer (reference A: big-endian ints, length-prefixed buffers).
#[derive(Default)]
pub struct Jute(pub Vec<u8>);

impl Jute {
    pub fn int(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn long(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn boolean(mut self, v: bool) -> Self {
        self.0.push(u8::from(v));
        self
    }
    pub fn buffer(self, b: &[u8]) -> Self {
        let mut s = self.int(b.len() as i32);
        s.0.extend_from_slice(b);
        s
    }
    /// Appends another record's bytes.
    pub fn then(mut self, other: Jute) -> Self {
        self.0.extend_from_slice(&other.0);
        self
    }
    /// The whole record prefixed with its length: one client frame.
    pub fn frame(self) -> Vec<u8> {
        let mut out = (self.0.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&self.0);
        out
    }
}

/// A ConnectRequest (reference B) without its trailing readOnly flag:
/// protocol 0, lastZxidSeen 0, the session timeout, and the session and
/// password to resume (0 and 16 zero bytes for a new session).
pub fn connect_request(timeout_ms: i32, session: i64, password: &[u8]) -> Jute {
    Jute::default()
        .int(0)
        .long(0)
        .int(timeout_ms)
        .long(session)
        .buffer(password)
}

pub fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
