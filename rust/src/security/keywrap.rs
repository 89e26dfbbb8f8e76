//! AES key wrap (RFC 3394) for the Security setup `key_transfer` method: the
//! KEK (master key) is 16, 24 or 32 bytes, the wrapped key a multiple of 8
//! bytes (at least 16). An integrity failure is an authentication error.

use aes::{Aes128, Aes192, Aes256};
use aes_kw::cipher::KeyInit;
use aes_kw::AesKw;

use crate::error::{Error, ErrorKind, Layer, Result};

fn check_kek(kek: &[u8]) -> Result<()> {
    match kek.len() {
        16 | 24 | 32 => Ok(()),
        n => Err(Error::invalid(Layer::Security, "KEK", 0, format!("{n} bytes"), "16, 24 or 32 bytes")),
    }
}

fn check_blocks(data: &[u8], field: &'static str, min: usize) -> Result<()> {
    if data.len() < min || data.len() % 8 != 0 {
        return Err(Error::invalid(
            Layer::Security,
            field,
            0,
            format!("{} bytes", data.len()),
            "a multiple of 8 bytes, at least 16 (key) / 24 (wrapped key)",
        ));
    }
    Ok(())
}

macro_rules! with_kw {
    ($kek:expr, |$kw:ident| $body:expr) => {
        match $kek.len() {
            16 => AesKw::<Aes128>::new_from_slice($kek).map(|$kw| $body),
            24 => AesKw::<Aes192>::new_from_slice($kek).map(|$kw| $body),
            _ => AesKw::<Aes256>::new_from_slice($kek).map(|$kw| $body),
        }
    };
}

fn kek_error() -> Error {
    Error::invalid(Layer::Security, "KEK", 0, "unusable key", "16, 24 or 32 bytes")
}

/// RFC 3394 wrap of `key` under `kek`: 8 bytes longer than `key`.
pub fn aes_key_wrap(kek: &[u8], key: &[u8]) -> Result<Vec<u8>> {
    check_kek(kek)?;
    check_blocks(key, "key", 16)?;
    let mut out = vec![0u8; key.len() + 8];
    let res = with_kw!(kek, |kw| kw.wrap_key(key, &mut out).map(|s| s.len())).map_err(|_| kek_error())?;
    let n = res.map_err(|e| Error::new(Layer::Security, "key", 0, ErrorKind::Other(e.to_string())))?;
    out.truncate(n);
    Ok(out)
}

/// RFC 3394 unwrap; a wrong KEK or tampered data fails the integrity check.
pub fn aes_key_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Vec<u8>> {
    check_kek(kek)?;
    check_blocks(wrapped, "wrapped key", 24)?;
    let mut out = vec![0u8; wrapped.len() - 8];
    let res = with_kw!(kek, |kw| kw.unwrap_key(wrapped, &mut out).map(|s| s.len())).map_err(|_| kek_error())?;
    let n = res.map_err(|_| Error::new(Layer::Security, "wrapped key", 0, ErrorKind::AuthenticationFailed))?;
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 3394 section 4.1 - 4.6.
    #[test]
    fn rfc3394_section4() {
        let kek32 = h("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let key32 = h("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        let cases: [(usize, usize, &str); 6] = [
            (16, 16, "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"),
            (24, 16, "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"),
            (32, 16, "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"),
            (24, 24, "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"),
            (32, 24, "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"),
            (32, 32, "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"),
        ];
        for (kl, dl, want) in cases {
            let wrapped = aes_key_wrap(&kek32[..kl], &key32[..dl]).unwrap();
            assert_eq!(wrapped, h(want), "KEK {kl} key {dl}");
            assert_eq!(aes_key_unwrap(&kek32[..kl], &wrapped).unwrap(), key32[..dl].to_vec());
            for bit in 0..wrapped.len() * 8 {
                let mut bad = wrapped.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let e = aes_key_unwrap(&kek32[..kl], &bad).unwrap_err();
                assert_eq!(e.kind, ErrorKind::AuthenticationFailed);
            }
        }
    }

    #[test]
    fn bad_sizes() {
        assert_eq!(aes_key_wrap(&[0; 15], &[0; 16]).unwrap_err().field, "KEK");
        assert_eq!(aes_key_wrap(&[0; 16], &[0; 12]).unwrap_err().field, "key");
        assert_eq!(aes_key_wrap(&[0; 16], &[0; 8]).unwrap_err().field, "key");
        assert_eq!(aes_key_unwrap(&[0; 16], &[0; 23]).unwrap_err().field, "wrapped key");
        assert_eq!(aes_key_unwrap(&[0; 16], &[0; 16]).unwrap_err().field, "wrapped key");
    }
}
