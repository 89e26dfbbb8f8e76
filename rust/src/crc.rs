//! CRC-16/X.25, the HDLC frame check sequence (HCS and FCS) of IEC 62056-46:
//! polynomial 0x1021 reflected (0x8408), init 0xFFFF, xorout 0xFFFF; the check
//! value of `"123456789"` is 0x906E. On the wire it is sent least significant
//! byte first.
//!
//! Slicing-by-16 over tables built at compile time: sixteen bytes per step.

const POLY_REFLECTED: u16 = 0x8408;

const fn build_tables() -> [[u16; 256]; 16] {
    let mut t = [[0u16; 256]; 16];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ POLY_REFLECTED } else { crc >> 1 };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 16 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static TABLES: [[u16; 256]; 16] = build_tables();

/// Feed `data` into a running (non-finalised) CRC register.
pub fn update(mut crc: u16, data: &[u8]) -> u16 {
    let t = &TABLES;
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        let c: [u8; 16] = c.try_into().unwrap_or([0; 16]);
        let lo = u16::from_le_bytes([c[0], c[1]]) ^ crc;
        crc = t[15][(lo & 0xFF) as usize]
            ^ t[14][(lo >> 8) as usize]
            ^ t[13][c[2] as usize]
            ^ t[12][c[3] as usize]
            ^ t[11][c[4] as usize]
            ^ t[10][c[5] as usize]
            ^ t[9][c[6] as usize]
            ^ t[8][c[7] as usize]
            ^ t[7][c[8] as usize]
            ^ t[6][c[9] as usize]
            ^ t[5][c[10] as usize]
            ^ t[4][c[11] as usize]
            ^ t[3][c[12] as usize]
            ^ t[2][c[13] as usize]
            ^ t[1][c[14] as usize]
            ^ t[0][c[15] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][((crc ^ b as u16) & 0xFF) as usize];
    }
    crc
}

/// CRC-16/X.25 of `data`.
pub fn crc16_x25(data: &[u8]) -> u16 {
    update(0xFFFF, data) ^ 0xFFFF
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bitwise(data: &[u8]) -> u16 {
        bitwise_from(0xFFFF, data)
    }

    fn bitwise_from(mut crc: u16, data: &[u8]) -> u16 {
        for &b in data {
            crc ^= b as u16;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ POLY_REFLECTED } else { crc >> 1 };
            }
        }
        crc ^ 0xFFFF
    }

    #[test]
    fn check_value() {
        assert_eq!(crc16_x25(b"123456789"), 0x906E);
        assert_eq!(crc16_x25(b""), 0x0000);
    }

    #[test]
    fn residue_of_message_with_crc_appended() {
        // Appending the CRC (LSB first) gives the X.25 good-frame residue 0xF0B8 before xorout.
        let mut m = b"123456789".to_vec();
        m.extend_from_slice(&crc16_x25(b"123456789").to_le_bytes());
        assert_eq!(update(0xFFFF, &m), 0xF0B8);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn sliced_equals_bitwise(data in proptest::collection::vec(any::<u8>(), 0..100), init in any::<u16>()) {
            prop_assert_eq!(update(init, &data) ^ 0xFFFF, bitwise_from(init, &data));
            prop_assert_eq!(crc16_x25(&data), bitwise(&data));
        }
    }
}
