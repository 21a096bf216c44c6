//! The one random generator of the tests and benches: small, seeded, and
//! replayable. A random test prints its seed, and `NETDB_TEST_SEED=<seed>`
//! runs it again with the same choices.

/// The variable that replays a seed.
pub const SEED_VAR: &str = "NETDB_TEST_SEED";

/// A seeded pseudo-random generator (splitmix64).
pub struct Rng(u64);

/// The seed `NETDB_TEST_SEED` names, or one from the clock.
pub fn seed_from_env() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={s:?} is not a u64")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

impl Rng {
    /// A generator seeded from `NETDB_TEST_SEED`, or from the clock; prints
    /// the seed, naming `test`, so a failure can be replayed.
    pub fn seeded(test: &str) -> Rng {
        let seed = seed_from_env();
        eprintln!("{test}: seed {seed} (replay with {SEED_VAR}={seed})");
        Rng::from_seed(seed)
    }

    /// A generator with a fixed `seed` (a bench's data, the same every run).
    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Puts `items` in a random order (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}
