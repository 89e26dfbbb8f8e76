//! Tolerant reception: the named structural quirks a decode may take, and
//! what it reports when it took one.
//!
//! [`decode`](super::decode) is strict. [`decode_tolerant`] first decodes
//! strictly; only when that fails does it try again allowing the quirks of a
//! [`Tolerance`], and returns the APDU with the list of quirks it needed
//! ([`Tolerated`], one per place). When the APDU decodes only with a quirk the
//! tolerance does not allow, the error of the allowed decode is returned with
//! the quirk named ("… the quirk trailing-bytes is not allowed for this meter
//! model").
//!
//! Every quirk here is structural and outside security: nothing tolerates a
//! wrong tag, counter, protection level, the length of a ciphered APDU or a
//! ciphered initiate (those are decoded strictly whatever the tolerance).

use std::fmt;

use crate::error::{Error, ErrorKind};

/// Bytes after a complete APDU, or after the complete value of an answer:
/// the value is taken, the rest ignored. Never after a ciphered APDU.
pub const TRAILING_BYTES: &str = "trailing-bytes";
/// An ACSE field (`[n] { inner TLV }`) whose outer length disagrees with a
/// complete, well-formed inner TLV: the inner TLV is taken.
pub const ACSE_FIELD_LENGTH: &str = "acse-field-length";
/// The AARE's InitiateResponse is one byte longer or shorter than its octet
/// string says (when shorter, the lengths around it are short by the same byte).
pub const INITIATE_RESPONSE_LENGTH: &str = "initiate-response-length";
/// An AARE rejecting the association carries no user-information.
pub const REJECTION_WITHOUT_USER_INFORMATION: &str = "rejection-without-user-information";
/// An event-notification-request whose time is flagged 0x09 (the Data tag of
/// an octet-string) where A-XDR flags a present OPTIONAL with 0x01: the time
/// (length and octets, as for 0x01) is taken. Seen from Iskraemeco Mx382
/// (DSMR 2.2) meters' alarm pushes.
pub const EVENT_TIME_DATA_TAG: &str = "event-time-data-tag";
/// A push body whose array items are `{ attribute descriptor without data
/// tags, value }` (Sagemcom XT211): not recognisable from the bytes, so only
/// for a model that names it (never on by default; `crate::axdr_descriptors`).
pub const UNTAGGED_ATTRIBUTE_DESCRIPTORS: &str = "untagged-attribute-descriptors";
/// The AARE of a ciphered association carries a plain InitiateResponse, or none
/// (it touches security: never on by default).
pub const PLAIN_INITIATE_RESPONSE: &str = "plain-initiate-response";

/// Every quirk: name, what it takes, whether it is allowed by default.
pub const QUIRKS: &[(&str, &str, bool)] = &[
    (TRAILING_BYTES, "bytes after a complete APDU or after the complete value of an answer (ignored)", true),
    (
        ACSE_FIELD_LENGTH,
        "an ACSE field of the AARE whose outer length disagrees with its complete inner value (the inner value is taken)",
        true,
    ),
    (
        INITIATE_RESPONSE_LENGTH,
        "the AARE's InitiateResponse is one byte longer or shorter than its octet string says",
        true,
    ),
    (
        REJECTION_WITHOUT_USER_INFORMATION,
        "an AARE rejecting the association without user-information (the rejection is reported as such)",
        true,
    ),
    (
        EVENT_TIME_DATA_TAG,
        "an event-notification whose time is flagged 0x09 (an octet-string's Data tag) instead of 0x01 (present)",
        true,
    ),
    (
        UNTAGGED_ATTRIBUTE_DESCRIPTORS,
        "a push body whose array items are {attribute descriptor without data tags, value} (decoded that way only for a model that lists it)",
        false,
    ),
    (
        PLAIN_INITIATE_RESPONSE,
        "the AARE of a ciphered association carries a plain (unciphered) InitiateResponse, or none",
        false,
    ),
];

/// The quirks allowed when a model says nothing: every harmless one.
pub fn default_quirks() -> Vec<&'static str> {
    QUIRKS.iter().filter(|(_, _, d)| *d).map(|(n, _, _)| *n).collect()
}

/// The static name of a known quirk.
pub fn quirk_name(name: &str) -> Option<&'static str> {
    QUIRKS.iter().find(|(n, _, _)| *n == name).map(|(n, _, _)| *n)
}

