//! Rebuilds the crate when a yarte template changes: the derive reads templates at compile time,
//! and cargo does not otherwise know they are inputs.

fn main() {
    yarte::recompile::when_changed();
}
