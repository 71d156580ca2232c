use fibrpc_ports::ReplyError;
use proptest::prelude::*;

use super::*;
use crate::testing::{Echo as Lookup, EchoError};
use crate::{CallError, Serde, Wire};

fn every_fault() -> Vec<Fault> {
    vec![
        Fault::UnknownProcedure {
            name: Some("no.such".into()),
        },
        Fault::UnknownProcedure { name: None },
        Fault::invalid("expected a decimal number, got \"abc\""),
        Fault::UnsupportedContentType {
            content_type: "application/xml".into(),
        },
        Fault::BodyTooLarge {
            size: 1 << 24,
            max: 65536,
        },
        Fault::Internal {
            reason: "the handler panicked: boom".into(),
        },
    ]
}

fn mark(kind: &str) -> Option<ReplyError> {
    Some(ReplyError {
        kind: kind.to_owned(),
        message: String::new(),
    })
}

#[test]
fn content_types_choose_the_codec() {
    let codecs = [BINCODE, JSON];
    assert_eq!(Codec::find(&codecs, "application/x-bincode"), Ok(BINCODE));
    assert_eq!(
        Codec::find(&codecs, "Application/JSON; charset=utf-8"),
        Ok(JSON)
    );
    assert!(matches!(
        Codec::find(&codecs, "text/plain"),
        Err(Fault::UnsupportedContentType { content_type }) if content_type == "text/plain"
    ));
    assert_eq!(Codec::default(), BINCODE, "bincode stays the default");
}

#[test]
fn serde_procedures_round_trip_in_bincode_and_json() {
    for codec in <Serde as Wire<Lookup>>::CODECS.iter().copied() {
        let body = <Serde as Wire<Lookup>>::encode_request(codec, &"colour".to_owned()).unwrap();
        assert_eq!(
            <Serde as Wire<Lookup>>::decode_request(codec, &body),
            Ok("colour".to_owned())
        );
        for outcome in [
            Ok("blue".to_owned()),
            Err(EchoError::Refused("size".into())),
        ] {
            let body = <Serde as Wire<Lookup>>::encode_reply(codec, &outcome).unwrap();
            let marked = outcome.as_ref().err().and(mark("error"));
            let back = <Serde as Wire<Lookup>>::decode_reply(codec, &body, marked.as_ref());
            assert_eq!(back, outcome.map_err(CallError::Remote), "{codec}");
        }
    }
}

#[test]
fn bincode_bytes_stay_those_of_before() {
    // A reply is variant 0 (the response) or 1 (a failure, then 0: the procedure's error).
    let ok = <Serde as Wire<Lookup>>::encode_reply(BINCODE, &Ok("ab".to_owned())).unwrap();
    assert_eq!(ok, b"\x00\x02ab");
    let refused = Err(EchoError::Refused("x".into()));
    let error = <Serde as Wire<Lookup>>::encode_reply(BINCODE, &refused).unwrap();
    assert_eq!(error, b"\x01\x00\x00\x01x");
    assert_eq!(
        BINCODE.encode_fault(&Fault::UnknownProcedure { name: None }),
        b"\x01\x05\x00"
    );
}

#[test]
fn a_json_reply_is_the_response_itself_and_an_error_is_an_object() {
    let ok = <Serde as Wire<Lookup>>::encode_reply(JSON, &Ok("blue".to_owned())).unwrap();
    assert_eq!(ok, br#""blue""#);
    let refused = Err(EchoError::Refused("size".into()));
    let error = <Serde as Wire<Lookup>>::encode_reply(JSON, &refused).unwrap();
    assert_eq!(
        String::from_utf8(error).unwrap(),
        r#"{"kind":"error","message":"refused: size","error":{"Refused":"size"}}"#
    );
    let fault = JSON.encode_fault(&Fault::UnknownProcedure {
        name: Some("no.such".into()),
    });
    assert_eq!(
        String::from_utf8(fault).unwrap(),
        r#"{"kind":"unknown-procedure","message":"no procedure named \"no.such\" on this server","name":"no.such"}"#
    );
}

#[test]
fn faults_read_back_in_both_codecs_for_any_procedure() {
    for fault in every_fault() {
        for codec in [BINCODE, JSON] {
            let body = codec.encode_fault(&fault);
            assert_eq!(
                <Serde as Wire<Lookup>>::decode_reply(codec, &body, mark(fault.code()).as_ref()),
                Err(CallError::Fault(fault.clone())),
                "{codec}"
            );
        }
    }
}

#[test]
fn a_serde_procedure_refuses_other_codecs() {
    const OTHER: Codec = Codec::new(&Other);
    struct Other;
    impl Format for Other {
        fn content_type(&self) -> &'static str {
            "text/plain"
        }
        fn encode_fault(&self, _: &Fault) -> Vec<u8> {
            Vec::new()
        }
    }
    assert_eq!(
        <Serde as Wire<Lookup>>::decode_request(OTHER, b"colour"),
        Err(Fault::UnsupportedContentType {
            content_type: "text/plain".into()
        })
    );
}

#[test]
fn malformed_replies_are_reported_not_misread() {
    for body in [
        &b""[..],
        b"\x07",
        b"\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x01\x09",
    ] {
        assert!(
            matches!(
                <Serde as Wire<Lookup>>::decode_reply(BINCODE, body, None),
                Err(CallError::BadReply { .. })
            ),
            "{body:?}"
        );
    }
    for (body, marked) in [
        (&b"42"[..], None),
        (b"\"blue\"", mark("error")),
        (br#"{"kind":"nonsense","message":""}"#, mark("nonsense")),
        (b"\xff", None),
    ] {
        assert!(
            matches!(
                <Serde as Wire<Lookup>>::decode_reply(JSON, body, marked.as_ref()),
                Err(CallError::BadReply { .. })
            ),
            "{body:?}"
        );
    }
}

#[test]
fn garbage_requests_are_invalid() {
    for codec in [BINCODE, JSON] {
        let good = <Serde as Wire<Lookup>>::encode_request(codec, &"key".to_owned()).unwrap();
        let decode = |body: &[u8]| <Serde as Wire<Lookup>>::decode_request(codec, body);
        assert!(
            matches!(
                decode(&good[..good.len() - 1]),
                Err(Fault::InvalidRequest { .. })
            ),
            "truncated {codec}"
        );
        let mut trailing = good.clone();
        trailing.push(b'0');
        assert!(
            matches!(decode(&trailing), Err(Fault::InvalidRequest { .. })),
            "trailing bytes {codec}"
        );
        assert!(
            matches!(decode(&[0xff; 32]), Err(Fault::InvalidRequest { .. })),
            "garbage {codec}"
        );
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
        for codec in [BINCODE, JSON] {
            let _ = <Serde as Wire<Lookup>>::decode_request(codec, &body);
            let _ = <Serde as Wire<Lookup>>::decode_reply(codec, &body, None);
            let _ = <Serde as Wire<Lookup>>::decode_reply(codec, &body, mark("error").as_ref());
        }
    }
}
