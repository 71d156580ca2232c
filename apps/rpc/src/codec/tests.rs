use proptest::prelude::*;

use super::*;
use crate::testing::{Echo as Lookup, EchoError};
use crate::{Bincode, CallError, Wire};

fn every_fault() -> Vec<Fault> {
    vec![
        Fault::UnknownProcedure {
            name: Some("no.such".into()),
        },
        Fault::UnknownProcedure { name: None },
        Fault::invalid("expected a decimal number, got \"abc\""),
        Fault::UnsupportedContentType {
            content_type: "application/json".into(),
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

#[test]
fn content_types_choose_the_codec() {
    assert_eq!(Codec::for_content_type(None), Ok(Codec::Text));
    assert_eq!(Codec::for_content_type(Some("text/plain")), Ok(Codec::Text));
    assert_eq!(
        Codec::for_content_type(Some("Text/Plain; charset=utf-8")),
        Ok(Codec::Text)
    );
    assert_eq!(Codec::for_content_type(Some("")), Ok(Codec::Text));
    assert_eq!(
        Codec::for_content_type(Some("application/x-bincode")),
        Ok(Codec::Bincode)
    );
    assert!(matches!(
        Codec::for_content_type(Some("application/json")),
        Err(Fault::UnsupportedContentType { content_type }) if content_type == "application/json"
    ));
}

#[test]
fn serde_procedures_round_trip_in_bincode() {
    let codec = <Bincode as Wire<Lookup>>::request_codec(Codec::Text);
    assert_eq!(
        codec,
        Codec::Bincode,
        "a bincode-only wire ignores the preference"
    );
    let body = <Bincode as Wire<Lookup>>::encode_request(codec, &"colour".to_owned()).unwrap();
    assert_eq!(
        <Bincode as Wire<Lookup>>::decode_request(codec, &body),
        Ok("colour".to_owned())
    );
    for outcome in [
        Ok("blue".to_owned()),
        Err(EchoError::Refused("size".into())),
    ] {
        let body = <Bincode as Wire<Lookup>>::encode_reply(codec, &outcome).unwrap();
        let back = <Bincode as Wire<Lookup>>::decode_reply(codec, &body);
        assert_eq!(back, outcome.map_err(CallError::Remote));
    }
}

#[test]
fn faults_read_back_in_both_codecs_for_any_procedure() {
    for fault in every_fault() {
        let body = Codec::Bincode.encode_fault(&fault);
        assert_eq!(
            <Bincode as Wire<Lookup>>::decode_reply(Codec::Bincode, &body),
            Err(CallError::Fault(fault.clone()))
        );
        let body = Codec::Text.encode_fault(&fault);
        assert_eq!(
            <Bincode as Wire<Lookup>>::decode_reply(Codec::Text, &body),
            Err(CallError::Fault(fault.clone())),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    assert_eq!(
        Codec::Text.encode_fault(&Fault::UnknownProcedure {
            name: Some("no.such".into())
        }),
        b"error: unknown-procedure no.such"
    );
}

#[test]
fn a_bincode_procedure_refuses_text_requests() {
    assert_eq!(
        <Bincode as Wire<Lookup>>::decode_request(Codec::Text, b"colour"),
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
                <Bincode as Wire<Lookup>>::decode_reply(Codec::Bincode, body),
                Err(CallError::BadReply { .. })
            ),
            "{body:?}"
        );
    }
    for body in [
        &b"42"[..],
        b"error: nonsense",
        b"error: body-too-large x y",
        b"\xff",
    ] {
        assert!(
            matches!(
                <Bincode as Wire<Lookup>>::decode_reply(Codec::Text, body),
                Err(CallError::BadReply { .. })
            ),
            "{body:?}"
        );
    }
}

#[test]
fn garbage_bincode_requests_are_invalid() {
    let good =
        <Bincode as Wire<Lookup>>::encode_request(Codec::Bincode, &"key".to_owned()).unwrap();
    let decode = |body: &[u8]| <Bincode as Wire<Lookup>>::decode_request(Codec::Bincode, body);
    assert!(
        matches!(
            decode(&good[..good.len() - 1]),
            Err(Fault::InvalidRequest { .. })
        ),
        "truncated"
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(
        matches!(decode(&trailing), Err(Fault::InvalidRequest { .. })),
        "trailing bytes"
    );
    assert!(
        matches!(decode(&[0xff; 32]), Err(Fault::InvalidRequest { .. })),
        "garbage"
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
        for codec in [Codec::Text, Codec::Bincode] {
            let _ = <Bincode as Wire<Lookup>>::decode_request(codec, &body);
            let _ = <Bincode as Wire<Lookup>>::decode_reply(codec, &body);
        }
    }
}
