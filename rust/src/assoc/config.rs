//! The configuration of an association, for either role, and its validation.

use std::fmt;

use crate::apdu::initiate::conformance_bit;
use crate::error::{Error, ErrorKind, Layer, Result};

/// Named deviations from the standard a meter model may be allowed (the
/// `[models.NAME]` quirk settings of the gateway configuration): name, what it
/// takes, whether it is allowed by default. The structural ones are allowed by
/// default; `plain-initiate-response` touches security and is opt-in. None
/// touches tags, invocation counters or protection levels. See [`crate::apdu::quirks`].
pub use crate::apdu::quirks::QUIRKS as KNOWN_QUIRKS;

/// Conformance bits (IEC 62056-5-3; bit 0 is the most significant of 24).
pub mod bits {
    pub const GENERAL_PROTECTION: u32 = 1 << 22;
    pub const GENERAL_BLOCK_TRANSFER: u32 = 1 << 21;
    pub const BLOCK_TRANSFER_WITH_GET: u32 = 1 << 12;
    pub const BLOCK_TRANSFER_WITH_SET: u32 = 1 << 11;
    pub const BLOCK_TRANSFER_WITH_ACTION: u32 = 1 << 10;
    pub const MULTIPLE_REFERENCES: u32 = 1 << 9;
    pub const GET: u32 = 1 << 4;
    pub const SET: u32 = 1 << 3;
    pub const SELECTIVE_ACCESS: u32 = 1 << 2;
    pub const ACTION: u32 = 1;
    pub const READ: u32 = 1 << 20;
    pub const WRITE: u32 = 1 << 19;
    pub const UNCONFIRMED_WRITE: u32 = 1 << 18;
    pub const INFORMATION_REPORT: u32 = 1 << 8;
    pub const PARAMETERIZED_ACCESS: u32 = 1 << 5;
}

/// What the Python client proposes by default (`dlms/association.py` DEFAULT_CONFORMANCE).
pub fn default_conformance() -> u32 {
    [
        "general-protection",
        "general-block-transfer",
        "block-transfer-with-get-or-read",
        "block-transfer-with-set-or-write",
        "block-transfer-with-action",
        "multiple-references",
        "data-notification",
        "access",
        "get",
        "set",
        "selective-access",
        "event-notification",
        "action",
    ]
    .iter()
    .filter_map(|n| conformance_bit(n))
    .sum()
}

/// The suite-0 keys of one side: its own system title, the global
/// encryption key (EK, also the GMAC key of HLS-GMAC) and the authentication key.
/// `Debug` shows the system title only.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    pub system_title: [u8; 8],
    pub ek: [u8; 16],
    pub ak: [u8; 16],
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys {{ system_title: {}, ek: .., ak: .. }}", hex(&self.system_title))
    }
}

/// The authentication mechanism: the client uses it, the server requires it.
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub enum Authentication {
    /// Lowest level security (mechanism 0).
    None,
    /// Low level security (mechanism 1): the password.
    Lls { password: Vec<u8> },
    /// HLS mechanism 5 (GMAC): needs [`AssociationConfig::keys`].
    HlsGmac,
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Authentication::None => "None",
            Authentication::Lls { .. } => "Lls { password: .. }",
            Authentication::HlsGmac => "HlsGmac",
        })
    }
}

impl Authentication {
    /// The mechanism number in the mechanism-name OID.
    pub fn mechanism(&self) -> u8 {
        match self {
            Authentication::None => 0,
            Authentication::Lls { .. } => 1,
            Authentication::HlsGmac => 5,
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Authentication::None => "none",
            Authentication::Lls { .. } => "lls",
            Authentication::HlsGmac => "hls-gmac",
        }
    }
}

/// How the xDLMS APDUs after the AARQ are ciphered. The InitiateRequest of
/// the AARQ (and of the RLRQ) is always glo-ciphered with the global key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherMode {
    /// glo- service-specific APDUs, global key.
    Glo,
    /// ded- service-specific APDUs, the dedicated key sent in the InitiateRequest.
    Ded,
    /// general-glo-ciphering (carries the sender's system title), global key.
    GeneralGlo,
    /// general-ded-ciphering, dedicated key.
    GeneralDed,
}

impl CipherMode {
    pub fn dedicated(self) -> bool {
        matches!(self, CipherMode::Ded | CipherMode::GeneralDed)
    }
    pub fn general(self) -> bool {
        matches!(self, CipherMode::GeneralGlo | CipherMode::GeneralDed)
    }
}

