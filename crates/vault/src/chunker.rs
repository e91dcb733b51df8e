//! Content-defined chunking: FastCDC (2020) with a gear table seeded from
//! the vault key, so cut points (and thus chunk sizes) do not reveal content
//! across vaults.
//!
//! File data: min 256 KiB, average 1 MiB, max 4 MiB. Most files of a Python
//! environment are smaller than the minimum and become one chunk each;
//! larger files (shared libraries, data) split into ~1 MiB pieces, which
//! compress as well as whole files and keep the index small (about one
//! entry per file). Manifests use smaller chunks (16/64/256 KiB) so an
//! incremental snapshot stores only the few changed pieces of the previous
//! manifest.
//!
//! The chunker decides only where to cut; a reader never needs it (chunk
//! lengths are recorded), so changing parameters never breaks old vaults —
//! it only lowers deduplication against them.

use fastcdc::v2020::{cut_gear, get_gear_with_seed, logarithm2, Normalization, MASKS};
use serde::{Deserialize, Serialize};

/// Chunk size bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl ChunkerParams {
    /// For file content.
    pub const DATA: ChunkerParams = ChunkerParams {
        min: 256 * 1024,
        avg: 1024 * 1024,
        max: 4 * 1024 * 1024,
    };
    /// For manifests.
    pub const TREE: ChunkerParams = ChunkerParams {
        min: 16 * 1024,
        avg: 64 * 1024,
        max: 256 * 1024,
    };

    /// Whether FastCDC accepts these bounds.
    pub fn is_valid(&self) -> bool {
        use fastcdc::v2020::*;
        (MINIMUM_MIN..=MINIMUM_MAX).contains(&self.min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&self.avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&self.max)
            && self.min <= self.avg
            && self.avg <= self.max
    }
}

/// A seeded FastCDC cutter.
pub(crate) struct Chunker {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
}

impl Chunker {
    /// `params` must satisfy [`ChunkerParams::is_valid`] (checked when the
    /// vault config is read).
    pub(crate) fn new(params: ChunkerParams, seed: u64) -> Self {
        let bits = logarithm2(params.avg);
        let norm = Normalization::Level1.bits();
        let (gear, gear_ls) = get_gear_with_seed(seed);
        Chunker {
            params,
            mask_s: MASKS[(bits + norm) as usize],
            mask_l: MASKS[(bits - norm) as usize],
            gear,
            gear_ls,
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.params.max as usize
    }

    /// Length of the next chunk at the start of `data`. When `data` is
    /// shorter than `max` and more data follows, the result is only final if
    /// it is less than `data.len()`; callers feed at least `max` bytes unless
    /// at end of input.
    pub(crate) fn next_len(&self, data: &[u8]) -> usize {
        let (_, n) = cut_gear(
            data,
            self.params.min as usize,
            self.params.avg as usize,
            self.params.max as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        n.max(1).min(data.len())
    }

    /// Cut points of a complete buffer, as `(offset, len)`.
    pub(crate) fn cuts(&self, data: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(data.len() / self.params.avg as usize + 1);
        let mut off = 0;
        while off < data.len() {
            let n = self.next_len(&data[off..]);
            out.push((off, n));
            off += n;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn chunks_cover_the_input_within_bounds() {
        let c = Chunker::new(ChunkerParams::TREE, 42);
        let data = pseudo_random(3 * 1024 * 1024, 7);
        let cuts = c.cuts(&data);
        assert_eq!(cuts.iter().map(|c| c.1).sum::<usize>(), data.len());
        for (i, (_, n)) in cuts.iter().enumerate() {
            assert!(*n <= 256 * 1024);
            if i + 1 < cuts.len() {
                assert!(*n >= 16 * 1024);
            }
        }
    }

    #[test]
    fn an_insertion_only_changes_nearby_chunks() {
        let c = Chunker::new(ChunkerParams::TREE, 1);
        let a = pseudo_random(2 * 1024 * 1024, 9);
        let mut b = a[..1000].to_vec();
        b.extend_from_slice(b"inserted");
        b.extend_from_slice(&a[1000..]);
        let set = |d: &[u8]| {
            c.cuts(d)
                .into_iter()
                .map(|(o, n)| d[o..o + n].to_vec())
                .collect::<std::collections::HashSet<_>>()
        };
        let (sa, sb) = (set(&a), set(&b));
        assert!(sa.intersection(&sb).count() + 2 >= sa.len());
    }

    #[test]
    fn the_data_and_tree_parameters_are_valid() {
        assert!(ChunkerParams::DATA.is_valid());
        assert!(ChunkerParams::TREE.is_valid());
        assert!(!ChunkerParams {
            min: 1,
            avg: 2,
            max: 3
        }
        .is_valid());
    }
}
