//! A package built for a one-test run is the very binary a run of every test builds. Cargo
//! unifies features over the packages one call builds, so building the implementations together
//! would give some a different binary than building each alone (tfb-common's Tokio layer, which
//! the Tokio frameworks enable, would change tfb-may-minihttp's symbols, for one).

use std::{fs, path::Path};

use tfb_harness::{build, discover, workspace_root};

/// The bytes themselves: a changed binary changes them, whatever its timestamps say.
fn contents(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

#[test]
fn each_implementation_built_with_all_is_the_binary_built_alone() {
    let settings = build::BuildSettings::for_tests();
    let implementations = discover::implementations(&workspace_root()).unwrap();
    let packages: Vec<&str> = implementations
        .iter()
        .map(|implementation| implementation.package.as_str())
        .collect();
    let all = build::build(&packages, &settings).unwrap();
    // Read before the next build, which writes to the same path.
    let built_with_all: Vec<(&str, Vec<u8>)> = packages
        .iter()
        .map(|package| (*package, contents(&all[*package])))
        .collect();
    for (package, with_all) in built_with_all {
        let alone = build::build(&[package], &settings).unwrap();
        assert!(
            contents(&alone[package]) == with_all,
            "{package} built with every implementation differs from {package} built alone"
        );
    }
}
