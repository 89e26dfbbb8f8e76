//! Suite-0 state of one association: the granted outgoing invocation
//! counters, the keys, the peer's system title and its last counter (replay
//! check), and the size arithmetic of ciphered APDUs.

use super::config::{hex, Keys};
use crate::apdu::ciphered::{TAG_GENERAL_DED_CIPHERING, TAG_GENERAL_GLO_CIPHERING};
use crate::error::{Error, ErrorKind, Layer, Result};
use crate::security::{cipher_apdu, decipher_apdu, hls_gmac, hls_gmac_verify, plain_tag, CipherParams, GcmKey};

/// Outgoing invocation counters handed in by the caller: the machine never
/// invents one and never uses one twice.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    next: u64,
    end: u64,
    last_used: Option<u32>,
}

impl Counters {
    /// Grant `first..first+count`. A range that continues the current one
    /// extends it; any other replaces what is left of it (those counters are
    /// simply never used). A range at or below the last counter used is refused.
    pub fn grant(&mut self, first: u32, count: u32) -> Result<()> {
        if count == 0 {
            return Err(Error::invalid(Layer::Security, "grant_counters count", 0, 0, "at least 1"));
        }
        if let Some(last) = self.last_used {
            if first <= last {
                return Err(Error::invalid(
                    Layer::Security,
                    "grant_counters first",
                    0,
                    format!("{first} (last counter used: {last})"),
                    "a counter above the last one used: a counter is never used twice",
                ));
            }
        }
        let end = u64::from(first) + u64::from(count);
        if u64::from(first) == self.end && self.next < self.end {
            self.end = end;
        } else {
            self.next = u64::from(first);
            self.end = end;
        }
        Ok(())
    }

    pub fn available(&self) -> u64 {
        self.end.saturating_sub(self.next)
    }

    pub fn take(&mut self) -> Option<u32> {
        if self.next >= self.end {
            return None;
        }
        let c = u32::try_from(self.next).ok()?;
        self.next += 1;
        self.last_used = Some(c);
        Some(c)
    }

    pub fn last_used(&self) -> Option<u32> {
        self.last_used
    }
}

/// Record `last` as the persisted last counter of `title` in a table of peers.
pub(crate) fn remember(table: &mut Vec<([u8; 8], u32)>, title: [u8; 8], last: u32) {
    match table.iter_mut().find(|(t, _)| *t == title) {
        Some(entry) => entry.1 = entry.1.max(last),
        None => table.push((title, last)),
    }
}

/// How an APDU is (or was) ciphered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Form {
    pub dedicated: bool,
    pub general: bool,
    pub security_control: u8,
}

/// Why a ciphered APDU was refused.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// Tag, framing, key, policy or system title.
    Decipher(Error),
    /// Authenticated, but the counter did not increase.
    Replay { last: u32, error: Error },
}

impl Refusal {
    pub fn error(self) -> Error {
        match self {
            Refusal::Decipher(e) | Refusal::Replay { error: e, .. } => e,
        }
    }
}

/// The keys and the peer of one association.
pub(crate) struct Crypto {
    pub title: [u8; 8],
    ek_raw: [u8; 16],
    ek: GcmKey,
    ak: [u8; 16],
    ded: Option<GcmKey>,
    pub peer_title: Option<[u8; 8]>,
    pub last_incoming: Option<u32>,
    /// The caller's persisted last counters per peer system title, applied
    /// once the peer is known (AARE/AARQ title, a general-ciphering sender).
    known: Vec<([u8; 8], u32)>,
}

fn sec(field: &'static str, msg: String) -> Error {
    Error::new(Layer::Security, field, 0, ErrorKind::Other(msg))
}

/// Is `tag` a glo-/ded- service-specific or general-glo/ded-ciphering APDU?
pub(crate) fn is_ciphered(tag: u8) -> bool {
    plain_tag(tag).is_some() || tag == TAG_GENERAL_GLO_CIPHERING || tag == TAG_GENERAL_DED_CIPHERING
}

