//! Tests of the bulk profile decoder: against the generic A-XDR decoder on
//! generated buffers, null-clock derivation, compact-array, errors, JSON.

use super::json::{profile_to_json, write_decimal, ColumnSpec};
use super::*;
use crate::cosem_datetime::CosemDateTime;
use proptest::prelude::*;

/// The cell the bulk decoder must produce for a generically decoded value.
fn expected_cell(d: &Data) -> Cell<'static> {
    match d {
        Data::Null => Cell::Null,
        Data::DontCare => Cell::DontCare,
        Data::Boolean(b) => Cell::Bool(*b),
        Data::DoubleLong(v) => Cell::Int(*v as i64),
        Data::DoubleLongUnsigned(v) => Cell::Int(*v as i64),
        Data::Integer(v) | Data::Bcd(v) => Cell::Int(*v as i64),
        Data::Long(v) => Cell::Int(*v as i64),
        Data::Unsigned(v) | Data::Enum(v) => Cell::Int(*v as i64),
        Data::LongUnsigned(v) => Cell::Int(*v as i64),
        Data::Long64(v) => Cell::Int(*v),
        Data::Long64Unsigned(v) => Cell::U64(*v),
        Data::Float32(v) => Cell::F32(*v),
        Data::Float64(v) => Cell::F64(*v),
        Data::Date(b) => Cell::Date(*b),
        Data::Time(b) => Cell::Time(*b),
        other => Cell::Composite(other.clone()),
    }
}

/// Compare a bulk cell with the generic value (byte strings by content).
fn same(c: &Cell<'_>, d: &Data) -> bool {
    match (c, d) {
        (Cell::DateTime(dt), Data::OctetString(b)) => dt.to_bytes().as_slice() == b.as_slice(),
        (Cell::DateTime(dt), Data::DateTime(b)) => dt.to_bytes() == *b,
        (Cell::Octets(a), Data::OctetString(b)) => *a == b.as_slice(),
        (Cell::Octets(a), Data::DateTime(b)) => *a == b.as_slice(),
        (Cell::Visible(a), Data::VisibleString(b)) | (Cell::Utf8(a), Data::Utf8String(b)) => *a == b.as_slice(),
        (Cell::BitString { bits, bytes }, Data::BitString { bits: b2, bytes: y2 }) => {
            bits == b2 && *bytes == y2.as_slice()
        }
        (Cell::F32(a), Data::Float32(b)) => a.to_bits() == b.to_bits(),
        (Cell::F64(a), Data::Float64(b)) => a.to_bits() == b.to_bits(),
        _ => *c == expected_cell(d),
    }
}

fn simple_data() -> impl Strategy<Value = Data> {
    prop_oneof![
        Just(Data::Null),
        any::<bool>().prop_map(Data::Boolean),
        any::<i32>().prop_map(Data::DoubleLong),
        any::<u32>().prop_map(Data::DoubleLongUnsigned),
        any::<i8>().prop_map(Data::Integer),
        any::<i16>().prop_map(Data::Long),
        any::<u8>().prop_map(Data::Unsigned),
        any::<u16>().prop_map(Data::LongUnsigned),
        any::<i64>().prop_map(Data::Long64),
        any::<u64>().prop_map(Data::Long64Unsigned),
        any::<u8>().prop_map(Data::Enum),
        any::<f32>().prop_map(Data::Float32),
        any::<f64>().prop_map(Data::Float64),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Data::OctetString),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Data::VisibleString),
        (0usize..20).prop_map(|bits| Data::BitString { bits, bytes: vec![0xA5; bits.div_ceil(8)] }),
        any::<[u8; 12]>().prop_map(Data::DateTime),
        any::<[u8; 5]>().prop_map(Data::Date),
        any::<[u8; 4]>().prop_map(Data::Time),
        (2000u16..2100, 1u8..13, 1u8..29, 0u8..24, 0u8..60).prop_map(|(y, m, d, h, mi)| {
            let dt = CosemDateTime::from_components(y, m, d, h, mi, 0, None, Some(-60), Some(0))
                .unwrap_or_else(|e| panic!("{e}"));
            Data::OctetString(dt.to_bytes().to_vec())
        }),
        proptest::collection::vec(any::<u8>().prop_map(Data::Unsigned), 0..3).prop_map(Data::Structure),
    ]
}