/// Ciphering of the association ("logical-name-with-ciphering" context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ciphering {
    /// 0x10 authentication, 0x20 encryption, 0x30 both. The client protects its
    /// requests with it and requires at least its bits on every answer; the
    /// server requires at least its bits on every request and adds them to the
    /// protection of the request when it answers.
    pub security_control: u8,
    /// Client: how requests are ciphered. Server: ignored (it answers in the
    /// form of each request).
    pub mode: CipherMode,
}

/// How attributes and methods are named on the wire: logical names
/// (GET/SET/ACTION) or short names (Read/Write, `sn_names.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Referencing {
    #[default]
    Ln,
    Sn,
}

impl Referencing {
    pub fn name(self) -> &'static str {
        match self {
            Referencing::Ln => "ln",
            Referencing::Sn => "sn",
        }
    }
}

/// What a client proposes with short-name referencing: read, write,
/// unconfirmed-write, their block transfer, multiple-references,
/// information-report, parameterized-access.
pub fn sn_default_conformance() -> u32 {
    [
        "read",
        "write",
        "unconfirmed-write",
        "block-transfer-with-get-or-read",
        "block-transfer-with-set-or-write",
        "multiple-references",
        "information-report",
        "parameterized-access",
    ]
    .iter()
    .filter_map(|n| conformance_bit(n))
    .sum()
}

/// Everything an association needs, for either role. Fields that concern one
/// role only say so.
#[derive(Debug, Clone, PartialEq)]
pub struct AssociationConfig {
    /// Client: the mechanism used. Server: the mechanism required.
    pub authentication: Authentication,
    /// Our system title and keys: required for HLS-GMAC and for ciphering.
    pub keys: Option<Keys>,
    /// `Some`: the ciphered context (every xDLMS APDU after the AARQ is
    /// protected; plain ones are refused, a short exception-response excepted).
    pub ciphering: Option<Ciphering>,
    /// The peer's system title when known in advance. Client: the AARE's
    /// responding-AP-title must equal it (and it is used when the AARE has
    /// none). Server: the AARQ's calling-AP-title must equal it (and it is used
    /// when the AARQ has none, e.g. HLS-GMAC without ciphering).
    pub peer_system_title: Option<[u8; 8]>,
    /// Client: the conformance proposed. Server: the conformance offered
    /// (the negotiated one is the intersection).
    pub conformance: u32,
    /// Our max receive PDU size (proposed / announced). Every APDU received is
    /// refused above it (0 = 65535).
    pub max_receive_pdu: u16,
    /// Client: a cap below the server's max receive PDU size, for meters that
    /// advertise more than they take. Larger SET/ACTION go out in blocks.
    pub max_send_pdu: Option<u16>,
    /// Client: seconds of silence after which a request (or the AARE, HLS
    /// pass 4, the RLRE) times out; every block of an answer restarts it.
    pub response_timeout: f64,
    /// The ceiling of one reassembled answer or request (datablocks, pblocks, GBT).
    pub max_block_transfer: usize,
    /// Client: requests in flight at once (1..=15); more wait their turn.
    pub max_outstanding: u8,
    /// Client: the priority bit of invoke-id-and-priority (high = 1).
    pub invoke_priority_high: bool,
    /// Our GBT receive window (1..=63), announced in every GBT APDU we send.
    pub gbt_window: u8,
    /// Client: how often a GBT transfer stalled by a lost block is asked again
    /// (on the response timeout) before the request times out.
    pub gbt_retries: u8,
    /// The event queue bound: while it holds this many events, received APDUs
    /// are dropped (and counted in [`Stats`](super::Stats)).
    pub max_events: usize,
    /// Client: how far ahead of our confirmed position (the counter after the
    /// last one an authenticated answer confirmed, else the first granted) an
    /// exception-response's counter hint may be to be surfaced as
    /// [`ClientEvent::CounterHint`](super::ClientEvent).
    pub max_counter_hint_jump: u32,
    /// The last invocation counter seen from the peer's system title
    /// (persisted by the caller): anything not above it is a replay.
    pub last_incoming_counter: Option<u32>,
    /// Client: the [`KNOWN_QUIRKS`] allowed for this meter model (default:
    /// those allowed by default; empty: strict, every quirk refused).
    pub quirks: Vec<String>,
    /// LN or SN referencing: the application context (1/3 or 2/4) and the
    /// services. Server: the only context it accepts.
    pub referencing: Referencing,
}