/// The form of a ciphered APDU by its tag.
fn form_of(tag: u8) -> (bool, bool) {
    match tag {
        TAG_GENERAL_GLO_CIPHERING => (false, true),
        TAG_GENERAL_DED_CIPHERING => (true, true),
        t => (plain_tag(t).is_some_and(|(_, ded)| ded), false),
    }
}

/// Bytes of an A-XDR length prefix for `n`.
pub(crate) fn len_prefix(n: usize) -> usize {
    match n {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 5,
    }
}

/// The size of a plain APDU of `plain` bytes once ciphered in `form`.
pub(crate) fn ciphered_len(plain: usize, form: Form) -> usize {
    let tag = if form.security_control & 0x10 != 0 { 12 } else { 0 };
    let content = 5 + plain + tag;
    1 + if form.general { 9 } else { 0 } + len_prefix(content) + content
}

impl Crypto {
    pub fn new(keys: &Keys, peer_title: Option<[u8; 8]>, last_incoming: Option<u32>) -> Result<Self> {
        Ok(Crypto {
            title: keys.system_title,
            ek_raw: keys.ek,
            ek: GcmKey::new(&keys.ek, "EK")?,
            ak: keys.ak,
            ded: None,
            peer_title,
            last_incoming,
            known: Vec::new(),
        })
    }

    /// Take the caller's table of last counters per peer system title (and
    /// apply it when the peer is already known).
    pub fn set_known(&mut self, known: &[([u8; 8], u32)]) {
        self.known = known.to_vec();
        if let Some(t) = self.peer_title {
            self.apply_known(t);
        }
    }

    /// The peer is `title`: its persisted last counter, if higher, becomes ours.
    pub fn set_peer(&mut self, title: [u8; 8]) {
        self.peer_title = Some(title);
        self.apply_known(title);
    }

    fn apply_known(&mut self, title: [u8; 8]) {
        if let Some(&(_, last)) = self.known.iter().find(|(t, _)| *t == title) {
            self.last_incoming = self.last_incoming.max(Some(last));
        }
    }

    pub fn set_dedicated(&mut self, key: &[u8]) -> Result<()> {
        self.ded = Some(GcmKey::new(key, "dedicated key")?);
        Ok(())
    }

    pub fn has_dedicated(&self) -> bool {
        self.ded.is_some()
    }

    /// Cipher a plain APDU with invocation counter `ic`. `global_only` forces
    /// the global key and the glo- tag (the InitiateRequest/Response).
    pub fn protect(&self, plain: &[u8], ic: u32, form: Form) -> Result<Vec<u8>> {
        let key = if form.dedicated {
            self.ded.as_ref().ok_or_else(|| sec("dedicated key", "no dedicated key was agreed".into()))?
        } else {
            &self.ek
        };
        let p = CipherParams {
            security_control: form.security_control,
            system_title: &self.title,
            invocation_counter: ic,
            ek: key,
            ak: &self.ak,
        };
        cipher_apdu(plain, &p, form.dedicated, form.general)
    }

