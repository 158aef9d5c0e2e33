//! ARCHITECTURE.md's "must not" rules, held against the workspace's real dependency graph
//! (`cargo metadata`), in the spirit of rust-analyzer's tidy tests: a dependency that breaks the
//! layering fails here with the path it arrives by, before anyone reads the code. The rules are
//! checked on a plain graph so that a planted violation proves each kind of rule can fail.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cargo_metadata::{DependencyKind, MetadataCommand};
use tfb_harness::workspace_root;

/// What a workspace crate is, as ARCHITECTURE.md's code map names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Database,
    Common,
    PostgresClient,
    /// The serving layer the implementations on hyper share.
    ServingLayer,
    Implementation,
    Conformance,
    Harness,
    Runner,
    Tests,
}

/// The crates every role is given by name; implementations are found by their
/// `benchmark_config.json`, so adding one needs no change here.
const NAMED_CRATES: [(&str, Role); 8] = [
    ("tfb-database", Role::Database),
    ("tfb-common", Role::Common),
    ("tfb-may-postgres", Role::PostgresClient),
    ("tfb-hyper-serve", Role::ServingLayer),
    ("conformance", Role::Conformance),
    ("tfb-harness", Role::Harness),
    ("tfb-runner", Role::Runner),
    ("tfb-tests", Role::Tests),
];

/// HTTP frameworks and servers.
const HTTP_FRAMEWORKS: [&str; 9] = [
    "hyper",
    "axum",
    "actix-web",
    "actix-http",
    "may_minihttp",
    "ntex",
    "xitca-web",
    "xitca-http",
    "tower-http",
];

/// Crates that speak HTTP without being a framework (a client's, or the protocol's types).
const HTTP_PROTOCOL_CRATES: [&str; 5] = ["http", "httparse", "h2", "reqwest", "ureq"];

/// Every crate that is HTTP code.
fn http_crates<'a>() -> impl Iterator<Item = &'a str> {
    HTTP_FRAMEWORKS.into_iter().chain(HTTP_PROTOCOL_CRATES)
}

/// The workspace as the rules see it: each member's role, and every package it can reach
/// (its own dependencies of every kind, then theirs that are built into it), with one path
/// to each for the message.
#[derive(Clone)]
struct Workspace {
    roles: BTreeMap<String, Role>,
    /// member → direct dependencies by name, of every kind.
    direct: BTreeMap<String, BTreeSet<String>>,
    /// any package → its normal and build dependencies by name.
    linked: BTreeMap<String, BTreeSet<String>>,
}

impl Workspace {
    fn from_cargo() -> Workspace {
        let metadata = MetadataCommand::new()
            .current_dir(workspace_root())
            .other_options(vec!["--locked".to_owned()])
            .exec()
            .expect("cargo metadata");
        let resolve = metadata.resolve.as_ref().expect("a resolved graph");
        let name_of = |id: &cargo_metadata::PackageId| metadata[id].name.to_string();
        let mut workspace = Workspace {
            roles: BTreeMap::new(),
            direct: BTreeMap::new(),
            linked: BTreeMap::new(),
        };
        for id in &metadata.workspace_members {
            let package = &metadata[id];
            let is_implementation = package
                .manifest_path
                .with_file_name("benchmark_config.json")
                .exists();
            let role = NAMED_CRATES
                .iter()
                .find(|(name, _)| *name == package.name.as_str())
                .map(|(_, role)| *role)
                .or(is_implementation.then_some(Role::Implementation));
            match role {
                Some(role) => workspace.roles.insert(name_of(id), role),
                None => panic!(
                    "workspace member {} has no place in ARCHITECTURE.md's code map: add its \
                     section there and its role to NAMED_CRATES in tests/architecture.rs",
                    package.name
                ),
            };
        }
        for node in &resolve.nodes {
            let name = name_of(&node.id);
            for dependency in &node.deps {
                let target = name_of(&dependency.pkg);
                if metadata.workspace_members.contains(&node.id) {
                    workspace
                        .direct
                        .entry(name.clone())
                        .or_default()
                        .insert(target.clone());
                }
                let built_in = dependency.dep_kinds.iter().any(|kind| {
                    matches!(kind.kind, DependencyKind::Normal | DependencyKind::Build)
                });
                if built_in {
                    workspace
                        .linked
                        .entry(name.clone())
                        .or_default()
                        .insert(target);
                }
            }
        }
        workspace
    }

    fn members(&self, role: Role) -> impl Iterator<Item = &str> {
        self.roles
            .iter()
            .filter(move |(_, member_role)| **member_role == role)
            .map(|(name, _)| name.as_str())
    }

    /// Every package `member` reaches, each with the path it arrives by.
    fn reachable(&self, member: &str) -> BTreeMap<String, Vec<String>> {
        let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut queue = VecDeque::new();
        for dependency in self.direct.get(member).into_iter().flatten() {
            paths.insert(
                dependency.clone(),
                vec![member.to_owned(), dependency.clone()],
            );
            queue.push_back(dependency.clone());
        }
        while let Some(package) = queue.pop_front() {
            for dependency in self.linked.get(&package).into_iter().flatten() {
                if dependency != member && !paths.contains_key(dependency) {
                    let mut path = paths[&package].clone();
                    path.push(dependency.clone());
                    paths.insert(dependency.clone(), path);
                    queue.push_back(dependency.clone());
                }
            }
        }
        paths
    }

