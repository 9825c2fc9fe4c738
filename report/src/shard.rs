//! `--shard K/N`: a deterministic slice of the inventory, so a CI matrix of N runners
//! sweeps disjoint parts of one fleet and `trustsweep merge` puts the reports together.
//! A host's shard depends only on its name (ASCII case ignored, like DNS): FNV-1a 64
//! with a fixed finaliser, the same on every run, machine and Rust version (never
//! `DefaultHasher`, whose output may change between releases). Adding or removing other
//! hosts never moves a host to another shard.

use std::fmt;
use std::str::FromStr;

/// Shard `k` of `n` (1-based), validated: `1 <= k <= n` (also when read from a report,
/// where it is `{"k": K, "n": N}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawShard")]
pub struct Shard {
    k: usize,
    n: usize,
}

/// A shard as a report holds it, before validation.
#[derive(serde::Deserialize)]
struct RawShard {
    k: usize,
    n: usize,
}

impl TryFrom<RawShard> for Shard {
    type Error = String;

    fn try_from(raw: RawShard) -> Result<Self, Self::Error> {
        Shard::new(raw.k, raw.n)
            .ok_or_else(|| format!("shard {}/{}: K must be between 1 and N", raw.k, raw.n))
    }
}

impl Shard {
    /// `Some` when `1 <= k <= n`.
    pub fn new(k: usize, n: usize) -> Option<Shard> {
        (k >= 1 && k <= n).then_some(Shard { k, n })
    }

    /// This shard's number, from 1.
    pub fn k(self) -> usize {
        self.k
    }

    /// How many shards.
    pub fn n(self) -> usize {
        self.n
    }

    /// Does `host` belong to this shard?
    pub fn contains(self, host: &str) -> bool {
        shard_of(host, self.n) == self.k
    }

    /// The indices of `hosts` in this shard, in order.
    pub fn select(self, hosts: &[String]) -> Vec<usize> {
        hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| self.contains(h))
            .map(|(i, _)| i)
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// A `--shard` value that is not `K/N` with `1 <= K <= N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardError(String);

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShardError {}

/// Parses `K/N` (e.g. `2/8`): whole numbers, `1 <= K <= N`.
pub fn parse_shard(s: &str) -> Result<Shard, ShardError> {
    let bad = |why: &str| ShardError(format!("--shard '{s}': {why}"));
    let (k, n) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| bad("expected K/N, e.g. 1/4"))?;
    let k: usize = k
        .trim()
        .parse()
        .map_err(|_| bad("K is not a whole number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| bad("N is not a whole number"))?;
    if n == 0 {
        return Err(bad("N must be at least 1"));
    }
    Shard::new(k, n).ok_or_else(|| bad("K must be between 1 and N"))
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_shard(s)
    }
}

/// The indices of the `hosts` in shard `k` of `n` (1-based), in order; empty when `k`/`n`
/// is not a valid shard ([`parse_shard`] validates user input).
pub fn shard(hosts: &[String], k: usize, n: usize) -> Vec<usize> {
    match Shard::new(k, n) {
        Some(s) => s.select(hosts),
        None => Vec::new(),
    }
}

/// The shard (1-based) `host` falls in among `n` (`n >= 1`; 0 is treated as 1).
pub fn shard_of(host: &str, n: usize) -> usize {
    let n = n.max(1) as u64;
    // Both are below n <= usize::MAX, so the conversions cannot fail.
    usize::try_from(stable_hash(host) % n).unwrap_or(0) + 1
}

/// FNV-1a 64 over the ASCII-lowercased name, then MurmurHash3's 64-bit finaliser
/// (FNV's low bits are weakly mixed, and `% n` reads the low bits).
pub fn stable_hash(host: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for b in host.bytes() {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(PRIME);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}
