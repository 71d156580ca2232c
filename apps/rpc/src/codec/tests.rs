use fibrpc_domain::{fib, BigNumber, DomainError, FibRequest, FibResponse};
use proptest::prelude::*;

use super::*;

fn text_request(body: &str) -> Result<u64, DomainError> {
    Codec::Text
        .decode_request(body.as_bytes())
        .map(|request| request.n)
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
        Err(DomainError::UnsupportedContentType { content_type }) if content_type == "application/json"
    ));
}

#[test]
fn text_requests_read_like_python_int() {
    assert_eq!(text_request("30"), Ok(30));
    assert_eq!(text_request(" \t30\n"), Ok(30));
    assert_eq!(text_request("+30"), Ok(30));
    assert_eq!(text_request("0030"), Ok(30));
    assert_eq!(text_request("1_000"), Ok(1000));
    assert_eq!(text_request("-0"), Ok(0));
    assert_eq!(text_request("18446744073709551615"), Ok(u64::MAX));
}

#[test]
fn bad_text_requests_are_invalid() {
    for body in [
        "", "  ", "abc", "3 0", "1__0", "_1", "1_", "+", "-", "0x10", "1e3", "١٢",
    ] {
        assert!(
            matches!(text_request(body), Err(DomainError::InvalidRequest { .. })),
            "{body:?} was accepted"
        );
    }
    assert_eq!(
        text_request("-5"),
        Err(DomainError::invalid("n must not be negative"))
    );
    let huge = "9".repeat(5000);
    assert_eq!(
        text_request(&huge),
        Err(DomainError::invalid(
            "n has 5000 digits, more than an index can have"
        ))
    );
    assert!(matches!(
        Codec::Text.decode_request(&[0xff, 0xfe, b'1']),
        Err(DomainError::InvalidRequest { reason }) if reason.contains("UTF-8")
    ));
}

#[test]
fn text_replies_are_the_tutorials_decimal() {
    let reply = Codec::Text.encode_reply(&Ok(FibResponse::new(BigNumber::from(832040u32))));
    assert_eq!(reply, b"832040");
    let outcome = Codec::Text.decode_reply(b"354224848179261915075").unwrap();
    assert_eq!(outcome.unwrap().value, fib(100));
}

#[test]
fn every_error_survives_both_codecs() {
    let errors = [
        DomainError::AboveBound {
            n: 2_000_000,
            max: 1_000_000,
        },
        DomainError::invalid("expected a decimal number, got \"abc\""),
        DomainError::UnsupportedContentType {
            content_type: "application/json".into(),
        },
        DomainError::BodyTooLarge {
            size: 1 << 24,
            max: 65536,
        },
    ];
    for codec in [Codec::Text, Codec::Bincode] {
        for error in &errors {
            let body = codec.encode_reply(&Err(error.clone()));
            assert_eq!(
                codec.decode_reply(&body),
                Ok(Err(error.clone())),
                "{codec:?}"
            );
        }
    }
    assert_eq!(
        Codec::Text.encode_reply(&Err(errors[0].clone())),
        b"error: above-bound 2000000 1000000"
    );
}

#[test]
fn malformed_replies_are_reported_not_misread() {
    for body in [
        &b""[..],
        b"abc",
        b"error: nonsense",
        b"error: above-bound x y",
        b"\xff",
    ] {
        assert!(Codec::Text.decode_reply(body).is_err(), "{body:?}");
    }
    for body in [
        &b""[..],
        b"\x07",
        b"\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    ] {
        assert!(Codec::Bincode.decode_reply(body).is_err(), "{body:?}");
    }
}

#[test]
fn garbage_bincode_requests_are_invalid() {
    let good = Codec::Bincode.encode_request(FibRequest { n: 300 });
    assert!(
        Codec::Bincode
            .decode_request(&good[..good.len() - 1])
            .is_err(),
        "truncated"
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(
        Codec::Bincode.decode_request(&trailing).is_err(),
        "trailing bytes"
    );
    assert!(
        Codec::Bincode.decode_request(&[0xff; 32]).is_err(),
        "garbage"
    );
}

proptest! {
    #[test]
    fn requests_round_trip(n: u64) {
        for codec in [Codec::Text, Codec::Bincode] {
            let body = codec.encode_request(FibRequest { n });
            prop_assert_eq!(codec.decode_request(&body), Ok(FibRequest { n }));
        }
    }

    #[test]
    fn replies_round_trip(n in 0u64..5_000) {
        for codec in [Codec::Text, Codec::Bincode] {
            let body = codec.encode_reply(&Ok(FibResponse::new(fib(n))));
            prop_assert_eq!(codec.decode_reply(&body), Ok(Ok(FibResponse::new(fib(n)))));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
        for codec in [Codec::Text, Codec::Bincode] {
            let _ = codec.decode_request(&body);
            let _ = codec.decode_reply(&body);
        }
    }
}
