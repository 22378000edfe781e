//! The jute primitives: [`Reader`], [`Writer`] and the [`Jute`] trait.

use bytes::{BufMut, Bytes, BytesMut};

/// ZooKeeper's default `jute.maxbuffer`: 0xFFFFF bytes.
pub const DEFAULT_MAX_BUFFER: usize = 0xF_FFFF;

/// Most elements a vector decoder allocates room for before reading them.
const MAX_PREALLOCATED_ELEMENTS: usize = 1024;

/// Why a jute record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame ended inside a field.
    #[error("record truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    /// A negative length other than -1 (null), or a vector count larger than
    /// the bytes left (ZooKeeper: "Unreasonable length").
    #[error("unreasonable length {0}")]
    BadLength(i32),
    /// An opcode this protocol does not define as a client request.
    #[error("unknown opcode {0}")]
    UnknownOpcode(i32),
    /// A field holds a value its record does not allow (e.g. a write op
    /// inside `multiRead`).
    #[error("invalid {what}: {value}")]
    Invalid { what: &'static str, value: i64 },
}

impl DecodeError {
    /// The error a server replies with when a request body fails to decode:
    /// UNIMPLEMENTED (-6, then close) for an unknown opcode (behaviour 17),
    /// MARSHALLINGERROR (-5) for anything else (reference C).
    pub fn reply_code(&self) -> super::ErrorCode {
        match self {
            DecodeError::UnknownOpcode(_) => super::ErrorCode::Unimplemented,
            _ => super::ErrorCode::MarshallingError,
        }
    }
}

/// A bounds-checked cursor over one frame's bytes. Buffers are returned as
/// zero-copy slices of the frame.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: impl Into<Bytes>) -> Self {
        Reader {
            buf: buf.into(),
            pos: 0,
        }
    }
    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// The bytes not read yet, without consuming them.
    pub fn rest(&self) -> Bytes {
        self.buf.slice(self.pos..)
    }
    /// `n` bytes as they are, without a length prefix: a record its
    /// container frames (a txn log entry, for one).
    pub fn read_raw(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.take(n)
    }
    fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        if self.remaining() < N {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: N - self.remaining(),
            });
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }
    /// A jute `byte`.
    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    /// A jute `boolean`.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        // Java's reader treats any non-zero byte as true.
        Ok(self.read_u8()? != 0)
    }
    /// A jute `int` (big-endian).
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    /// A jute `long` (big-endian).
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    /// A length-prefixed buffer; `None` for the null buffer (length -1).
    pub fn read_buffer(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let len = self.read_i32()?;
        match len {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::BadLength(n)),
            n => self.take(n as usize).map(Some),
        }
    }
    /// A string; null decodes as the empty string. Invalid UTF-8 is replaced.
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        Ok(match self.read_buffer()? {
            None => String::new(),
            Some(b) => String::from_utf8_lossy(&b).into_owned(),
        })
    }
    /// A vector count; null (-1) reads as `None`.
    pub fn read_count(&mut self) -> Result<Option<usize>, DecodeError> {
        match self.read_i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::BadLength(n)),
            // Every element takes at least one byte: a count beyond the
            // remaining bytes is a lie, and must not drive an allocation.
            n if n as usize > self.remaining() => Err(DecodeError::BadLength(n)),
            n => Ok(Some(n as usize)),
        }
    }
}

/// Appends jute encodings to a growable buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: BytesMut,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }
    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: BytesMut::with_capacity(n),
        }
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// The encoded bytes.
    pub fn into_bytes(self) -> Bytes {
        self.buf.freeze()
    }
    pub fn write_u8(&mut self, v: u8) {
        self.buf.put_u8(v)
    }
    pub fn write_bool(&mut self, v: bool) {
        self.buf.put_u8(v as u8)
    }
    pub fn write_i32(&mut self, v: i32) {
        self.buf.put_i32(v)
    }
    pub fn write_i64(&mut self, v: i64) {
        self.buf.put_i64(v)
    }
    /// A buffer: `None` is the null buffer (length -1).
    pub fn write_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.buf.put_i32(-1),
            Some(b) => {
                self.buf.put_i32(b.len() as i32);
                self.buf.put_slice(b);
            }
        }
    }
    /// A non-null string.
    pub fn write_string(&mut self, v: &str) {
        self.write_buffer(Some(v.as_bytes()))
    }
    /// Bytes as they are, with no length prefix.
    pub fn write_raw(&mut self, b: &[u8]) {
        self.buf.put_slice(b)
    }
}