/// Which decode quirks may be taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tolerance {
    pub trailing_bytes: bool,
    pub acse_field_length: bool,
    pub initiate_response_length: bool,
    pub event_time_data_tag: bool,
}

impl Tolerance {
    /// Nothing tolerated (what [`super::decode`] does).
    pub const NONE: Tolerance = Tolerance {
        trailing_bytes: false,
        acse_field_length: false,
        initiate_response_length: false,
        event_time_data_tag: false,
    };
    /// Every decode quirk.
    pub const ALL: Tolerance = Tolerance {
        trailing_bytes: true,
        acse_field_length: true,
        initiate_response_length: true,
        event_time_data_tag: true,
    };

    /// The decode quirks among these names (other names are ignored here).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Tolerance {
        let has = |q: &str| names.iter().any(|n| n.as_ref() == q);
        Tolerance {
            trailing_bytes: has(TRAILING_BYTES),
            acse_field_length: has(ACSE_FIELD_LENGTH),
            initiate_response_length: has(INITIATE_RESPONSE_LENGTH),
            event_time_data_tag: has(EVENT_TIME_DATA_TAG),
        }
    }

    /// This tolerance with `quirk` refused.
    pub fn without(mut self, quirk: &str) -> Tolerance {
        match quirk {
            TRAILING_BYTES => self.trailing_bytes = false,
            ACSE_FIELD_LENGTH => self.acse_field_length = false,
            INITIATE_RESPONSE_LENGTH => self.initiate_response_length = false,
            EVENT_TIME_DATA_TAG => self.event_time_data_tag = false,
            _ => {}
        }
        self
    }

    pub fn allows(self, quirk: &str) -> bool {
        match quirk {
            TRAILING_BYTES => self.trailing_bytes,
            ACSE_FIELD_LENGTH => self.acse_field_length,
            INITIATE_RESPONSE_LENGTH => self.initiate_response_length,
            EVENT_TIME_DATA_TAG => self.event_time_data_tag,
            _ => false,
        }
    }
}

/// One quirk taken: its name and what exactly was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tolerated {
    pub quirk: &'static str,
    pub detail: String,
}

impl fmt::Display for Tolerated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.quirk, self.detail)
    }
}

/// The decode context of a tolerant pass: the whole input (a field may need
/// to look past its enclosing length), what may be taken, what was taken.
pub(crate) struct Lenient<'a> {
    pub whole: &'a [u8],
    pub tolerance: Tolerance,
    pub taken: Vec<Tolerated>,
    /// Bytes after the APDU's own length that a field consumed (the
    /// InitiateResponse one byte longer than the lengths around it say).
    pub borrowed: usize,
    /// Where the content of the ACSE APDU being decoded ends (absolute).
    pub acse_end: usize,
}

impl<'a> Lenient<'a> {
    pub fn new(whole: &'a [u8], tolerance: Tolerance) -> Self {
        Lenient { whole, tolerance, taken: Vec::new(), borrowed: 0, acse_end: whole.len() }
    }

    pub fn strict(whole: &'a [u8]) -> Self {
        Lenient::new(whole, Tolerance::NONE)
    }

    /// Take `quirk` if allowed (recording `detail`), else refuse with `refusal`.
    pub fn take(&mut self, quirk: &'static str, detail: impl FnOnce() -> String, refusal: Error) -> Result<(), Error> {
        if self.tolerance.allows(quirk) {
            self.taken.push(Tolerated { quirk, detail: detail() });
            Ok(())
        } else {
            Err(refusal)
        }
    }
}

/// A decode's result with the quirks it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<T> {
    pub value: T,
    pub quirks: Vec<Tolerated>,
}

/// `e` extended with the quirks that would have taken the input.
pub fn refused(e: Error, needed: &[Tolerated]) -> Error {
    let names: Vec<&str> = needed.iter().map(|t| t.quirk).collect();
    let (s, verb) = if names.len() == 1 { ("", "is") } else { ("s", "are") };
    let msg = format!(
        "{}; refused: the quirk{s} {} {verb} not allowed for this meter model ({})",
        e.kind,
        names.join(", "),
        needed.iter().map(Tolerated::to_string).collect::<Vec<_>>().join("; ")
    );
    Error::new(e.layer, e.field, e.offset, ErrorKind::Other(msg))
}

#[cfg(test)]
#[path = "quirks_tests.rs"]
mod tests;
