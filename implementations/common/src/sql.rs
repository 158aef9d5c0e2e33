//! The SQL every implementation sends, whatever its database driver, and the one piece of update
//! logic that decides what those statements write.

use crate::{model::World, random::random_number};

/// Settings every connection asks for at startup. TFB's statements take microseconds; one that
/// runs for a second is waiting on a lock another session holds, and on a connection many
/// requests share it would hold every statement queued behind it.
pub const SESSION_SETTINGS: [(&str, &str); 1] = [("statement_timeout", "1s")];

/// One SELECT per World row; the verifier counts these in `pg_stat_statements`.
pub const SELECT_WORLD: &str = "SELECT id, randomnumber FROM world WHERE id = $1";

/// The whole World table, read once to fill the cached-queries test's cache.
pub const SELECT_ALL_WORLDS: &str = "SELECT id, randomnumber FROM world";

/// All fortunes, unsorted: the rules forbid `ORDER BY` and want the sort in the application.
pub const SELECT_FORTUNES: &str = "SELECT id, message FROM fortune";

/// One bulk UPDATE per request: row i of the two arrays sets `world[ids[i]]` to `numbers[i]`.
/// The statement text contains no `select`, so the verifier does not count its rows as reads.
pub const UPDATE_WORLDS: &str = "UPDATE world SET randomnumber = new.randomnumber \
     FROM UNNEST($1::int4[], $2::int4[]) AS new(id, randomnumber) WHERE world.id = new.id";

/// Gives every row a new random number that differs from the one it had, and returns the
/// UPDATE's parameters: ids sorted, so concurrent requests lock rows in one order and cannot
/// deadlock, and each id once. When a request drew the same id twice, both entries report the
/// single value that is stored, so the response never shows a value the table does not hold.
pub fn assign_new_numbers(worlds: &mut [World]) -> (Vec<i32>, Vec<i32>) {
    for world in worlds.iter_mut() {
        let old = world.random_number;
        world.random_number = loop {
            let new = random_number();
            if new != old {
                break new;
            }
        };
    }
    let mut order: Vec<usize> = (0..worlds.len()).collect();
    order.sort_unstable_by_key(|&index| worlds[index].id);
    let mut ids = Vec::with_capacity(worlds.len());
    let mut numbers = Vec::with_capacity(worlds.len());
    for index in order {
        let world = &mut worlds[index];
        if ids.last() == Some(&world.id) {
            world.random_number = *numbers.last().expect("ids and numbers grow together");
        } else {
            ids.push(world.id);
            numbers.push(world.random_number);
        }
    }
    (ids, numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_numbers_differ_sort_and_agree_on_duplicates() {
        let mut worlds = vec![
            World {
                id: 9,
                random_number: 5,
            },
            World {
                id: 3,
                random_number: 5,
            },
            World {
                id: 9,
                random_number: 5,
            },
            World {
                id: 1,
                random_number: 5,
            },
        ];
        let (ids, numbers) = assign_new_numbers(&mut worlds);
        assert_eq!(ids, [1, 3, 9]);
        assert!(worlds.iter().all(|world| world.random_number != 5));
        assert_eq!(worlds[0].random_number, worlds[2].random_number);
        for world in &worlds {
            let position = ids.binary_search(&world.id).unwrap();
            assert_eq!(numbers[position], world.random_number);
        }
    }
}
