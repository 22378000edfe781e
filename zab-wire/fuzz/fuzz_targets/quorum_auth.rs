//! SASL between servers as a server reads it off a link being opened: a
//! QUORUM_AUTH packet's payload, fed to the listening side's exchange (as
//! the opener's first and second step) and to the opening side's (as the
//! listener's challenge and its final answer). Every input is a step or an
//! error, never a panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use zab_wire::proto::{PacketType, QuorumPacket};
use zab_wire::quorum_auth::{self, Admission, Credentials, LearnerHandshake, QuorumSasl};
use zab_wire::ServerId;

fuzz_target!(|data: &[u8]| {
    let packet = QuorumPacket {
        r#type: PacketType::QuorumAuth as i32,
        data: Bytes::copy_from_slice(data),
        ..Default::default()
    };
    let Ok(step) = quorum_auth::from_packet(&packet) else {
        return;
    };
    let credentials = Credentials {
        user: "test".into(),
        password: "test".into(),
    };
    let sasl = Arc::new(QuorumSasl::digest(
        Some(credentials),
        [("test".to_owned(), "test".to_owned())].into(),
        true,
    ));
    if let Admission::Authenticate(mut listener) =
        quorum_auth::admit(Some(&sasl), Some(quorum_auth::DIGEST_MD5))
    {
        let _ = listener.on_message(&step);
        let _ = listener.on_message(&step);
    }
    let Ok((mut opener, _)) = LearnerHandshake::start(&sasl, ServerId(1)) else {
        return;
    };
    let _ = opener.on_message(&step);
    let _ = opener.on_message(&step);
});
