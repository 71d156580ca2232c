use fibrpc_domain::{fib, BigNumber, DomainError};
use proptest::prelude::*;

use super::*;

fn text_request(body: &str) -> Result<u64, Fault> {
    FibWire::decode_request(TEXT, body.as_bytes())
}

fn reply(codec: Codec, outcome: &Result<BigNumber, DomainError>) -> Vec<u8> {
    FibWire::encode_reply(codec, outcome).unwrap()
}

/// The bincode layout of the releases before procedures had names, as bincode's own derive
/// wrote it: the bytes fib must still read and write.
mod before_procedures {
    use bincode::Encode;

    #[derive(Encode)]
    pub struct Request {
        pub n: u64,
    }

    #[derive(Encode)]
    pub enum Reply<'a> {
        Value(&'a [u8]),
        Error(Error),
    }

    #[derive(Encode)]
    pub enum Error {
        AboveBound { n: u64, max: u64 },
        InvalidRequest { reason: String },
        UnsupportedContentType { content_type: String },
        BodyTooLarge { size: u64, max: u64 },
        Internal { reason: String },
    }

    pub fn encode(value: &impl Encode) -> Vec<u8> {
        bincode::encode_to_vec(value, bincode::config::standard()).unwrap()
    }
}

#[test]
fn bincode_bytes_are_those_before_procedures() {
    use before_procedures::{encode, Error, Reply, Request};
    for n in [0, 30, 250, 251, 1 << 40, u64::MAX] {
        assert_eq!(
            FibWire::encode_request(BINCODE, &n).unwrap(),
            encode(&Request { n })
        );
    }
    for n in [0, 30, 100, 5000] {
        let value = fib(n);
        assert_eq!(
            reply(BINCODE, &Ok(value.clone())),
            encode(&Reply::Value(&value.to_le_bytes()))
        );
    }
    assert_eq!(
        reply(
            BINCODE,
            &Err(DomainError::AboveBound {
                n: 2_000_000,
                max: 1_000_000
            })
        ),
        encode(&Reply::Error(Error::AboveBound {
            n: 2_000_000,
            max: 1_000_000
        }))
    );
    let faults = [
        (
            Fault::invalid("bad"),
            Error::InvalidRequest {
                reason: "bad".into(),
            },
        ),
        (
            Fault::UnsupportedContentType {
                content_type: "a/b".into(),
            },
            Error::UnsupportedContentType {
                content_type: "a/b".into(),
            },
        ),
        (
            Fault::BodyTooLarge { size: 9, max: 8 },
            Error::BodyTooLarge { size: 9, max: 8 },
        ),
        (
            Fault::Internal {
                reason: "oops".into(),
            },
            Error::Internal {
                reason: "oops".into(),
            },
        ),
    ];
    for (fault, before) in faults {
        assert_eq!(
            BINCODE.encode_fault(&fault),
            encode(&Reply::Error(before)),
            "{fault:?}"
        );
    }
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
            matches!(text_request(body), Err(Fault::InvalidRequest { .. })),
            "{body:?} was accepted"
        );
    }
    assert_eq!(
        text_request("-5"),
        Err(Fault::invalid("n must not be negative"))
    );
    let huge = "9".repeat(5000);
    assert_eq!(
        text_request(&huge),
        Err(Fault::invalid(
            "n has 5000 digits, more than an index can have"
        ))
    );
    assert!(matches!(
        FibWire::decode_request(TEXT, &[0xff, 0xfe, b'1']),
        Err(Fault::InvalidRequest { reason }) if reason.contains("UTF-8")
    ));
}

#[test]
fn text_is_the_tutorials_decimal_both_ways() {
    assert_eq!(FibWire::encode_request(TEXT, &30).unwrap(), b"30");
    assert_eq!(reply(TEXT, &Ok(BigNumber::from(832040u32))), b"832040");
    assert_eq!(
        FibWire::decode_reply(TEXT, b"354224848179261915075", None),
        Ok(fib(100))
    );
    assert_eq!(
        reply(
            TEXT,
            &Err(DomainError::AboveBound {
                n: 2_000_000,
                max: 1_000_000
            })
        ),
        b"error: above-bound 2000000 1000000"
    );
}

