//! The X.224 / ISO 8073 TPDU checksum (parameter C3): a Fletcher-style sum modulo 255
//! over the whole TPDU, header and data.

/// Computes the two checksum octets for `tpdu`, whose checksum field starts at
/// `position` (0-based) and currently holds zeros.
///
/// Follows the generation algorithm of X.224 §6.17 / ISO 8073 annex: with running
/// sums C0 and C1 over all octets, `X = -C1 + (L - n)·C0` and `Y = C1 - (L - n + 1)·C0`
/// (mod 255, n the 1-based position of X). A zero result is sent as 255, which is the
/// same value modulo 255.
pub fn generate(tpdu: &[u8], position: usize) -> [u8; 2] {
    let (c0, c1) = sums(tpdu);
    let len = tpdu.len() as i64;
    let n = position as i64 + 1;
    let x = (-c1 + (len - n) * c0).rem_euclid(255);
    let y = (c1 - (len - n + 1) * c0).rem_euclid(255);
    [nonzero(x), nonzero(y)]
}

/// Whether `tpdu` (with its checksum field filled in) passes verification: both
/// running sums are zero modulo 255.
pub fn verify(tpdu: &[u8]) -> bool {
    let (c0, c1) = sums(tpdu);
    c0 == 0 && c1 == 0
}

fn sums(data: &[u8]) -> (i64, i64) {
    let (mut c0, mut c1) = (0i64, 0i64);
    for &b in data {
        c0 = (c0 + i64::from(b)) % 255;
        c1 = (c1 + c0) % 255;
    }
    (c0, c1)
}

fn nonzero(v: i64) -> u8 {
    // rem_euclid(255) is in 0..255, so the conversion cannot fail.
    if v == 0 {
        255
    } else {
        u8::try_from(v).unwrap_or(255)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_checksum_verifies_and_detects_corruption() {
        // A DT with a checksum parameter: LI, code, dst-ref, nr, C3 02 XX YY, data.
        let mut tpdu = vec![
            8, 0xf0, 0x00, 0x01, 0x80, 0xc3, 0x02, 0, 0, b'a', b'b', b'c',
        ];
        let ck = generate(&tpdu, 7);
        tpdu[7..9].copy_from_slice(&ck);
        assert!(verify(&tpdu));
        for i in 0..tpdu.len() {
            let mut bad = tpdu.clone();
            bad[i] = bad[i].wrapping_add(1);
            assert!(!verify(&bad), "corruption at {i} not detected");
        }
    }

    #[test]
    fn checksum_works_at_any_position_and_length() {
        for len in 3..64usize {
            for pos in 0..len - 1 {
                let mut data: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
                data[pos] = 0;
                data[pos + 1] = 0;
                let ck = generate(&data, pos);
                data[pos..pos + 2].copy_from_slice(&ck);
                assert!(verify(&data), "len {len} pos {pos}");
            }
        }
    }
}
