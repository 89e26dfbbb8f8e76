//! AES-GCM-128 (NIST SP 800-38D) with a 96-bit IV and a tag of 12..=16 bytes
//! (the short 4/8-byte tags of SP 800-38D appendix C are not offered), plus
//! the bare CTR keystream that DLMS "encryption only" uses.
//!
//! The engine is `ring` (BoringSSL's assembly: AES-NI/PCLMULQDQ, and
//! VAES/VPCLMULQDQ-AVX2 when the CPU has them, chosen at run time). ring only
//! verifies full 16-byte tags, so decryption uses GCM's symmetry: sealing the
//! ciphertext yields the plaintext (CTR is its own inverse), and sealing that
//! plaintext yields the ciphertext again together with the full tag over it,
//! whose leading `tag_len` bytes are compared in constant time with the
//! received tag. Nothing is returned unless they match. RustCrypto `aes-gcm`
//! serves as an independent reference in the tests.
//!
//! [`GcmKey`] holds the expanded key so a session's EK is set up once.

use aes::cipher::KeyInit;
use aes::Aes128;
use ctr::cipher::{InnerIvInit, StreamCipher};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use subtle::ConstantTimeEq;

use crate::error::{Error, ErrorKind, Layer, Result};

/// Length of the GCM initialisation vector: system title (8) || invocation counter (4).
pub const IV_LEN: usize = 12;
/// The tag length DLMS suite 0 uses.
pub const DLMS_TAG_LEN: usize = 12;
/// GCM's largest plaintext: 2^32 - 2 blocks (SP 800-38D 5.2.1.1).
const MAX_PLAINTEXT: usize = ((1u64 << 36) - 32) as usize;

/// An AES-128 key ready for GCM: key schedules computed once.
pub struct GcmKey {
    gcm: LessSafeKey,
    aes: Aes128,
}

impl std::fmt::Debug for GcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcmKey(..)")
    }
}

/// Check that `key` is an AES-128 key; `field` names it in the error.
pub(crate) fn key16<'a>(key: &'a [u8], field: &'static str) -> Result<&'a [u8; 16]> {
    <&[u8; 16]>::try_from(key)
        .map_err(|_| Error::invalid(Layer::Security, field, 0, format!("{} bytes", key.len()), "16 bytes (AES-128)"))
}

fn iv12(iv: &[u8]) -> Result<[u8; IV_LEN]> {
    <[u8; IV_LEN]>::try_from(iv)
        .map_err(|_| Error::invalid(Layer::Security, "IV", 0, format!("{} bytes", iv.len()), "12 bytes"))
}

fn check_tag_len(tag_len: usize) -> Result<()> {
    match tag_len {
        12..=16 => Ok(()),
        _ => Err(Error::invalid(Layer::Security, "tag length", 0, tag_len, "12..=16 bytes")),
    }
}

fn too_long(len: usize) -> Error {
    Error::new(Layer::Security, "plaintext", 0, ErrorKind::TooLong { length: len, limit: MAX_PLAINTEXT })
}

impl GcmKey {
    /// Expand a 16-byte AES key. `field` names the key in errors ("EK", "key", …).
    pub fn new(key: &[u8], field: &'static str) -> Result<Self> {
        let key = key16(key, field)?;
        let unbound = UnboundKey::new(&AES_128_GCM, key)
            .map_err(|_| Error::invalid(Layer::Security, field, 0, "a key ring rejects", "16 bytes (AES-128)"))?;
        Ok(GcmKey { gcm: LessSafeKey::new(unbound), aes: Aes128::new(key.into()) })
    }

