//! A connection's raw byte stream: four-letter-word detection on the first
//! four bytes, then frames split off with a small and the default
//! `jute.maxbuffer`. Every frame handed out must respect the limit.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use zab_wire::jute::{four_letter_word, FrameDecoder, DEFAULT_MAX_BUFFER};

fuzz_target!(|data: &[u8]| {
    if let Some(first4) = data.first_chunk::<4>() {
        let _ = four_letter_word(*first4);
    }
    for max in [64, DEFAULT_MAX_BUFFER] {
        let decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::from(data);
        let mut consumed = 0;
        while let Ok(Some(frame)) = decoder.decode(&mut buf) {
            assert!(frame.len() <= max);
            consumed += 4 + frame.len();
        }
        assert_eq!(consumed + buf.len(), data.len());
    }
});
