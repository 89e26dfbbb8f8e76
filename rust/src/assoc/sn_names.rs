//! Short-name (SN) referencing: the table that turns `CLASS/OBIS/ATTR` (and
//! methods) into 16-bit short names and back.
//!
//! Every object of an SN logical device has a base name (its attribute 1);
//! attribute `n` is at `base + 8 (n - 1)`. Methods sit at a per-class offset
//! from the base, 8 apart (the SN method offsets of the Blue Book, DLMS UA
//! 1000-1, "x + 0x28" and so on; [`method_offset`]). The table comes from the
//! current association's object list (Association SN, class 12, attribute 2:
//! `{base_name long, class_id long-unsigned, version unsigned, logical_name}`
//! per object); the current association itself is always at 0xFA00.

use crate::apdu::access::Obis;
use crate::apdu::sn::CURRENT_ASSOCIATION_BASE_NAME;
use crate::apdu::{AttributeDescriptor, MethodDescriptor};
use crate::axdr::Data;
use crate::error::{Error, ErrorKind, Layer, Result};

/// Association SN (class 12), the current association's logical name.
pub const ASSOCIATION_SN_CLASS: u16 = 12;
pub const CURRENT_ASSOCIATION_OBIS: Obis = [0, 0, 40, 0, 0, 255];

/// One object of the SN object list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortNameEntry {
    pub base_name: u16,
    pub class_id: u16,
    pub version: u8,
    pub obis: Obis,
}

/// The number of attributes of a class (Blue Book), for the classes a meter
/// of this gateway is read with; None when not known.
pub fn attribute_count(class_id: u16) -> Option<u8> {
    Some(match class_id {
        1 => 2,
        3 => 3,
        4 => 5,
        5 => 9,
        6 => 4,
        7 => 8,
        8 => 9,
        9 | 11 | 17 => 2,
        12 => 4,
        18 => 7,
        20 => 10,
        21 | 22 | 70 => 4,
        23 => 9,
        40 => 7,
        64 => 5,
        71 => 11,
        _ => return None,
    })
}

/// The SN offset of method 1 of a class and its number of methods (Blue Book
/// "Short name" columns): register reset at x + 0x28, clock
/// adjust_to_quarter at x + 0x60, disconnect control remote_disconnect at
/// x + 0x20, … None: the class has no methods (or they are not known here).
pub fn method_offset(class_id: u16) -> Option<(u16, u8)> {
    Some(match class_id {
        3 => (0x28, 1),
        4 => (0x38, 1),
        5 => (0x48, 2),
        6 => (0x30, 3),
        7 => (0x58, 4),
        8 => (0x60, 6),
        9 => (0x20, 1),
        11 => (0x10, 2),
        12 => (0x20, 8),
        18 => (0x40, 4),
        20 => (0x50, 1),
        40 => (0x38, 1),
        64 => (0x30, 8),
        70 => (0x20, 2),
        _ => return None,
    })
}

/// What a short name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnTarget {
    Attribute(AttributeDescriptor),
    Method(MethodDescriptor),
}

fn obis_text(o: &Obis) -> String {
    format!("{}.{}.{}.{}.{}.{}", o[0], o[1], o[2], o[3], o[4], o[5])
}

fn sn_error(field: &'static str, msg: String) -> Error {
    Error::new(Layer::Apdu, field, 0, ErrorKind::Other(msg))
}

/// The short names of one logical device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShortNames {
    entries: Vec<ShortNameEntry>,
    /// The object list was read (or given): a name missing from it is an error
    /// that says so, not "read the object list first".
    loaded: bool,
}

impl ShortNames {
    /// A table of `entries` (the current association is added when missing).
    pub fn new(entries: Vec<ShortNameEntry>) -> Self {
        let mut t = ShortNames { entries, loaded: true };
        t.ensure_current_association();
        t
    }

    fn ensure_current_association(&mut self) {
        let here =
            self.entries.iter().any(|e| e.class_id == ASSOCIATION_SN_CLASS && e.obis == CURRENT_ASSOCIATION_OBIS);
        if !here {
            self.entries.push(ShortNameEntry {
                base_name: CURRENT_ASSOCIATION_BASE_NAME,
                class_id: ASSOCIATION_SN_CLASS,
                version: 0,
                obis: CURRENT_ASSOCIATION_OBIS,
            });
        }
    }

    /// Only the current association (before its object list was read).
    pub fn bootstrap() -> Self {
        let mut t = ShortNames::default();
        t.ensure_current_association();
        t
    }

    pub fn loaded(&self) -> bool {
        self.loaded
    }

    pub fn entries(&self) -> &[ShortNameEntry] {
        &self.entries
    }