#[test]
fn every_error_survives_every_codec() {
    let above = DomainError::AboveBound {
        n: 2_000_000,
        max: 1_000_000,
    };
    let mark = |kind: &str| ReplyError {
        kind: kind.to_owned(),
        message: String::new(),
    };
    for codec in [TEXT, BINCODE, JSON] {
        let body = reply(codec, &Err(above.clone()));
        assert_eq!(
            FibWire::decode_reply(codec, &body, Some(&mark("error"))),
            Err(CallError::Remote(above.clone())),
            "{codec:?}"
        );
        for fault in [
            Fault::invalid("expected a decimal number, got \"abc\""),
            Fault::UnknownProcedure { name: None },
            Fault::BodyTooLarge {
                size: 1 << 24,
                max: 65536,
            },
        ] {
            let body = codec.encode_fault(&fault);
            assert_eq!(
                FibWire::decode_reply(codec, &body, Some(&mark(fault.code()))),
                Err(CallError::Fault(fault)),
                "{codec:?}"
            );
        }
    }
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
        assert!(
            matches!(
                FibWire::decode_reply(TEXT, body, None),
                Err(CallError::BadReply { .. })
            ),
            "{body:?}"
        );
    }
}

#[test]
fn only_large_decimal_replies_are_heavy() {
    assert!(!FibWire::heavy_reply(TEXT, &Ok(fib(1000))));
    assert!(FibWire::heavy_reply(TEXT, &Ok(fib(100_000))));
    assert!(!FibWire::heavy_reply(BINCODE, &Ok(fib(100_000))));
    assert!(FibWire::heavy_reply(JSON, &Ok(fib(100_000))));
}

#[test]
fn json_is_n_and_a_string_of_digits() {
    assert_eq!(FibWire::encode_request(JSON, &30).unwrap(), b"30");
    assert_eq!(FibWire::decode_request(JSON, b" 30 "), Ok(30));
    // Far above 2^53, where JavaScript's numbers lose digits: a string keeps them all.
    assert_eq!(reply(JSON, &Ok(fib(100))), br#""354224848179261915075""#);
    let above = DomainError::AboveBound { n: 11, max: 10 };
    assert_eq!(
        String::from_utf8(reply(JSON, &Err(above.clone()))).unwrap(),
        format!(r#"{{"kind":"error","message":"{above}","error":{{"n":11,"max":10}}}}"#)
    );
    assert!(matches!(
        FibWire::decode_request(JSON, b"-1"),
        Err(Fault::InvalidRequest { .. })
    ));
}

#[tokio::test]
async fn answers_within_the_bound_only() {
    let fibonacci = Fibonacci::with_max_n(30_000);
    assert_eq!(answer(fibonacci, 30).await, Ok(fib(30)));
    assert_eq!(answer(fibonacci, 25_000).await, Ok(fib(25_000)));
    assert_eq!(
        answer(fibonacci, 30_001).await,
        Err(DomainError::AboveBound {
            n: 30_001,
            max: 30_000
        })
    );
}

proptest! {
    #[test]
    fn requests_round_trip(n: u64) {
        for codec in [TEXT, BINCODE, JSON] {
            let body = FibWire::encode_request(codec, &n).unwrap();
            prop_assert_eq!(FibWire::decode_request(codec, &body), Ok(n));
        }
    }

    #[test]
    fn replies_round_trip(n in 0u64..5_000) {
        for codec in [TEXT, BINCODE, JSON] {
            let body = reply(codec, &Ok(fib(n)));
            prop_assert_eq!(FibWire::decode_reply(codec, &body, None), Ok(fib(n)));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
        for codec in [TEXT, BINCODE, JSON] {
            let _ = FibWire::decode_request(codec, &body);
            let _ = FibWire::decode_reply(codec, &body, None);
        }
    }
}
