//! RC4 for NTLM sealing (MS-NLMP 3.4.3; RC4K and RC4 in MS-NLMP 6), written here rather
//! than taken from the `rc4` crate, which stays the reference in this module's tests.
//!
//! Why: the crate drives RC4 through the generic one-byte-block cipher machinery and costs
//! about 25 instructions per byte in the client (issue 15's profile; 0.2 is no faster and
//! would bring a second `cipher` line); every sealed byte of every message pays it twice
//! (sender and receiver). This loop is the textbook algorithm (key scheduling, then the
//! PRGA) at about 11 instructions per byte: it walks the state table in runs where the
//! index `i` does not wrap, eight bytes at a time, so `i` costs nothing per byte and the
//! data is XORed eight bytes at once. The state is zeroized on drop, as the crate's is
//! with its `zeroize` feature. No `unsafe`: the table is a slice of `Cell`s so the `i` run
//! and the `j` entry can alias.

use std::cell::Cell;
use std::fmt;

use zeroize::Zeroize;

/// An RC4 keystream: the 256-byte permutation and the two indices.
pub(crate) struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl fmt::Debug for Rc4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rc4 { .. }")
    }
}

impl Drop for Rc4 {
    fn drop(&mut self) {
        self.s.zeroize();
        self.i.zeroize();
        self.j.zeroize();
    }
}

/// One PRGA step for the table entry `ci` (= S[i]): swaps S[i] and S[j] and returns the
/// keystream byte S[S[i] + S[j]].
#[inline(always)]
fn step(s: &[Cell<u8>; 256], ci: &Cell<u8>, j: &mut u8) -> u8 {
    let si = ci.get();
    *j = j.wrapping_add(si);
    // A u8 always indexes a 256-entry table: the `None` arms are never taken and the
    // compiler drops them.
    let Some(cj) = s.get(usize::from(*j)) else {
        return 0;
    };
    let sj = cj.get();
    ci.set(sj);
    cj.set(si);
    s.get(usize::from(si.wrapping_add(sj))).map_or(0, Cell::get)
}

impl Rc4 {
    /// The key-scheduling algorithm for a 16-byte key (all NTLM keys are 16 bytes).
    pub(crate) fn new(key: &[u8; 16]) -> Self {
        // The identity permutation; `i` < 256, so the cast is exact.
        let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
        let mut j = 0u8;
        if let Ok(cells) =
            <&[Cell<u8>; 256]>::try_from(Cell::from_mut(&mut s[..]).as_slice_of_cells())
        {
            // The key repeats every 16 entries: walk the table in blocks of 16.
            for block in cells.chunks_exact(16) {
                for (ci, k) in block.iter().zip(key) {
                    let si = ci.get();
                    j = j.wrapping_add(si).wrapping_add(*k);
                    if let Some(cj) = cells.get(usize::from(j)) {
                        ci.set(cj.get());
                        cj.set(si);
                    }
                }
            }
        }
        Self { s, i: 0, j: 0 }
    }

    /// XORs the next `buf.len()` keystream bytes into `buf` (encryption and decryption
    /// are the same operation).
    pub(crate) fn apply_keystream(&mut self, mut buf: &mut [u8]) {
        let Ok(s) =
            <&[Cell<u8>; 256]>::try_from(Cell::from_mut(&mut self.s[..]).as_slice_of_cells())
        else {
            return;
        };
        let mut j = self.j;
        // The table index of the next byte's `i`, 1..=256 (256 wraps to 0 below).
        let mut next = usize::from(self.i) + 1;
        while !buf.is_empty() {
            if next >= 256 {
                next = 0;
            }
            // A run of entries i = next, next + 1, ... that does not wrap.
            let n = buf.len().min(256 - next);
            let (now, rest) = std::mem::take(&mut buf).split_at_mut(n);
            buf = rest;
            let Some(run) = s.get(next..next + n) else {
                return;
            };
            next += n;
            let mut data = now.chunks_exact_mut(8);
            let mut cells = run.chunks_exact(8);
            for (d8, c8) in (&mut data).zip(&mut cells) {
                let mut ks = [0u8; 8];
                for (k, c) in ks.iter_mut().zip(c8) {
                    *k = step(s, c, &mut j);
                }
                if let Ok(d8) = <&mut [u8; 8]>::try_from(d8) {
                    *d8 = (u64::from_ne_bytes(*d8) ^ u64::from_ne_bytes(ks)).to_ne_bytes();
                }
            }
            for (d, c) in data.into_remainder().iter_mut().zip(cells.remainder()) {
                *d ^= step(s, c, &mut j);
            }
        }
        // The last entry used is the new `i` (`next` is at least 1 here).
        self.i = u8::try_from(next.wrapping_sub(1) & 0xFF).unwrap_or(0);
        self.j = j;
    }
}

#[cfg(test)]
mod tests {
    use super::Rc4;
    use ::rc4::{consts::U16, KeyInit, StreamCipher};
    use proptest::prelude::*;

    fn reference(key: &[u8; 16], data: &mut [u8]) {
        <::rc4::Rc4<U16> as KeyInit>::new(key.into()).apply_keystream(data);
    }

    /// RFC 6229's first test vector for a 128-bit key (offset 0).
    #[test]
    fn rfc6229_key_0102_to_10() {
        let key: [u8; 16] = std::array::from_fn(|i| u8::try_from(i + 1).unwrap_or(0));
        let mut ks = [0u8; 16];
        Rc4::new(&key).apply_keystream(&mut ks);
        assert_eq!(
            ks,
            [
                0x9a, 0xc7, 0xcc, 0x9a, 0x60, 0x9d, 0x1e, 0xf7, 0xb2, 0x93, 0x28, 0x99, 0xcd, 0xe4,
                0x1b, 0x97
            ]
        );
    }

    proptest! {
        /// Same keystream as the `rc4` crate for any key, any data, and any way of
        /// splitting the data over calls (the state carries across calls).
        #[test]
        fn equals_the_rc4_crate(
            key in any::<[u8; 16]>(),
            data in proptest::collection::vec(any::<u8>(), 0..2100),
            cuts in proptest::collection::vec(0usize..2100, 0..6),
        ) {
            let mut expected = data.clone();
            reference(&key, &mut expected);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut ours = data.clone();
            let mut rc4 = Rc4::new(&key);
            let mut from = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                rc4.apply_keystream(ours.get_mut(from..cut).unwrap_or_default());
                from = cut;
            }
            prop_assert_eq!(ours, expected);
        }
    }
}
