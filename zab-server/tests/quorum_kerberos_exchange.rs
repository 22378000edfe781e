//! Kerberos between servers, step by step and without sockets: the
//! opening side (`sasl_gssapi::QuorumInitiator`, RFC 4752's client) against
//! the listening side (`sasl_gssapi::QuorumAcceptor`), run by zab-wire's
//! `quorum_auth` as a link would run them, with a KDC of the test's own.
//! Each login reads its own keytab; only `krb5.conf` comes from the
//! environment, which this binary's one test sets before the library reads
//! it.

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use support::kdc::{Kdc, REALM};
use zab_server::sasl_gssapi::{check_quorum_logins, QuorumAcceptor, QuorumInitiator};
use zab_wire::proto;
use zab_wire::quorum_auth::{
    self, Admission, LearnerHandshake, LearnerLogin, LearnerOutcome, QuorumSasl, ServerLogin,
    ServerOutcome,
};
use zab_wire::ServerId;

fn principal(name: &str) -> String {
    format!("{name}@{REALM}")
}

/// Server 1 on 127.0.0.1 and server 2 on 127.0.0.2, as their server lines
/// say: the `_HOST` of a link and the hosts ZooKeeper authorizes.
fn hosts() -> std::collections::BTreeMap<ServerId, String> {
    [
        (ServerId(1), "127.0.0.1".to_owned()),
        (ServerId(2), "127.0.0.2".to_owned()),
    ]
    .into()
}

/// A listening server that requires SASL, logged in as `name`.
fn listener(name: &str, keytab: PathBuf) -> Arc<QuorumSasl> {
    Arc::new(QuorumSasl {
        learner: None,
        server: ServerLogin::Kerberos(Arc::new(QuorumAcceptor::new(principal(name), Some(keytab)))),
        server_require: true,
        hosts: hosts(),
    })
}

/// An opening server logged in as `name`, asking for `service`.
fn opener(name: &str, keytab: PathBuf, service: &str) -> QuorumSasl {
    QuorumSasl {
        learner: Some(LearnerLogin::Kerberos {
            initiator: Arc::new(QuorumInitiator::new(principal(name), Some(keytab))),
            service_principal: service.into(),
        }),
        server: ServerLogin::Digest(Default::default()),
        server_require: false,
        hosts: hosts(),
    }
}

/// Runs `opener`'s exchange on a link to server 1 against `listener`: the
/// opener's outcome, and the listener's verdict if it got that far.
fn run(
    opener: &QuorumSasl,
    listener: &Arc<QuorumSasl>,
) -> (LearnerOutcome, Option<Result<String, String>>) {
    let (mut learner, mut msg) = match LearnerHandshake::start(opener, ServerId(1)) {
        Ok(started) => started,
        Err(why) => return (LearnerOutcome::Failed(why), None),
    };
    let Admission::Authenticate(mut server) =
        quorum_auth::admit(Some(listener), opener.opener_mechanism())
    else {
        panic!("a listener requiring SASL runs the exchange");
    };
    for _ in 0..8 {
        let (reply, verdict) = match server.on_message(&msg) {
            ServerOutcome::Continue(reply) => (reply, None),
            ServerOutcome::Done { reply, verdict, .. } => (reply, Some(verdict)),
        };
        match learner.on_message(&reply) {
            LearnerOutcome::Send(next) => {
                assert!(verdict.is_none(), "the listener ended, the opener did not");
                msg = next;
            }
            outcome => return (outcome, verdict),
        }
    }
    panic!("the exchange did not end");
}

