//! Step over one A-XDR value, checking it as [`crate::axdr::decode_from`] does,
//! without building it.
//!
//! APDU fields that carry a value the caller takes as raw A-XDR (a GET result, a
//! SET value, a notification body) must be checked and their end found; building
//! the whole [`crate::axdr::Data`] tree for that (a load profile answer is an array
//! of hundreds of structures) only to drop it was most of the time a client spent
//! on a large answer. [`skip_value`] reads the same tags and lengths with the same
//! bounds and allocates nothing. It takes no decision of its own: when it cannot
//! step over a value (anything invalid, or a compact-array, whose type description
//! it leaves alone) the caller runs the full decode, which decides and names the
//! error. So it must never step over a value the full decode refuses, and must stop
//! where the full decode stops (the property tests below check both).

use crate::axdr::{tag, Reader, MAX_DEPTH};

/// The walk could not step over the value: decode it in full to know why (or
/// whether: a compact-array is always left to the full decode).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotSkipped;

type Walk = std::result::Result<(), NotSkipped>;

/// Step over one tagged value, leaving the reader after it (on `Err` the reader's
/// position is unspecified: start again from where it was).
pub(crate) fn skip_value(r: &mut Reader<'_>) -> Walk {
    skip(r, 0)
}

#[inline(always)]
fn take(r: &mut Reader<'_>, n: usize) -> Walk {
    r.take(n, "").map(|_| ()).map_err(|_| NotSkipped)
}

fn skip(r: &mut Reader<'_>, depth: usize) -> Walk {
    if depth > MAX_DEPTH {
        return Err(NotSkipped);
    }
    let t = r.u8("").map_err(|_| NotSkipped)?;
    match t {
        tag::ARRAY | tag::STRUCTURE => {
            let n = r.bounded_length("", 1).map_err(|_| NotSkipped)?;
            for _ in 0..n {
                skip(r, depth + 1)?;
            }
            Ok(())
        }
        tag::NULL_DATA | tag::DONT_CARE => Ok(()),
        tag::BOOLEAN | tag::BCD | tag::INTEGER | tag::UNSIGNED | tag::ENUM => take(r, 1),
        tag::LONG | tag::LONG_UNSIGNED => take(r, 2),
        tag::DOUBLE_LONG | tag::DOUBLE_LONG_UNSIGNED | tag::FLOAT32 | tag::TIME => take(r, 4),
        tag::DATE => take(r, 5),
        tag::LONG64 | tag::LONG64_UNSIGNED | tag::FLOAT64 => take(r, 8),
        tag::DATE_TIME => take(r, 12),
        tag::OCTET_STRING | tag::VISIBLE_STRING | tag::UTF8_STRING => {
            let n = r.bounded_length("", 1).map_err(|_| NotSkipped)?;
            take(r, n)
        }
        tag::BIT_STRING => {
            let bits = r.length("").map_err(|_| NotSkipped)?;
            take(r, bits.div_ceil(8))
        }
        // compact-array (left to the full decode) and unknown tags
        _ => Err(NotSkipped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::axdr::{decode_from, Data, TypeDesc};
    use crate::error::Layer;
    use proptest::prelude::*;

    /// What the walk says about `buf`: where it stopped, if it stepped over a value.
    fn walked(buf: &[u8]) -> Option<usize> {
        let mut r = Reader::new(buf, Layer::Axdr);
        skip_value(&mut r).ok().map(|()| r.pos())
    }

    /// What the full decode says: where it stopped, if it decoded a value.
    fn decoded(buf: &[u8]) -> Option<usize> {
        let mut r = Reader::new(buf, Layer::Axdr);
        decode_from(&mut r).ok().map(|_| r.pos())
    }

    /// The contract: never over what the decode refuses, always to where it stops,
    /// and over everything the decode takes but a compact-array.
    fn agrees(buf: &[u8]) -> std::result::Result<(), TestCaseError> {
        match (walked(buf), decoded(buf)) {
            (Some(w), d) => prop_assert_eq!(Some(w), d, "walked over {:02x?}", buf),
            (None, Some(_)) => prop_assert!(buf.contains(&tag::COMPACT_ARRAY), "refused {:02x?}", buf),
            (None, None) => {}
        }
        Ok(())
    }

    #[test]
    fn examples() {
        // long-unsigned, octet-string "abc" and trailing bytes, a structure of two
        assert_eq!(walked(&[0x12, 0x12, 0x34, 0xff]), Some(3));
        assert_eq!(walked(&[0x09, 0x03, b'a', b'b', b'c', 0x00]), Some(5));
        assert_eq!(walked(&[0x02, 0x02, 0x11, 0x01, 0x10, 0xff, 0xfe]), Some(7));
        // a bit-string of 9 bits, a date-time
        assert_eq!(walked(&[0x04, 0x09, 0xff, 0x80]), Some(4));
        assert_eq!(walked(&[0x19; 13]), Some(13));
        // truncated, unknown tag, a length beyond the buffer, a compact-array
        assert_eq!(walked(&[0x02, 0x02, 0x11, 0x01, 0x10, 0xff]), None);
        assert_eq!(walked(&[0x07, 0x00]), None);
        assert_eq!(walked(&[0x01, 0x81]), None);
        assert_eq!(walked(&[0x09, 0x82, 0x01, 0x00, 0x00]), None);
        assert_eq!(walked(&[0x13, 0x02, 0x02, 0x11, 0x12, 0x03, 0x01, 0x00, 0x02]), None);
        assert!(decoded(&[0x13, 0x02, 0x02, 0x11, 0x12, 0x03, 0x01, 0x00, 0x02]).is_some());
    }

    #[test]
    fn too_deep_is_refused_at_the_decodes_depth() {
        for depth in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 2] {
            let mut v = Vec::new();
            for _ in 0..depth {
                v.extend_from_slice(&[0x02, 0x01]);
            }
            v.push(0x00);
            assert_eq!(walked(&v), decoded(&v), "depth {depth}");
        }
    }

    fn simple() -> impl Strategy<Value = Data> {
        prop_oneof![
            crate::axdr::tests::props::scalar(300),
            Just(Data::CompactArray {
                description: TypeDesc::Simple(tag::LONG_UNSIGNED),
                elements: vec![Data::LongUnsigned(7)],
            }),
        ]
    }

    fn tree() -> impl Strategy<Value = Data> {
        simple().prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Data::Array),
                proptest::collection::vec(inner, 0..8).prop_map(Data::Structure),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn values_are_walked_to_their_end(d in tree(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut buf = d.encode();
            let end = buf.len();
            buf.extend_from_slice(&tail);
            agrees(&buf)?;
            if !buf[..end].contains(&tag::COMPACT_ARRAY) {
                prop_assert_eq!(walked(&buf), Some(end));
            }
        }

        #[test]
        fn cut_or_corrupted_values_agree(d in tree(), at in any::<prop::sample::Index>(), byte in any::<u8>(),
                                         cut in any::<bool>()) {
            let mut buf = d.encode();
            let i = at.index(buf.len());
            if cut { buf.truncate(i) } else { buf[i] = byte }
            agrees(&buf)?;
        }

        #[test]
        fn random_bytes_agree(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            agrees(&buf)?;
        }
    }
}
