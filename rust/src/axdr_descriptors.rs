//! A-XDR values whose (structure-of-two) array items start with an untagged
//! COSEM attribute descriptor: `{ class-id (u16), logical name (6 octets),
//! attribute-id (i8) }` written without data tags, then the tagged value.
//!
//! Seen in the pushes of Sagemcom XT211 meters (a data-notification body
//! `structure { enum, array of structure { descriptor, value } }`). The
//! layout is not A-XDR and cannot be recognised from the bytes (`00 01 ...`
//! also reads as null-data, array...), so it is decoded this way only when a
//! meter model says so (quirk `untagged-attribute-descriptors`, never a
//! default). The descriptor comes back as a standard value,
//! `structure { long-unsigned class, octet-string logical name, integer
//! attribute }`: the rest of the gateway sees ordinary data.

use crate::axdr::{decode_from, tag, Data, Reader, MAX_DEPTH};
use crate::error::{ErrorKind, Layer, Result};

/// Decode exactly one value in that layout; trailing bytes are an error.
pub fn decode_with_untagged_descriptors(buf: &[u8]) -> Result<Data> {
    Ok(decode_counting(buf)?.0)
}

/// [`decode_with_untagged_descriptors`], with the number of descriptors read
/// (0: the value was plain A-XDR, no quirk was needed).
pub fn decode_counting(buf: &[u8]) -> Result<(Data, usize)> {
    let mut r = Reader::new(buf, Layer::Axdr);
    let mut found = 0;
    let d = value(&mut r, 0, false, &mut found)?;
    if !r.is_empty() {
        return Err(r.error("data", ErrorKind::Trailing(r.remaining())));
    }
    Ok((d, found))
}

fn value(r: &mut Reader<'_>, depth: usize, in_array: bool, found: &mut usize) -> Result<Data> {
    if depth > MAX_DEPTH {
        return Err(r.error("data", ErrorKind::TooDeep(MAX_DEPTH)));
    }
    let t = r.peek_u8("data type tag")?;
    if t != tag::ARRAY && t != tag::STRUCTURE {
        return decode_from(r);
    }
    r.u8("data type tag")?;
    let n = r.bounded_length(if t == tag::ARRAY { "array length" } else { "structure length" }, 1)?;
    let mut items = Vec::with_capacity(n);
    if t == tag::STRUCTURE && in_array && n == 2 {
        let class_id = r.u16("attribute descriptor class-id")?;
        let logical_name = r.array::<6>("attribute descriptor logical name")?;
        let attribute_id = r.u8("attribute descriptor attribute-id")? as i8;
        items.push(Data::Structure(vec![
            Data::LongUnsigned(class_id),
            Data::OctetString(logical_name.to_vec()),
            Data::Integer(attribute_id),
        ]));
        *found += 1;
        items.push(value(r, depth + 1, false, found)?);
    } else {
        for _ in 0..n {
            items.push(value(r, depth + 1, t == tag::ARRAY, found)?);
        }
    }
    Ok(if t == tag::ARRAY { Data::Array(items) } else { Data::Structure(items) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::axdr::decode;

    fn h(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The first two items of the Sagemcom XT211 push body
    /// (tests/vectors/real/sagemcom-xt211-untagged-descriptors.json).
    const BODY: &str = "0202 1601 0102 \
        0202 0001 0000600101FF 02 090A35313030303035313439 \
        0202 0046 000060030AFF 03 1601";

    #[test]
    fn descriptors_are_read_untagged_and_returned_as_structures() {
        let d = decode_with_untagged_descriptors(&h(BODY)).unwrap();
        let Data::Structure(top) = d else { panic!() };
        assert_eq!(top[0], Data::Enum(1));
        let Data::Array(items) = &top[1] else { panic!() };
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0],
            Data::Structure(vec![
                Data::Structure(vec![
                    Data::LongUnsigned(1),
                    Data::OctetString(vec![0, 0, 0x60, 1, 1, 0xff]),
                    Data::Integer(2)
                ]),
                Data::OctetString(b"5100005149".to_vec()),
            ])
        );
        let Data::Structure(second) = &items[1] else { panic!() };
        assert_eq!(second[1], Data::Enum(1));
    }

    #[test]
    fn the_strict_decoder_does_not_read_it_and_garbage_stays_an_error() {
        assert!(decode(&h(BODY)).is_err());
        // a descriptor cut short is named
        let cut = h("0202 1601 0101 0202 0001 0000");
        let e = decode_with_untagged_descriptors(&cut).unwrap_err();
        assert!(e.to_string().contains("attribute descriptor"), "{e}");
        // a standard value without such pairs decodes as usual
        assert_eq!(decode_with_untagged_descriptors(&h("1200e6")).unwrap(), Data::LongUnsigned(230));
        assert!(decode_with_untagged_descriptors(&h("1200e600")).is_err());
    }

    #[test]
    fn a_data_notification_in_that_layout() {
        let apdu = h(&format!("0F 8000F1D5 00 {BODY}"));
        let (id, date_time, body, found) = crate::apdu::decode_data_notification_untagged(&apdu).unwrap();
        assert_eq!((id, date_time.len(), found), (0x8000_F1D5, 0, 2));
        // a plain value reads the same and takes no descriptor
        assert_eq!(decode_counting(&h("1200e6")).unwrap(), (Data::LongUnsigned(230), 0));
        assert_eq!(body, decode_with_untagged_descriptors(&h(BODY)).unwrap());
        // not a data-notification; a body that does not end the APDU; a cut one
        assert!(crate::apdu::decode_data_notification_untagged(&h("C2 00")).is_err());
        let padded = h(&format!("0F 8000F1D5 00 {BODY} 00"));
        assert!(crate::apdu::decode_data_notification_untagged(&padded).is_err());
        let cut = &apdu[..apdu.len() - 3];
        let e = crate::apdu::decode_data_notification_untagged(cut).unwrap_err();
        assert!(e.offset > 6, "{e}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = [0x01u8, 0x01].repeat(MAX_DEPTH + 2);
        assert!(decode_with_untagged_descriptors(&deep).is_err());
    }
}
