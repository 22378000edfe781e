//! The server's GSSAPI exchange (`zab_server::sasl_gssapi`) against a
//! client made with the same GSS-API library, step by step (RFC 4752), with
//! a KDC of the test's own: the stages, the principal it yields, and
//! clients that break the protocol. One test in its own binary: MIT's
//! library takes its krb5.conf, keytabs and ticket cache from the
//! environment, which this test sets before anything runs beside it.

mod support;

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE};
use support::kdc::Kdc;
use zab_server::kerberos_name::NameMapping;
use zab_server::sasl_gssapi::KerberosSettings;

/// A client's context for `zookeeper@localhost`, from the client keytab
/// the environment names.
fn client() -> ClientCtx {
    let target = Name::new(b"zookeeper@localhost", Some(GSS_NT_HOSTBASED_SERVICE))
        .and_then(|n| n.canonicalize(Some(GSS_MECH_KRB5)))
        .expect("the service's name");
    ClientCtx::new(
        None,
        target,
        CtxFlags::GSS_C_MUTUAL_FLAG,
        Some(GSS_MECH_KRB5),
    )
}

#[test]
fn the_gssapi_exchange_authenticates_and_refuses_broken_clients() {
    let kdc = Kdc::start();
    let server_keytab = kdc.keytab("zookeeper/localhost");
    let client_keytab = kdc.keytab("client");
    let cache = tempfile::tempdir().unwrap();
    // SAFETY of the environment: this binary runs this one test, and sets
    // it before the library or any other thread reads it.
    std::env::set_var("KRB5_CLIENT_KTNAME", &client_keytab);
    std::env::set_var("KRB5CCNAME", cache.path().join("ccache"));
    let settings = KerberosSettings {
        principal: "zookeeper/localhost@ZAB.TEST".into(),
        keytab: Some(server_keytab),
        krb5_conf: Some(kdc.krb5_conf().to_owned()),
        names: NameMapping {
            remove_realm: true,
            ..NameMapping::default()
        },
    };
    zab_server::sasl_gssapi::install(&settings).expect("the server's key");
    let acceptor = zab_server::sasl_gssapi::installed().expect("installed");

    // The whole exchange: the context, the client's empty token, the
    // server's wrapped offer and the client's wrapped choice.
    let (mut ctx, mut server) = (client(), acceptor.exchange());
    let offer = establish(&mut ctx, &mut server);
    let offer = ctx.unwrap(&offer).expect("the offer is wrapped");
    assert_eq!(
        &offer[..],
        &[1, 0x01, 0x00, 0x00],
        "no security layer, 64 KiB"
    );
    let choice = ctx.wrap(false, &[1, 0x01, 0x00, 0x00]).unwrap();
    let done = server.step(&choice).expect("the choice is accepted");
    assert_eq!(done.token, None, "SASL's null answer ends it");
    let principal = done.principal.expect("authenticated");
    assert_eq!(principal, "client@ZAB.TEST");
    assert_eq!(acceptor.authorized_id(&principal), "client");
    assert!(server.step(b"").is_err(), "no step after the end");

    // Tokens that are not what a stage expects, of any length and bytes:
    // an error, never a panic.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut junk = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    for len in (0..400).step_by(7) {
        assert!(acceptor.exchange().step(&junk(len)).is_err());
        let (mut ctx, mut server) = (client(), acceptor.exchange());
        establish(&mut ctx, &mut server);
        assert!(server.step(&junk(len)).is_err());
    }
    assert!(acceptor.exchange().step(b"not a kerberos token").is_err());

    // A client that chooses a layer the server did not offer (integrity,
    // 2) is refused.
    let (mut ctx, mut server) = (client(), acceptor.exchange());
    establish(&mut ctx, &mut server);
    let wrapped = ctx.wrap(false, &[2, 0x01, 0x00, 0x00]).unwrap();
    let refused = server.step(&wrapped);
    assert!(refused.is_err(), "{refused:?}");

    // So is one that sends something else where its empty token goes
    // (after the server's last context token, mutual authentication).
    let (mut ctx, mut server) = (client(), acceptor.exchange());
    let ap_req = ctx.step(None, None).unwrap().expect("AP-REQ").to_vec();
    let ap_rep = server.step(&ap_req).unwrap().token.expect("AP-REP");
    assert!(
        !ap_rep.is_empty(),
        "mutual authentication answers the client"
    );
    assert!(ctx.step(Some(&ap_rep), None).unwrap().is_none());
    assert!(ctx.is_complete());
    assert!(server.step(b"x").is_err());
}

/// Runs the context to its end and the client's empty token: the server's
/// wrapped offer.
fn establish(ctx: &mut ClientCtx, server: &mut zab_server::sasl_gssapi::GssapiExchange) -> Vec<u8> {
    let mut token = ctx.step(None, None).unwrap().expect("AP-REQ").to_vec();
    loop {
        let step = server.step(&token).expect("the server accepts");
        assert_eq!(step.principal, None);
        let answer = step.token.expect("a token until the end");
        if ctx.is_complete() {
            return answer;
        }
        match ctx.step(Some(&answer), None).unwrap() {
            Some(t) => token = t.to_vec(),
            // Established on the client's side: it answers the server's
            // last context token with an empty one.
            None => token = Vec::new(),
        }
    }
}
