//! Random World ids and random numbers, both uniform in 1..=10000.
//!
//! Every value is a fresh draw from a per-thread generator seeded independently on each thread;
//! nothing clones generator state, so two workers never replay the same id sequence.

/// The number of rows in the World table; ids and random numbers lie in `1..=WORLD_ROWS`.
pub const WORLD_ROWS: i32 = 10_000;

/// A uniformly random World id.
pub fn random_id() -> i32 {
    fastrand::i32(1..=WORLD_ROWS)
}

/// A uniformly random `randomNumber` value for the updates test.
pub fn random_number() -> i32 {
    fastrand::i32(1..=WORLD_ROWS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_in_range_and_covers_both_ends() {
        let draws: Vec<i32> = (0..200_000).map(|_| random_id()).collect();
        assert!(draws.iter().all(|id| (1..=WORLD_ROWS).contains(id)));
        assert!(draws.contains(&1) && draws.contains(&WORLD_ROWS));
    }

    #[test]
    fn threads_draw_different_sequences() {
        let sequence = || (0..16).map(|_| random_id()).collect::<Vec<_>>();
        let first = std::thread::spawn(sequence).join().unwrap();
        let second = std::thread::spawn(sequence).join().unwrap();
        assert_ne!(first, second);
    }
}