fn clock(y: u16, mo: u8, d: u8, h: u8, mi: u8, dev: Option<i16>) -> Data {
    let dt = CosemDateTime::from_components(y, mo, d, h, mi, 0, None, dev, Some(0)).unwrap_or_else(|e| panic!("{e}"));
    Data::OctetString(dt.to_bytes().to_vec())
}

fn idis_rows(n: usize, compressed: bool) -> Vec<Data> {
    (0..n)
        .map(|i| {
            let c = if compressed && i > 0 { Data::Null } else { clock(2026, 11, 27, 0, 0, Some(-60)) };
            Data::Structure(vec![
                c,
                Data::Unsigned(if i == 2 { 0x80 } else { 0 }),
                Data::DoubleLongUnsigned(12_345 + i as u32),
                Data::DoubleLongUnsigned(7),
            ])
        })
        .collect()
}

#[test]
fn derives_null_clocks_from_capture_period() {
    let buf = Data::Array(idis_rows(4, true)).encode();
    let t = decode_table(&buf, ClockColumn::Auto, Some(900)).unwrap();
    assert_eq!(t.rows(), 4);
    let d = t.row(3)[0].datetime().unwrap();
    assert_eq!(d.to_iso().unwrap(), "2026-11-27T00:45:00+01:00");
    assert!(matches!(t.row(3)[0], Cell::Derived(_)));
    let e = decode_table(&buf, ClockColumn::Auto, None).unwrap_err();
    assert_eq!((e.layer, e.field), (Layer::Profile, "clock"));
}

#[test]
fn compact_array_matches_array_form() {
    let rows = idis_rows(3, false);
    let desc = TypeDesc::Structure(vec![
        TypeDesc::Simple(tag::OCTET_STRING),
        TypeDesc::Simple(tag::UNSIGNED),
        TypeDesc::Simple(tag::DOUBLE_LONG_UNSIGNED),
        TypeDesc::Simple(tag::DOUBLE_LONG_UNSIGNED),
    ]);
    let a = Data::Array(rows.clone()).encode();
    let c = Data::CompactArray { description: desc, elements: rows }.encode();
    let ta = decode_table(&a, ClockColumn::Auto, None).unwrap();
    let tc = decode_table(&c, ClockColumn::Auto, None).unwrap();
    assert_eq!(ta.cells, tc.cells);
    assert_eq!(tc.rows(), 3);
}