    /// Seal `buf` in place; returns the full 16-byte tag.
    fn seal(&self, iv: [u8; IV_LEN], aad: &[u8], buf: &mut [u8]) -> Result<[u8; 16]> {
        let tag = self
            .gcm
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), buf)
            .map_err(|_| too_long(buf.len()))?;
        let mut full = [0u8; 16];
        full.copy_from_slice(tag.as_ref().get(..16).unwrap_or(&[0u8; 16]));
        Ok(full)
    }

    /// Encrypt `plaintext`, authenticating `aad` too; appends ciphertext || tag to `out`.
    pub fn encrypt_into(
        &self,
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        tag_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let start = out.len();
        out.resize(start + plaintext.len() + tag_len, 0);
        let res = self.encrypt_to(iv, aad, plaintext, tag_len, out.get_mut(start..).unwrap_or_default());
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    /// AES-GCM encryption: ciphertext || tag.
    pub fn encrypt(&self, iv: &[u8], aad: &[u8], plaintext: &[u8], tag_len: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(plaintext.len() + tag_len);
        self.encrypt_into(iv, aad, plaintext, tag_len, &mut out)?;
        Ok(out)
    }

    /// Encrypt into `out`, which must be `plaintext.len() + tag_len` bytes long.
    pub fn encrypt_to(&self, iv: &[u8], aad: &[u8], plaintext: &[u8], tag_len: usize, out: &mut [u8]) -> Result<()> {
        let iv = iv12(iv)?;
        check_tag_len(tag_len)?;
        if out.len() != plaintext.len().saturating_add(tag_len) {
            return Err(Error::invalid(
                Layer::Security,
                "output buffer",
                0,
                out.len(),
                "plaintext length + tag length",
            ));
        }
        let (ct, tag_out) = out.split_at_mut(plaintext.len());
        ct.copy_from_slice(plaintext);
        let tag = self.seal(iv, aad, ct)?;
        tag_out.copy_from_slice(tag.get(..tag_len).unwrap_or_default());
        Ok(())
    }

    /// Verify and decrypt `data` = ciphertext || tag. The tag is checked (in
    /// constant time) before any plaintext is released.
    pub fn decrypt(&self, iv: &[u8], aad: &[u8], data: &[u8], tag_len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; data.len().saturating_sub(tag_len)];
        self.decrypt_to(iv, aad, data, tag_len, &mut buf)?;
        Ok(buf)
    }

    /// [`GcmKey::decrypt`] into `out`, which must be `data.len() - tag_len`
    /// bytes long (e.g. a Python bytes object being built). On an error `out`
    /// is zeroed: no unauthenticated plaintext escapes.
    pub fn decrypt_to(&self, iv: &[u8], aad: &[u8], data: &[u8], tag_len: usize, out: &mut [u8]) -> Result<()> {
        let iv = iv12(iv)?;
        check_tag_len(tag_len)?;
        let ct_len = data
            .len()
            .checked_sub(tag_len)
            .ok_or_else(|| Error::truncated(Layer::Security, "authentication tag", 0, tag_len, data.len()))?;
        let (ct, tag) = data.split_at(ct_len);
        if out.len() != ct_len {
            return Err(Error::invalid(Layer::Security, "output buffer", 0, out.len(), "the ciphertext length"));
        }
        // Pass 1: CTR over the ciphertext gives the plaintext (its tag is meaningless).
        out.copy_from_slice(ct);
        self.seal(iv, &[], out)?;
        // Pass 2: re-encrypting a copy of the plaintext gives the tag over the ciphertext.
        let mut again = out.to_vec();
        let full = self.seal(iv, aad, &mut again)?;
        let ok = bool::from(full.get(..tag_len).unwrap_or_default().ct_eq(tag));
        if ok {
            Ok(())
        } else {
            out.fill(0);
            Err(Error::new(Layer::Security, "authentication tag", ct_len, ErrorKind::AuthenticationFailed))
        }
    }

    /// The GCM tag over `aad` with nothing encrypted (GMAC).
    pub fn gmac(&self, iv: &[u8], aad: &[u8], tag_len: usize) -> Result<Vec<u8>> {
        self.encrypt(iv, aad, &[], tag_len)
    }

    /// Apply the GCM keystream (CTR starting at counter 2, as GCM does) in
    /// place: DLMS "encryption only", which carries no tag. Its own inverse.
    pub fn ctr_apply(&self, iv: &[u8], buf: &mut [u8]) -> Result<()> {
        let iv = iv12(iv)?;
        let mut block = [0u8; 16];
        block[..IV_LEN].copy_from_slice(&iv);
        block[15] = 2;
        let core = ctr::CtrCore::<&Aes128, ctr::flavors::Ctr32BE>::inner_iv_init(&self.aes, (&block).into());
        let mut ctr = ctr::Ctr32BE::<&Aes128>::from_core(core);
        ctr.try_apply_keystream(buf).map_err(|_| too_long(buf.len()))
    }

    /// The raw AES-128 block cipher (for key wrap and tests).
    pub fn aes(&self) -> &Aes128 {
        &self.aes
    }
}

/// One-shot AES-GCM-128 encryption: ciphertext || tag.
pub fn gcm_encrypt(key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8], tag_len: usize) -> Result<Vec<u8>> {
    GcmKey::new(key, "key")?.encrypt(iv, aad, plaintext, tag_len)
}

