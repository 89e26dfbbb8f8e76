//! HLS authentication mechanism 5 (HLS-GMAC), Green Book 9.2.7.4: in pass 3/4
//! each side answers the peer's challenge with f(challenge) = SC || IC ||
//! GMAC(SC || AK || challenge), the GMAC keyed with EK and an IV of the
//! responder's system title || IC, the tag 12 bytes. SC is 0x10 (authentication only).

use subtle::ConstantTimeEq;

use super::control::SecurityControl;
use super::gcm::{key16, GcmKey, DLMS_TAG_LEN};
use crate::error::{Error, ErrorKind, Layer, Result};

fn system_title8(st: &[u8]) -> Result<&[u8; 8]> {
    <&[u8; 8]>::try_from(st)
        .map_err(|_| Error::invalid(Layer::Security, "system title", 0, format!("{} bytes", st.len()), "8 bytes"))
}

/// The IV of suite 0: system title || invocation counter (big-endian).
pub fn iv(system_title: &[u8], invocation_counter: u32) -> Result<[u8; 12]> {
    let st = system_title8(system_title)?;
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(st);
    iv[8..].copy_from_slice(&invocation_counter.to_be_bytes());
    Ok(iv)
}

/// The GMAC tag over SC || AK || challenge.
fn tag(sc: u8, system_title: &[u8], ic: u32, ek: &GcmKey, ak: &[u8], challenge: &[u8]) -> Result<Vec<u8>> {
    let ak = key16(ak, "AK")?;
    let iv = iv(system_title, ic)?;
    let mut aad = Vec::with_capacity(17 + challenge.len());
    aad.push(sc);
    aad.extend_from_slice(ak);
    aad.extend_from_slice(challenge);
    ek.gmac(&iv, &aad, DLMS_TAG_LEN)
}

fn check_sc(sc: u8) -> Result<()> {
    let parsed = SecurityControl::parse(sc, 0)?;
    if parsed.encrypted || !parsed.authenticated {
        return Err(Error::invalid(Layer::Security, "security control", 0, format!("0x{sc:02x}"), "0x10 (HLS-GMAC)"));
    }
    Ok(())
}

/// f(challenge) = SC || IC || GMAC tag (17 bytes).
pub fn hls_gmac(sc: u8, system_title: &[u8], ic: u32, ek: &[u8], ak: &[u8], challenge: &[u8]) -> Result<Vec<u8>> {
    check_sc(sc)?;
    let ek = GcmKey::new(ek, "EK")?;
    let t = tag(sc, system_title, ic, &ek, ak, challenge)?;
    let mut out = Vec::with_capacity(5 + t.len());
    out.push(sc);
    out.extend_from_slice(&ic.to_be_bytes());
    out.extend_from_slice(&t);
    Ok(out)
}

/// Check the peer's `response` (SC || IC || tag) to our `challenge`;
/// `system_title` is the peer's. Returns the peer's invocation counter.
pub fn hls_gmac_verify(system_title: &[u8], ek: &[u8], ak: &[u8], challenge: &[u8], response: &[u8]) -> Result<u32> {
    if response.len() != 5 + DLMS_TAG_LEN {
        return Err(Error::invalid(
            Layer::Security,
            "HLS-GMAC response",
            0,
            format!("{} bytes", response.len()),
            "17 bytes: SC, IC, 12-byte tag",
        ));
    }
    let (head, got) = response.split_at(5);
    let (sc, ic) = match head {
        [sc, a, b, c, d] => (*sc, u32::from_be_bytes([*a, *b, *c, *d])),
        _ => return Err(Error::truncated(Layer::Security, "HLS-GMAC response", 0, 5, head.len())),
    };
    check_sc(sc)?;
    let ek = GcmKey::new(ek, "EK")?;
    let want = tag(sc, system_title, ic, &ek, ak, challenge)?;
    if bool::from(want.ct_eq(got)) {
        Ok(ic)
    } else {
        Err(Error::new(Layer::Security, "HLS-GMAC tag", 5, ErrorKind::AuthenticationFailed))
    }
}
