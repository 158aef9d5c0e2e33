//! The SQL every implementation sends, whatever its database driver, and the one piece of update
//! logic that decides what those statements write ([`WorldUpdate`]).

use crate::{
    model::World,
    random::{random_id, random_number},
};

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

/// What one update request writes, drawn before anything is read: the SELECTs and the UPDATE can
/// then go out together, in one round trip, as xitca-web and ntex send them. PostgreSQL runs a
/// connection's statements in order, so every row is still read before it is written. TFB asks
/// for a new random number per row, not one that differs from the old, and its verifier checks
/// only that the rows changed; ours checks too that every reported value is the stored one.
pub struct WorldUpdate {
    /// The response: one row per SELECT, in the order drawn. When a request drew the same id
    /// twice, both entries report the single value that is stored, so the response never shows a
    /// value the table does not hold.
    pub worlds: Vec<World>,
    /// The UPDATE's parameters: ids sorted, so concurrent requests lock rows in one order and
    /// cannot deadlock, and each id once.
    pub ids: Vec<i32>,
    pub numbers: Vec<i32>,
}

impl WorldUpdate {
    /// `count` random rows, each with a new random number.
    pub fn draw(count: usize) -> Self {
        Self::from_draws(
            (0..count)
                .map(|_| World {
                    id: random_id(),
                    random_number: random_number(),
                })
                .collect(),
        )
    }

    fn from_draws(mut worlds: Vec<World>) -> Self {
        let count = worlds.len();
        let mut order: Vec<usize> = (0..count).collect();
        order.sort_unstable_by_key(|&index| worlds[index].id);
        let mut ids = Vec::with_capacity(count);
        let mut numbers = Vec::with_capacity(count);
        for index in order {
            let world = &mut worlds[index];
            if ids.last() == Some(&world.id) {
                world.random_number = *numbers.last().expect("ids and numbers grow together");
            } else {
                ids.push(world.id);
                numbers.push(world.random_number);
            }
        }
        Self {
            worlds,
            ids,
            numbers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_go_out_sorted_once_and_duplicates_report_the_stored_value() {
        let world = |id, random_number| World { id, random_number };
        let update =
            WorldUpdate::from_draws(vec![world(9, 1), world(3, 2), world(9, 3), world(1, 4)]);
        assert_eq!(update.ids, [1, 3, 9]);
        assert_eq!(update.numbers, [4, 2, 1]);
        let reported: Vec<(i32, i32)> = update
            .worlds
            .iter()
            .map(|world| (world.id, world.random_number))
            .collect();
        assert_eq!(reported, [(9, 1), (3, 2), (9, 1), (1, 4)]);
    }

    #[test]
    fn a_draw_has_the_asked_rows_in_range() {
        let update = WorldUpdate::draw(500);
        assert_eq!(update.worlds.len(), 500);
        assert!(
            update
                .worlds
                .iter()
                .all(|world| (1..=10_000).contains(&world.id)
                    && (1..=10_000).contains(&world.random_number))
        );
    }
}