#[test]
fn errors_name_layer_field_offset() {
    let e = parse(&[0x02, 0x00]).unwrap_err();
    assert_eq!((e.layer, e.field, e.offset), (Layer::Profile, "buffer type tag", 0));
    let e = parse(&[0x01, 0x01, 0x11, 0x00]).unwrap_err();
    assert_eq!((e.field, e.offset), ("buffer entry tag", 2));
    let e = parse(&[0x01, 0x01, 0x02, 0x01, 0x06, 0x00]).unwrap_err();
    assert_eq!(e.field, "double-long-unsigned");
    assert!(parse(&[0x01, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn exact_decimals() {
    let cases: [(bool, u64, i8, &str); 7] = [
        (false, 12345, -2, "123.45"),
        (false, 5, -2, "0.05"),
        (true, 5, -3, "-0.005"),
        (false, 0, 3, "0"),
        (false, 12, 3, "12000"),
        (false, 100, -2, "1.00"),
        (false, u64::MAX, -1, "1844674407370955161.5"),
    ];
    for (neg, m, s, want) in cases {
        let mut out = Vec::new();
        write_decimal(&mut out, neg, m, s);
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}

#[test]
fn json_blocks() {
    let buf = Data::Array(idis_rows(3, true)).encode();
    let cols = [ColumnSpec {
        index: 2,
        reading_type: "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0".into(),
        obis: "1.0.1.8.0.255".into(),
        unit: "kWh".into(),
        scaler: -3,
    }];
    let j = String::from_utf8(profile_to_json(&buf, 0, &cols, Some(1), Some(900)).unwrap()).unwrap();
    assert_eq!(
        j,
        "[{\"ReadingType\":{\"ref\":\"0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0\",\"obis\":\"1.0.1.8.0.255\",\"unit\":\"kWh\"},\
         \"IntervalReadings\":[{\"timeStamp\":\"2026-11-26T23:00:00Z\",\"value\":12.345},\
         {\"timeStamp\":\"2026-11-26T23:15:00Z\",\"value\":12.346},\
         {\"timeStamp\":\"2026-11-26T23:30:00Z\",\"value\":12.347,\"ReadingQualities\":[{\"ref\":\"1.2.32\"}]}]}]"
    );
    let e = profile_to_json(&buf, 1, &cols, None, Some(900)).unwrap_err();
    assert_eq!(e.field, "clock");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn bulk_matches_generic(rows in proptest::collection::vec(proptest::collection::vec(simple_data(), 0..6), 0..12)) {
        let buf = Data::Array(rows.iter().cloned().map(Data::Structure).collect()).encode();
        let t = parse(&buf).unwrap();
        let generic = crate::axdr::decode(&buf).unwrap();
        let Data::Array(grows) = generic else { panic!("not an array") };
        prop_assert_eq!(t.rows(), grows.len());
        for (i, g) in grows.iter().enumerate() {
            let Data::Structure(vals) = g else { panic!("not a structure") };
            prop_assert_eq!(t.row(i).len(), vals.len());
            for (c, d) in t.row(i).iter().zip(vals) {
                prop_assert!(same(c, d), "{:?} vs {:?}", c, d);
            }
        }
    }

    #[test]
    fn bulk_matches_generic_on_compact_arrays(
        rows in proptest::collection::vec((any::<u32>(), any::<i16>(), proptest::collection::vec(any::<u8>(), 0..14), any::<u64>()), 0..12)
    ) {
        let desc = TypeDesc::Structure(vec![
            TypeDesc::Simple(tag::DOUBLE_LONG_UNSIGNED),
            TypeDesc::Simple(tag::LONG),
            TypeDesc::Simple(tag::OCTET_STRING),
            TypeDesc::Simple(tag::LONG64_UNSIGNED),
        ]);
        let elements: Vec<Data> = rows
            .into_iter()
            .map(|(a, b, c, d)| Data::Structure(vec![Data::DoubleLongUnsigned(a), Data::Long(b), Data::OctetString(c), Data::Long64Unsigned(d)]))
            .collect();
        let buf = Data::CompactArray { description: desc, elements }.encode();
        let t = parse(&buf).unwrap();
        let Data::CompactArray { elements: generic, .. } = crate::axdr::decode(&buf).unwrap() else { panic!("not a compact-array") };
        prop_assert_eq!(t.rows(), generic.len());
        for (i, g) in generic.iter().enumerate() {
            let Data::Structure(vals) = g else { panic!("not a structure") };
            for (c, d) in t.row(i).iter().zip(vals) {
                prop_assert!(same(c, d), "{:?} vs {:?}", c, d);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), period in proptest::option::of(0u32..100_000)) {
        let _ = decode_table(&bytes, ClockColumn::Auto, period);
        let cols = [ColumnSpec { index: 1, reading_type: "x".into(), obis: String::new(), unit: String::new(), scaler: -2 }];
        let _ = profile_to_json(&bytes, 0, &cols, Some(2), period);
    }

    #[test]
    fn mutated_buffers_never_panic(pos in 0usize..200, byte in any::<u8>()) {
        let mut buf = Data::Array(idis_rows(5, true)).encode();
        let n = buf.len();
        if let Some(b) = buf.get_mut(pos % n) { *b = byte; }
        let _ = decode_table(&buf, ClockColumn::Auto, Some(900));
        let cols = [ColumnSpec { index: 2, reading_type: "x".into(), obis: String::new(), unit: String::new(), scaler: -2 }];
        let _ = profile_to_json(&buf, 0, &cols, Some(1), Some(900));
    }
}
