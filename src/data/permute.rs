//! A seeded pseudo-random permutation of `0..n` evaluated one index at a time (a balanced
//! Feistel network with cycle walking), so the loader can shuffle every window of any corpus
//! with O(1) memory and no RNG state: position `i` of epoch `e` maps to the same window on
//! every run and after every resume. Hand-written: the crates that shuffle (`rand`'s
//! `SliceRandom`) materialise the whole index vector, which is what this avoids for large
//! corpora (10^9 windows would be 8 GB of indices).
//!
//! Why Feistel and not an affine map `(a*i + b) mod n`: an affine map sends neighbouring
//! positions to windows a fixed stride apart, so a batch would sample the corpus on a regular
//! comb and consecutive batches would be shifted copies of each other. A keyed Feistel network
//! with 8 rounds is a permutation of a power-of-four domain whose neighbouring outputs are
//! unrelated; cycle walking (re-applying it until the value falls below `n`) restricts it to
//! `0..n` while keeping it a bijection, at fewer than 4 applications on average because the
//! domain is less than 4n.

/// Rounds of the Feistel network: well past the 4 that make it pseudo-random in theory, still
/// a few nanoseconds per index.
const ROUNDS: usize = 8;

/// A bijection of `0..n` fixed by (seed, epoch); see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permutation {
    n: u64,
    /// Bits of each half of the Feistel domain (`4^half_bits >= n`).
    half_bits: u32,
    keys: [u64; ROUNDS],
}

impl Permutation {
    /// The permutation of `0..n` for one epoch of a run seeded with `seed`.
    pub fn new(n: u64, seed: u64, epoch: u64) -> Self {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut state = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        let mut keys = [0; ROUNDS];
        for k in &mut keys {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *k = mix64(state);
        }
        Self { n, half_bits, keys }
    }

    /// How many indices it permutes.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether it permutes nothing.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The image of `i` (`i < n`; an index past the end is returned unchanged).
    pub fn at(&self, i: u64) -> u64 {
        if i >= self.n {
            return i;
        }
        // Cycle walking: `i` lies on a finite cycle of the domain permutation, so the walk
        // reaches a value below n (at worst `i` itself) after fewer than 4 steps on average.
        let mut x = self.encrypt(i);
        while x >= self.n {
            x = self.encrypt(x);
        }
        x
    }

    fn encrypt(&self, x: u64) -> u64 {
        let h = self.half_bits;
        let mask = (1u64 << h) - 1;
        let (mut left, mut right) = (x >> h, x & mask);
        for &k in &self.keys {
            let f = mix64(right ^ k) & mask;
            (left, right) = (right, left ^ f);
        }
        (left << h) | right
    }
}

/// SplitMix64's finaliser: a fast 64-bit mixer whose every output bit depends on every input bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_a_bijection_for_every_size() {
        for n in [1u64, 2, 3, 4, 5, 7, 16, 17, 100, 1000, 4097, 65_537] {
            let p = Permutation::new(n, 1337, 3);
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let j = p.at(i);
                assert!(j < n, "n {n}: {i} -> {j}");
                assert!(!seen[j as usize], "n {n}: {j} reached twice");
                seen[j as usize] = true;
            }
        }
        assert_eq!(Permutation::new(10, 0, 0).at(12), 12);
    }

    #[test]
    fn it_is_a_pure_function_of_seed_and_epoch_and_differs_across_them() {
        let n = 10_000;
        let order = |seed, epoch| -> Vec<u64> {
            let p = Permutation::new(n, seed, epoch);
            (0..n).map(|i| p.at(i)).collect()
        };
        assert_eq!(order(7, 2), order(7, 2));
        assert_ne!(order(7, 2), order(7, 3));
        assert_ne!(order(7, 2), order(8, 2));
        // Not the identity, and neighbouring positions land far apart: the mean distance
        // between consecutive images is about n/3 for a random order (1 for the identity,
        // a constant for an affine map).
        let o = order(1, 0);
        let fixed = o
            .iter()
            .enumerate()
            .filter(|(i, &j)| *i as u64 == j)
            .count();
        assert!(fixed < 10, "{fixed} fixed points");
        let mean_gap =
            o.windows(2).map(|w| w[0].abs_diff(w[1])).sum::<u64>() as f64 / (n - 1) as f64;
        assert!(
            (n as f64 / 4.0..n as f64 / 2.5).contains(&mean_gap),
            "{mean_gap}"
        );
        // Distinct strides between neighbours: about n(1 - 1/e) = 6,321 for a random order,
        // 1 for an affine map.
        let gaps: std::collections::HashSet<u64> =
            o.windows(2).map(|w| (w[1] + n - w[0]) % n).collect();
        assert!(gaps.len() > 6_000, "{} distinct strides", gaps.len());
    }

    /// Where the first position lands, over many epochs, is spread over the whole range:
    /// each tenth of it gets a fair share (a skewed mixer would favour some).
    #[test]
    fn first_positions_are_spread_evenly() {
        let n = 1000u64;
        let mut buckets = [0u32; 10];
        for epoch in 0..2000 {
            buckets[(Permutation::new(n, 42, epoch).at(0) / 100) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (140..260).contains(&b)),
            "{buckets:?}"
        );
    }
}