impl Default for AssociationConfig {
    fn default() -> Self {
        AssociationConfig {
            authentication: Authentication::None,
            keys: None,
            ciphering: None,
            peer_system_title: None,
            conformance: default_conformance(),
            max_receive_pdu: 0xFFFF,
            max_send_pdu: None,
            response_timeout: 10.0,
            max_block_transfer: 8 << 20,
            max_outstanding: 1,
            invoke_priority_high: true,
            gbt_window: 1,
            gbt_retries: 2,
            max_events: 256,
            max_counter_hint_jump: 1 << 20,
            last_incoming_counter: None,
            quirks: crate::apdu::quirks::default_quirks().into_iter().map(String::from).collect(),
            referencing: Referencing::Ln,
        }
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn bad(field: &'static str, found: impl fmt::Display, expected: &'static str) -> Error {
    Error::invalid(Layer::Apdu, field, 0, found, expected)
}

impl AssociationConfig {
    /// Check the configuration; the error names the field, its value and the rule.
    pub fn validate(&self) -> Result<()> {
        if let Authentication::Lls { password } = &self.authentication {
            if password.is_empty() || password.len() > 64 {
                return Err(bad(
                    "config.authentication (LLS password)",
                    format!("{} bytes", password.len()),
                    "1 to 64 bytes",
                ));
            }
        }
        let needs_keys = matches!(self.authentication, Authentication::HlsGmac) || self.ciphering.is_some();
        if needs_keys && self.keys.is_none() {
            return Err(bad("config.keys", "none", "system title, EK and AK (HLS-GMAC and ciphering need them)"));
        }
        if let Some(c) = self.ciphering {
            if !matches!(c.security_control, 0x10 | 0x20 | 0x30) {
                return Err(bad(
                    "config.ciphering.security_control",
                    format!("0x{:02x}", c.security_control),
                    "0x10 (authentication), 0x20 (encryption) or 0x30 (both)",
                ));
            }
            if c.mode.dedicated() && c.security_control & 0x20 == 0 {
                return Err(bad(
                    "config.ciphering.security_control",
                    format!("0x{:02x} with a dedicated key", c.security_control),
                    "0x20 or 0x30: the dedicated key travels in the InitiateRequest and must be encrypted",
                ));
            }
        }
        if self.sn() && matches!(self.authentication, Authentication::HlsGmac) {
            return Err(bad(
                "config.referencing",
                "sn with HLS-GMAC",
                "sn with authentication none or lls (reply_to_HLS_authentication of Association SN is not served)",
            ));
        }
        if self.max_receive_pdu != 0 && self.max_receive_pdu < 64 {
            return Err(bad("config.max_receive_pdu", self.max_receive_pdu, "0 (65535) or 64..=65535"));
        }
        if let Some(m) = self.max_send_pdu {
            if m < 64 {
                return Err(bad("config.max_send_pdu", m, "64..=65535"));
            }
        }
        if !(self.response_timeout.is_finite() && self.response_timeout > 0.0) {
            return Err(bad("config.response_timeout", self.response_timeout, "a positive number of seconds"));
        }
        if self.max_block_transfer < 1 {
            return Err(bad("config.max_block_transfer", self.max_block_transfer, "at least 1 byte"));
        }
        if !(1..=15).contains(&self.max_outstanding) {
            return Err(bad("config.max_outstanding", self.max_outstanding, "1..=15"));
        }
        if !(1..=63).contains(&self.gbt_window) {
            return Err(bad("config.gbt_window", self.gbt_window, "1..=63"));
        }
        if self.max_events < 8 {
            return Err(bad("config.max_events", self.max_events, "at least 8"));
        }
        if self.conformance > 0x00FF_FFFF {
            return Err(bad("config.conformance", format!("0x{:x}", self.conformance), "24 bits"));
        }
        for q in &self.quirks {
            if !KNOWN_QUIRKS.iter().any(|(n, _, _)| n == q) {
                let known: Vec<&str> = KNOWN_QUIRKS.iter().map(|(n, _, _)| *n).collect();
                return Err(Error::new(
                    Layer::Apdu,
                    "config.quirks",
                    0,
                    ErrorKind::Other(format!("{q:?} is not a known quirk (known: {})", known.join(", "))),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn quirk(&self, name: &str) -> bool {
        self.quirks.iter().any(|q| q == name)
    }

    /// The decode quirks allowed (what [`crate::apdu::decode_tolerant`] may take).
    pub(crate) fn tolerance(&self) -> crate::apdu::Tolerance {
        crate::apdu::Tolerance::from_names(&self.quirks)
    }

    /// The application context number: 1 LN, 2 SN, 3 LN ciphered, 4 SN ciphered.
    pub(crate) fn context(&self) -> u8 {
        let sn = u8::from(self.referencing == Referencing::Sn);
        1 + sn + 2 * u8::from(self.ciphering.is_some())
    }

    pub(crate) fn sn(&self) -> bool {
        self.referencing == Referencing::Sn
    }

    /// Our max receive PDU size as a number of bytes (0 means 65535).
    pub(crate) fn receive_limit(&self) -> usize {
        match self.max_receive_pdu {
            0 => 0xFFFF,
            n => n as usize,
        }
    }
}