/// Direct access to the buffer, e.g. to reserve room or splice bytes that
/// are already encoded.
impl AsMut<BytesMut> for Writer {
    fn as_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }
}

/// A value with a jute encoding.
pub trait Jute: Sized {
    fn read(r: &mut Reader) -> Result<Self, DecodeError>;
    fn write(&self, w: &mut Writer);

    /// Decodes one value from the start of `buf`; trailing bytes are ignored,
    /// as ZooKeeper ignores them.
    fn decode(buf: impl Into<Bytes>) -> Result<Self, DecodeError> {
        Self::read(&mut Reader::new(buf))
    }
    fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_bytes()
    }
}

impl Jute for i32 {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_i32()
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(*self)
    }
}

impl Jute for i64 {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_i64()
    }
    fn write(&self, w: &mut Writer) {
        w.write_i64(*self)
    }
}

impl Jute for bool {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_bool()
    }
    fn write(&self, w: &mut Writer) {
        w.write_bool(*self)
    }
}

impl Jute for String {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_string()
    }
    fn write(&self, w: &mut Writer) {
        w.write_string(self)
    }
}

/// A nullable buffer (`None` is length -1).
impl Jute for Option<Bytes> {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
    fn write(&self, w: &mut Writer) {
        w.write_buffer(self.as_deref())
    }
}

/// A non-null buffer (null decodes as empty).
impl Jute for Bytes {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(r.read_buffer()?.unwrap_or_default())
    }
    fn write(&self, w: &mut Writer) {
        w.write_buffer(Some(self))
    }
}

/// A vector; a null vector decodes as empty and encodes as count 0.
impl<T: Jute> Jute for Vec<T> {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Option::<Vec<T>>::read(r)?.unwrap_or_default())
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(self.len() as i32);
        for v in self {
            v.write(w);
        }
    }
}

/// A nullable vector (`None` is count -1).
impl<T: Jute> Jute for Option<Vec<T>> {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let Some(n) = r.read_count()? else {
            return Ok(None);
        };
        // `n` is bounded by the bytes left, but an element's in-memory size
        // can be many times its encoded size: cap the up-front allocation so
        // a hostile count cannot amplify a 1 MiB frame into gigabytes.
        let mut out = Vec::with_capacity(n.min(MAX_PREALLOCATED_ELEMENTS));
        for _ in 0..n {
            out.push(T::read(r)?);
        }
        Ok(Some(out))
    }
    fn write(&self, w: &mut Writer) {
        match self {
            None => w.write_i32(-1),
            Some(v) => v.write(w),
        }
    }
}

/// Declares a jute record: a struct whose encoding is its fields in order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::jute::Jute for $name {
            #[allow(unused_variables)]
            fn read(r: &mut $crate::jute::Reader) -> Result<Self, $crate::jute::DecodeError> {
                Ok($name { $($field: <$ty as $crate::jute::Jute>::read(r)?),* })
            }
            #[allow(unused_variables)]
            fn write(&self, w: &mut $crate::jute::Writer) {
                $(<$ty as $crate::jute::Jute>::write(&self.$field, w);)*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_empty_buffers_differ() {
        assert_eq!(None::<Bytes>.encode().as_ref(), &[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(Some(Bytes::new()).encode().as_ref(), &[0, 0, 0, 0]);
        assert_eq!(
            Option::<Bytes>::decode(&[0xffu8, 0xff, 0xff, 0xff][..]).unwrap(),
            None
        );
    }

    #[test]
    fn negative_lengths_other_than_null_are_errors() {
        let bytes = (-2i32).to_be_bytes();
        assert_eq!(
            Option::<Bytes>::decode(Bytes::copy_from_slice(&bytes)),
            Err(DecodeError::BadLength(-2))
        );
    }

    #[test]
    fn vector_count_beyond_frame_is_refused_without_allocating() {
        let bytes = i32::MAX.to_be_bytes();
        assert!(Vec::<i64>::decode(Bytes::copy_from_slice(&bytes)).is_err());
    }

    #[test]
    fn reply_codes_follow_zookeeper() {
        assert_eq!(
            DecodeError::UnknownOpcode(50).reply_code(),
            super::super::ErrorCode::Unimplemented
        );
        assert_eq!(
            DecodeError::BadLength(-2).reply_code(),
            super::super::ErrorCode::MarshallingError
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        // CESU-8 for U+1F600 as Java writes it.
        let mut w = Writer::new();
        w.write_buffer(Some(&[0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]));
        let s = String::decode(w.into_bytes()).unwrap();
        assert!(s.contains('\u{FFFD}'));
    }
}