#[test]
fn servers_authenticate_each_other_with_kerberos() {
    let kdc = Kdc::start();
    // SAFETY of the environment: this binary runs this one test, and sets
    // it before the library or any other thread reads it.
    std::env::set_var("KRB5_CONFIG", kdc.krb5_conf());
    let server_keytab = kdc.keytab("zkquorum/127.0.0.1");
    let learner_keytab = kdc.keytab("zkquorum/127.0.0.2");
    let server = listener("zkquorum/127.0.0.1", server_keytab.clone());

    // The whole exchange: server 2 asks for `zkquorum/_HOST` on its link to
    // server 1, so for zkquorum/127.0.0.1; server 1 accepts it as its
    // principal, whose host is an ensemble's.
    let learner = opener(
        "zkquorum/127.0.0.2",
        learner_keytab.clone(),
        "zkquorum/_HOST",
    );
    check_quorum_logins(&learner).expect("the learner's key is in its keytab");
    check_quorum_logins(&server).expect("the server's key is in its keytab");
    let (outcome, verdict) = run(&learner, &server);
    assert_eq!(outcome, LearnerOutcome::Authenticated);
    assert_eq!(verdict, Some(Ok(principal("zkquorum/127.0.0.2"))));
    // A second link from the same login authenticates as well (its
    // credential is kept; the ticket cache is the library's).
    assert_eq!(run(&learner, &server).0, LearnerOutcome::Authenticated);

    // A principal whose host is no server line's: authenticated by
    // Kerberos, refused by ZooKeeper's authzHosts check.
    let stranger = opener(
        "zkquorum/127.0.0.9",
        kdc.keytab("zkquorum/127.0.0.9"),
        "zkquorum/_HOST",
    );
    let (outcome, verdict) = run(&stranger, &server);
    assert!(matches!(outcome, LearnerOutcome::Failed(_)), "{outcome:?}");
    let why = verdict.expect("the listener decided").unwrap_err();
    assert!(why.contains("not a server of the ensemble"), "{why}");

    // A principal without a host is not checked against the hosts.
    let user = opener("learner", kdc.keytab("learner"), "zkquorum/_HOST");
    let (outcome, verdict) = run(&user, &server);
    assert_eq!(outcome, LearnerOutcome::Authenticated);
    assert_eq!(verdict, Some(Ok(principal("learner"))));

    // The default service principal, zkquorum/localhost, is no principal of
    // this realm: the opener gets no ticket and fails before it sends.
    let lost = opener(
        "zkquorum/127.0.0.2",
        learner_keytab.clone(),
        quorum_auth::DEFAULT_SERVICE_PRINCIPAL,
    );
    let (outcome, verdict) = run(&lost, &server);
    assert!(matches!(outcome, LearnerOutcome::Failed(_)), "{outcome:?}");
    assert_eq!(verdict, None);

    // Server 1's principal re-keyed: a listener with the old keytab cannot
    // read the new tickets, and the opener learns it failed.
    let _fresh = kdc.keytab("zkquorum/127.0.0.1");
    let stale = listener("zkquorum/127.0.0.1", server_keytab);
    let (outcome, verdict) = run(
        &opener("zkquorum/127.0.0.2", learner_keytab, "zkquorum/_HOST"),
        &stale,
    );
    assert!(matches!(outcome, LearnerOutcome::Failed(_)), "{outcome:?}");
    assert!(verdict.expect("the listener decided").is_err());

    // A principal missing from its keytab stops the server at start-up.
    let missing = listener("zkquorum/127.0.0.3", kdc.keytab("zkquorum/127.0.0.1"));
    let why = check_quorum_logins(&missing).unwrap_err();
    assert!(why.contains("zkquorum/127.0.0.3"), "{why}");

    // Junk at either side's every stage: an error, never a panic.
    for len in [0usize, 1, 4, 37, 400] {
        let junk = proto::QuorumAuth {
            status: 0,
            token: vec![0x60; len].into(),
        };
        let server = listener("zkquorum/127.0.0.1", kdc.keytab("zkquorum/127.0.0.1"));
        let Admission::Authenticate(mut s) =
            quorum_auth::admit(Some(&server), Some(quorum_auth::GSSAPI))
        else {
            unreachable!()
        };
        let out = s.on_message(&junk);
        assert!(
            matches!(
                out,
                ServerOutcome::Done {
                    verdict: Err(_),
                    ..
                }
            ),
            "{len}: {out:?}"
        );
        let learner = opener("learner", kdc.keytab("learner"), "zkquorum/127.0.0.1");
        let (mut l, _) = LearnerHandshake::start(&learner, ServerId(1)).expect("a ticket");
        assert!(matches!(l.on_message(&junk), LearnerOutcome::Failed(_)));
    }
}