    /// Each broken rule as "who reaches what (path): the rule".
    fn violations(&self) -> Vec<String> {
        let implementations: Vec<&str> = self.members(Role::Implementation).collect();
        let mut found = Vec::new();
        for (member, role) in &self.roles {
            let (forbidden, rule): (Vec<&str>, &str) = match role {
                Role::Database => (
                    implementations
                        .iter()
                        .copied()
                        .chain(["tfb-common"])
                        .chain(http_crates())
                        .collect(),
                    "db-schema must not depend on any implementation or HTTP code",
                ),
                Role::Common => (
                    HTTP_FRAMEWORKS.to_vec(),
                    "tfb-common must not depend on any HTTP framework",
                ),
                Role::PostgresClient => (
                    ["tfb-common"].into_iter().chain(http_crates()).collect(),
                    "tfb-may-postgres must not know HTTP or tfb-common",
                ),
                Role::ServingLayer => (
                    implementations
                        .iter()
                        .copied()
                        .chain(self.members(Role::Conformance))
                        .chain(self.members(Role::Harness))
                        .chain(self.members(Role::Runner))
                        .chain(self.members(Role::Tests))
                        .chain(self.members(Role::Database))
                        .chain(HTTP_FRAMEWORKS.into_iter().filter(|name| *name != "hyper"))
                        .collect(),
                    "tfb-hyper-serve serves hyper for the implementations: it must not depend on \
                     any of them, the tools, or a framework above hyper",
                ),
                Role::Implementation => (
                    implementations
                        .iter()
                        .copied()
                        .filter(|other| other != member)
                        .chain(self.members(Role::Conformance))
                        .chain(self.members(Role::Harness))
                        .chain(self.members(Role::Runner))
                        .chain(self.members(Role::Tests))
                        .chain(self.members(Role::Database))
                        .collect(),
                    "an implementation knows the database only through tfb-common (or its own \
                     client crate) and nothing of the other implementations or the tools",
                ),
                Role::Conformance => (
                    implementations
                        .iter()
                        .copied()
                        .chain(["tfb-common"])
                        .collect(),
                    "conformance must not depend on tfb-common or any implementation: it \
                     writes down TFB's expectations itself",
                ),
                Role::Harness => (
                    implementations
                        .iter()
                        .copied()
                        .chain(["tfb-common"])
                        .collect(),
                    "the harness must not depend on tfb-common or any implementation",
                ),
                Role::Runner => (
                    implementations
                        .iter()
                        .copied()
                        .chain(["tfb-common"])
                        .collect(),
                    "the runner must not know any implementation by name",
                ),
                Role::Tests => (
                    implementations
                        .iter()
                        .copied()
                        .chain(["tfb-common"])
                        .collect(),
                    "the end-to-end tests must not depend on tfb-common or any implementation: \
                     they write down the expected pages and rules themselves",
                ),
            };
            for (package, path) in self.reachable(member) {
                if forbidden.contains(&package.as_str()) {
                    found.push(format!(
                        "{member} depends on {package} ({}): {rule}",
                        path.join(" → ")
                    ));
                }
            }
        }
        found
    }

    /// Adds the normal dependency `from` → `to` (a planted violation): direct for `from`, and
    /// built into every crate that reaches `from`.
    fn plant(&mut self, from: &str, to: &str) {
        for graph in [&mut self.direct, &mut self.linked] {
            graph
                .entry(from.to_owned())
                .or_default()
                .insert(to.to_owned());
        }
    }
}

#[test]
fn the_workspace_keeps_architectures_layering() {
    let violations = Workspace::from_cargo().violations();
    assert!(
        violations.is_empty(),
        "ARCHITECTURE.md's rules are broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_crate_outside_implementations_has_its_section_in_architecture_md() {
    let architecture = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).unwrap();
    let workspace = Workspace::from_cargo();
    for (member, role) in &workspace.roles {
        if *role != Role::Implementation {
            assert!(
                architecture.contains(&format!("crate `{member}`")),
                "ARCHITECTURE.md's code map has no section naming crate `{member}`"
            );
        }
    }
}

/// Each kind of rule, broken on purpose in a copy of the real graph, is reported with its path.
#[test]
fn planted_violations_are_each_reported() {
    let read = Workspace::from_cargo();
    let implementation = read
        .members(Role::Implementation)
        .next()
        .expect("at least one implementation")
        .to_owned();
    let plants = [
        (
            "conformance",
            "tfb-common",
            "conformance depends on tfb-common (conformance → tfb-common)",
        ),
        // Through another crate: the harness's own dependency reaches tfb-common.
        (
            "conformance",
            implementation.as_str(),
            "tfb-harness depends on tfb-common (tfb-harness → conformance → ",
        ),
        (
            "tfb-database",
            "hyper",
            "tfb-database depends on hyper (tfb-database → hyper)",
        ),
        (
            "tfb-common",
            "axum",
            "tfb-common depends on axum (tfb-common → axum)",
        ),
        (
            "tfb-may-postgres",
            "tfb-common",
            "tfb-may-postgres depends on tfb-common (tfb-may-postgres → tfb-common)",
        ),
        (
            "tfb-runner",
            implementation.as_str(),
            "tfb-runner depends on ",
        ),
        (
            "tfb-tests",
            "tfb-common",
            "tfb-tests depends on tfb-common (tfb-tests → tfb-common)",
        ),
        (
            implementation.as_str(),
            "conformance",
            " depends on conformance (",
        ),
        (
            "tfb-hyper-serve",
            "axum",
            "tfb-hyper-serve depends on axum (tfb-hyper-serve → axum)",
        ),
    ];
    assert!(read.violations().is_empty());
    for (from, to, expected) in plants {
        let mut workspace = read.clone();
        workspace.plant(from, to);
        let violations = workspace.violations();
        assert!(
            violations
                .iter()
                .any(|violation| violation.contains(expected)),
            "planting {from} → {to} gave {violations:#?}, none containing {expected:?}"
        );
    }
}