    /// The table from the value of Association SN attribute 2 (raw A-XDR).
    pub fn from_object_list(raw: &[u8]) -> Result<Self> {
        let bad = |i: usize, what: String| sn_error("SN object_list", format!("entry {i}: {what}"));
        let Data::Array(items) = crate::axdr::decode(raw)? else {
            return Err(sn_error("SN object_list", "not an array".into()));
        };
        let mut entries = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Data::Structure(f) = item else { return Err(bad(i, "not a structure".into())) };
            let [base, class, version, ln, ..] = f.as_slice() else {
                return Err(bad(i, format!("{} fields, expected 4", f.len())));
            };
            let base_name = match base {
                Data::Long(b) => *b as u16,
                Data::LongUnsigned(b) => *b,
                other => return Err(bad(i, format!("base_name is {other:?}, expected a long"))),
            };
            let Data::LongUnsigned(class_id) = class else {
                return Err(bad(i, "class_id is not long-unsigned".into()));
            };
            let Data::Unsigned(version) = version else { return Err(bad(i, "version is not unsigned".into())) };
            let Data::OctetString(ln) = ln else { return Err(bad(i, "logical_name is not an octet-string".into())) };
            let obis =
                <Obis>::try_from(ln.as_slice()).map_err(|_| bad(i, format!("logical_name of {} bytes", ln.len())))?;
            entries.push(ShortNameEntry { base_name, class_id: *class_id, version: *version, obis });
        }
        Ok(ShortNames::new(entries))
    }

    /// The object list value (Association SN attribute 2) of this table.
    pub fn object_list(&self) -> Vec<u8> {
        Data::Array(
            self.entries
                .iter()
                .map(|e| {
                    Data::Structure(vec![
                        Data::Long(e.base_name as i16),
                        Data::LongUnsigned(e.class_id),
                        Data::Unsigned(e.version),
                        Data::OctetString(e.obis.to_vec()),
                    ])
                })
                .collect(),
        )
        .encode()
    }

    /// Whether the object list was read and does not have this object (its
    /// attributes and methods are then object-undefined, as a meter answers).
    pub fn lacks(&self, class_id: u16, obis: &Obis) -> bool {
        self.loaded && !self.entries.iter().any(|e| e.class_id == class_id && e.obis == *obis)
    }

    fn base_of(&self, class_id: u16, obis: &Obis) -> Result<u16> {
        if let Some(e) = self.entries.iter().find(|e| e.class_id == class_id && e.obis == *obis) {
            return Ok(e.base_name);
        }
        let why = if self.loaded {
            "is not in the meter's SN object list"
        } else {
            "has no known short name yet (the SN object list, 12/0.0.40.0.0.255/2, was not read)"
        };
        Err(sn_error("short name", format!("{class_id}/{} {why}", obis_text(obis))))
    }

    /// The short name of an attribute.
    pub fn attribute(&self, a: &AttributeDescriptor) -> Result<u16> {
        let base = self.base_of(a.class_id, &a.obis)?;
        let id = u8::try_from(a.attribute_id).ok().filter(|i| *i >= 1).ok_or_else(|| {
            sn_error("short name", format!("attribute {} has no short name (attributes start at 1)", a.attribute_id))
        })?;
        crate::apdu::sn::attribute_short_name(base, id)
            .ok_or_else(|| sn_error("short name", format!("attribute {id} of base name 0x{base:04X} is past 0xFFFF")))
    }

    /// The short name of a method (base + the class's method offset + 8 (m - 1)).
    pub fn method(&self, m: &MethodDescriptor) -> Result<u16> {
        let base = self.base_of(m.class_id, &m.obis)?;
        let Some((offset, count)) = method_offset(m.class_id) else {
            return Err(sn_error("short name", format!("class {} has no SN method offsets known here", m.class_id)));
        };
        let id = u8::try_from(m.method_id).ok().filter(|i| (1..=count).contains(i)).ok_or_else(|| {
            sn_error("short name", format!("method {} of class {} (it has 1..={count})", m.method_id, m.class_id))
        })?;
        let sn = u32::from(base) + u32::from(offset) + 8 * u32::from(id - 1);
        u16::try_from(sn)
            .map_err(|_| sn_error("short name", format!("method {id} of base 0x{base:04X} is past 0xFFFF")))
    }

    /// What short name `name` stands for: the object with the highest base
    /// name not above it, then an attribute or a method of its class.
    pub fn target(&self, name: u16) -> Option<SnTarget> {
        let e = self.entries.iter().filter(|e| e.base_name <= name).max_by_key(|e| e.base_name)?;
        let offset = name - e.base_name;
        if offset % 8 != 0 {
            return None;
        }
        if let Some((first, count)) = method_offset(e.class_id) {
            if offset >= first && offset < first + 8 * u16::from(count) {
                let method_id = ((offset - first) / 8 + 1) as i8;
                return Some(SnTarget::Method(MethodDescriptor { class_id: e.class_id, obis: e.obis, method_id }));
            }
        }
        let index = offset / 8 + 1;
        let within = attribute_count(e.class_id).map_or(index <= 32, |n| index <= u16::from(n));
        within.then_some(SnTarget::Attribute(AttributeDescriptor {
            class_id: e.class_id,
            obis: e.obis,
            attribute_id: index as i8,
        }))
    }
}