    /// Decipher and authenticate `data`, requiring the protection bits of
    /// `required`, then check that its counter increased (recorded only now,
    /// after authentication, and only when the APDU carried a tag). A general-ciphering APDU names its sender: it
    /// must be the known peer (or becomes it when none is known yet).
    pub fn unprotect(&mut self, data: &[u8], required: u8) -> std::result::Result<(Vec<u8>, Form), Refusal> {
        let tag = data.first().copied().unwrap_or(0);
        let (dedicated, general) = form_of(tag);
        let key = if dedicated {
            self.ded.as_ref().ok_or_else(|| {
                Refusal::Decipher(sec(
                    "dedicated key",
                    format!("a ded-ciphered APDU (tag 0x{tag:02x}) but no dedicated key was agreed"),
                ))
            })?
        } else {
            &self.ek
        };
        if !general && self.peer_title.is_none() {
            return Err(Refusal::Decipher(sec(
                "system title",
                "a glo-/ded-ciphered APDU but the peer's system title is unknown (no server system title in the AARE, or no calling-AP-title in the AARQ)".into(),
            )));
        }
        let peer = self.peer_title;
        let d = decipher_apdu(data, peer.as_ref().map(|t| &t[..]), key, &self.ak, required & 0x30)
            .map_err(Refusal::Decipher)?;
        if general && self.peer_title.is_none() {
            self.apply_known(d.system_title);
        }
        if general {
            match self.peer_title {
                Some(t) if t != d.system_title => {
                    return Err(Refusal::Decipher(sec(
                        "system title",
                        format!("general-ciphering from {}, the peer is {}", hex(&d.system_title), hex(&t)),
                    )))
                }
                _ => {}
            }
        }
        if let Some(last) = self.last_incoming {
            if d.invocation_counter <= last {
                let counter = d.invocation_counter;
                let title = hex(&d.system_title);
                let error = sec(
                    "invocation counter",
                    format!("replayed invocation counter {counter} from {title} (last seen {last})"),
                );
                return Err(Refusal::Replay { last, error });
            }
        }
        self.peer_title = Some(d.system_title);
        if d.security_control & 0x10 != 0 {
            // Only an authenticated counter becomes the high-water mark: an
            // encryption-only APDU proves nothing (it is compared, above).
            self.last_incoming = Some(d.invocation_counter);
        }
        Ok((d.apdu, Form { dedicated, general, security_control: d.security_control }))
    }

    /// Our answer to the peer's challenge: SC 0x10 || IC || GMAC tag.
    pub fn hls_answer(&self, challenge: &[u8], ic: u32) -> Result<Vec<u8>> {
        hls_gmac(0x10, &self.title, ic, &self.ek_raw, &self.ak, challenge)
    }

    /// Check the peer's answer to our challenge (its counter is not checked:
    /// the fresh challenge already makes a replay useless).
    pub fn hls_check(&self, challenge: &[u8], response: &[u8]) -> Result<u32> {
        let peer = self
            .peer_title
            .ok_or_else(|| sec("system title", "the peer's system title is unknown (needed for HLS-GMAC)".into()))?;
        hls_gmac_verify(&peer, &self.ek_raw, &self.ak, challenge, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_granted_extended_replaced_never_reused() {
        let mut c = Counters::default();
        assert_eq!(c.take(), None);
        c.grant(10, 2).unwrap();
        assert_eq!((c.take(), c.take(), c.take()), (Some(10), Some(11), None));
        assert!(c.grant(11, 5).is_err(), "at or below the last used");
        c.grant(12, 2).unwrap();
        c.grant(14, 2).unwrap(); // continues: extends
        assert_eq!(c.available(), 4);
        c.grant(100, 1).unwrap(); // replaces
        assert_eq!((c.take(), c.take()), (Some(100), None));
        c.grant(u32::MAX, 1).unwrap();
        assert_eq!((c.take(), c.take()), (Some(u32::MAX), None));
        assert!(c.grant(0, 0).is_err());
    }

    #[test]
    fn ciphered_len_matches_cipher_apdu() {
        let keys = Keys { system_title: *b"ABCDEFGH", ek: [1; 16], ak: [2; 16] };
        let mut c = Crypto::new(&keys, None, None).unwrap();
        c.set_dedicated(&[3; 16]).unwrap();
        for n in [1usize, 5, 100, 110, 111, 120, 200, 300, 70000] {
            let mut plain = vec![0xC4; n];
            plain[0] = 0xC4;
            for sc in [0x10, 0x20, 0x30] {
                for (dedicated, general) in [(false, false), (true, false), (false, true), (true, true)] {
                    let f = Form { dedicated, general, security_control: sc };
                    assert_eq!(c.protect(&plain, 1, f).unwrap().len(), ciphered_len(n, f), "{n} {f:?}");
                }
            }
        }
    }
}