/// One-shot AES-GCM-128 decryption of ciphertext || tag.
pub fn gcm_decrypt(key: &[u8], iv: &[u8], aad: &[u8], data: &[u8], tag_len: usize) -> Result<Vec<u8>> {
    GcmKey::new(key, "key")?.decrypt(iv, aad, data, tag_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // NIST GCM spec (McGrew & Viega, "The Galois/Counter Mode of Operation",
    // Appendix B), test cases 1-4: the same vectors as NIST CAVP gcmEncryptExtIV128.
    #[test]
    fn nist_test_cases() {
        let zero = [0u8; 16];
        let iv0 = [0u8; 12];
        assert_eq!(gcm_encrypt(&zero, &iv0, &[], &[], 16).unwrap(), h("58e2fccefa7e3061367f1d57a4e7455a"));
        assert_eq!(
            gcm_encrypt(&zero, &iv0, &[], &zero, 16).unwrap(),
            h("0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf")
        );
        let key = h("feffe9928665731c6d6a8f9467308308");
        let iv = h("cafebabefacedbaddecaf888");
        let pt3 = h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255");
        let ct3 = h("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985");
        let mut want = ct3.clone();
        want.extend(h("4d5c2af327cd64a62cf35abd2ba6fab4"));
        assert_eq!(gcm_encrypt(&key, &iv, &[], &pt3, 16).unwrap(), want);
        // Test case 4: with AAD, 60-byte plaintext.
        let aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let mut want4 = ct3[..60].to_vec();
        want4.extend(h("5bc94fbc3221a5db94fae95ae7121a47"));
        assert_eq!(gcm_encrypt(&key, &iv, &aad, &pt3[..60], 16).unwrap(), want4);
        assert_eq!(gcm_decrypt(&key, &iv, &aad, &want4, 16).unwrap(), pt3[..60].to_vec());
        // A truncated tag is the leading bytes of the full tag (SP 800-38D 7.1).
        let mut want12 = ct3[..60].to_vec();
        want12.extend(h("5bc94fbc3221a5db94fae95a"));
        assert_eq!(gcm_encrypt(&key, &iv, &aad, &pt3[..60], 12).unwrap(), want12);
        assert_eq!(gcm_decrypt(&key, &iv, &aad, &want12, 12).unwrap(), pt3[..60].to_vec());
        for len in [13usize, 14, 15] {
            let got = gcm_encrypt(&key, &iv, &aad, &pt3[..60], len).unwrap();
            assert_eq!(got[60..], h("5bc94fbc3221a5db94fae95ae7121a47")[..len]);
            assert_eq!(gcm_decrypt(&key, &iv, &aad, &got, len).unwrap(), pt3[..60].to_vec());
        }
    }

    #[test]
    fn bad_lengths_are_typed_errors() {
        let e = gcm_encrypt(&[0; 15], &[0; 12], &[], &[], 12).unwrap_err();
        assert_eq!((e.layer, e.field), (Layer::Security, "key"));
        assert_eq!(gcm_encrypt(&[0; 16], &[0; 11], &[], &[], 12).unwrap_err().field, "IV");
        assert_eq!(gcm_encrypt(&[0; 16], &[0; 12], &[], &[], 8).unwrap_err().field, "tag length");
        let e = gcm_decrypt(&[0; 16], &[0; 12], &[], &[0; 5], 12).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated { needed: 12, available: 5 }));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// ring (with the two-pass decryption) agrees with RustCrypto aes-gcm.
        #[test]
        fn agrees_with_rustcrypto(key in proptest::array::uniform16(0u8..), iv in proptest::array::uniform12(0u8..),
                                  aad in proptest::collection::vec(0u8.., 0..40),
                                  pt in proptest::collection::vec(0u8.., 0..600), tag_len in 12usize..=16) {
            use aes_gcm::aead::consts::U12;
            use aes_gcm::{AeadInOut, AesGcm, Nonce};
            let ours = gcm_encrypt(&key, &iv, &aad, &pt, tag_len).unwrap();
            let reference = AesGcm::<Aes128, U12>::new(&key.into());
            let mut buf = pt.clone();
            let tag = reference.encrypt_inout_detached(&Nonce::<U12>::from(iv), &aad, buf.as_mut_slice().into()).unwrap();
            buf.extend_from_slice(&tag[..tag_len]);
            proptest::prop_assert_eq!(&ours, &buf);
            proptest::prop_assert_eq!(gcm_decrypt(&key, &iv, &aad, &ours, tag_len).unwrap(), pt);
            let mut bad = ours.clone();
            let i = (aad.len() * 7 + 3) % bad.len();
            bad[i] ^= 0x01;
            proptest::prop_assert_eq!(gcm_decrypt(&key, &iv, &aad, &bad, tag_len).unwrap_err().kind, ErrorKind::AuthenticationFailed);
        }
    }

    #[test]
    fn ctr_matches_gcm_ciphertext() {
        let k = GcmKey::new(&[7; 16], "EK").unwrap();
        let pt: Vec<u8> = (0..100u8).collect();
        let full = k.encrypt(&[1; 12], b"x", &pt, 12).unwrap();
        let mut buf = pt.clone();
        k.ctr_apply(&[1; 12], &mut buf).unwrap();
        assert_eq!(buf, full[..100]);
        k.ctr_apply(&[1; 12], &mut buf).unwrap();
        assert_eq!(buf, pt);
    }
}
