//! `tfb new NAME --from SOURCE`: a new implementation scaffolded from an existing one, so adding a
//! framework starts from working glue instead of files copied by hand. It copies the source's
//! folder (not its `contract-exceptions.json`: those are its framework's, not the new one's) with
//! the package renamed, writes its `benchmark_config.json` under the new framework name, copies
//! the source's Dockerfile and Kubernetes overlay under the new names, adds the crate to the
//! workspace and `Cargo.lock`, and adds a row to implementations/README.md's table. The copy
//! builds and passes the suite as it is; the framework glue is then rewritten for NAME.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};
use serde_json::Value;
use tfb_harness::discover::{self, Implementation};

/// What `tfb new` wrote, for the report it prints.
pub struct Scaffolded {
    /// Files created, then files changed, relative to the workspace root.
    pub created: Vec<PathBuf>,
    pub changed: Vec<PathBuf>,
}

/// Scaffolds `implementations/<name>` in the workspace at `root` from the implementation in
/// `implementations/<from>`. Refuses, changing nothing, when the name is not a plain lowercase
/// name or anything it would create already exists.
pub fn scaffold(root: &Path, name: &str, from: &str) -> anyhow::Result<Scaffolded> {
    check_name(name)?;
    let implementations = discover::implementations(root)?;
    let Some(source) = implementations.iter().find(|found| found.name == from) else {
        let known: Vec<&str> = implementations
            .iter()
            .map(|found| found.name.as_str())
            .collect();
        bail!(
            "--from {from}: no implementation in implementations/{from}; the implementations are: {}",
            known.join(", ")
        );
    };
    let package = format!("tfb-{name}");
    if let Some(taken) = implementations.iter().find(|found| {
        found.name == name || found.package == package || found.config.framework == name
    }) {
        bail!(
            "{name}: implementations/{} (package {}, framework {}) already has that name",
            taken.name,
            taken.package,
            taken.config.framework
        );
    }
    let directory = root.join("implementations").join(name);
    let source_dockerfile = dockerfile_of(source)?;
    let dockerfile = format!("{name}.dockerfile");
    let overlay = Path::new("deploy/k8s/overlays").join(name);
    for path in [
        directory.clone(),
        root.join("dockerfiles").join(&dockerfile),
        root.join(&overlay),
    ] {
        if path.exists() {
            bail!("{} already exists", path.display());
        }
    }
    let renamed = Renaming {
        package: (source.package.clone(), package.clone()),
    };
    // What a failure half-way must put back, so a scaffold is written whole or not at all.
    let edited_files = ["Cargo.toml", "Cargo.lock", "implementations/README.md"];
    let originals: Vec<Option<String>> = edited_files
        .iter()
        .map(|file| fs::read_to_string(root.join(file)).ok())
        .collect();
    let written = write_scaffold(root, name, from, source, &renamed, &source_dockerfile);
    if written.is_err() {
        for (file, original) in edited_files.iter().zip(originals) {
            if let Some(original) = original {
                let _ = fs::write(root.join(file), original);
            }
        }
        let _ = fs::remove_dir_all(&directory);
        let _ = fs::remove_file(root.join("dockerfiles").join(&dockerfile));
        let _ = fs::remove_dir_all(root.join(&overlay));
    }
    written
}

/// Writes everything [`scaffold`] has checked it may write.
fn write_scaffold(
    root: &Path,
    name: &str,
    from: &str,
    source: &Implementation,
    renamed: &Renaming,
    source_dockerfile: &str,
) -> anyhow::Result<Scaffolded> {
    let directory = root.join("implementations").join(name);
    let dockerfile = format!("{name}.dockerfile");
    let overlay = Path::new("deploy/k8s/overlays").join(name);
    let source_overlay = root.join("deploy/k8s/overlays").join(&source.name);
    let mut created = Vec::new();
    copy_folder(&source.dir, &directory, renamed)?;
    created.push(Path::new("implementations").join(name));
    let manifest_path = directory.join("Cargo.toml");
    fs::write(
        &manifest_path,
        describe(&fs::read_to_string(&manifest_path)?, name, from),
    )?;
    let config_path = directory.join("benchmark_config.json");
    fs::write(
        &config_path,
        benchmark_config(&fs::read_to_string(&config_path)?, source, name)?,
    )?;
    let dockerfile_text = fs::read_to_string(root.join("dockerfiles").join(source_dockerfile))
        .with_context(|| format!("reading dockerfiles/{source_dockerfile}"))?;
    let dockerfile_text = dockerfile_text.replace(
        &format!("dockerfiles/{source_dockerfile}"),
        &format!("dockerfiles/{dockerfile}"),
    );
    fs::write(
        root.join("dockerfiles").join(&dockerfile),
        renamed.apply(&retitle(&dockerfile_text, name, from)),
    )?;
    created.push(Path::new("dockerfiles").join(&dockerfile));
    if source_overlay.is_dir() {
        fs::create_dir_all(root.join(&overlay))?;
        for entry in fs::read_dir(&source_overlay)? {
            let entry = entry?;
            let text = fs::read_to_string(entry.path())?
                .replace(
                    &format!("overlays/{}", source.name),
                    &format!("overlays/{name}"),
                )
                .replace(
                    &format!("test={}", source.test_name("default")),
                    &format!("test={name}"),
                );
            fs::write(
                root.join(&overlay).join(entry.file_name()),
                renamed.apply(&retitle(&text, name, from)),
            )?;
        }
        created.push(overlay);
    }
    let mut changed = vec![PathBuf::from("Cargo.toml")];
    add_member(root, name, &source.name)?;
    if add_table_row(root, name, &source.name)? {
        changed.push(PathBuf::from("implementations/README.md"));
    }
    update_lockfile(root)?;
    changed.push(PathBuf::from("Cargo.lock"));
    Ok(Scaffolded { created, changed })
}

/// The manifest's `description` says what the crate is now, and where it came from.
fn describe(manifest: &str, name: &str, from: &str) -> String {
    let lines: Vec<String> = manifest
        .lines()
        .map(|line| {
            if line.starts_with("description = ") {
                format!(
                    "description = \"The {name} reference implementation of TFB's test types \
                     (scaffolded from {from} by `tfb new`).\""
                )
            } else {
                line.to_owned()
            }
        })
        .collect();
    lines.join("\n") + "\n"
}

/// A name cargo, Docker, Kubernetes and TFB's test names all accept as it is.
fn check_name(name: &str) -> anyhow::Result<()> {
    let plain = name.len() <= 40
        && name.starts_with(|first: char| first.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !plain {
        bail!(
            "{name:?}: a new implementation's name is lowercase letters, digits and single dashes, \
             starting with a letter, at most 40 characters (e.g. xitca-web)"
        );
    }
    Ok(())
}

/// The package name, in both spellings Rust code uses (`tfb-axum` in Cargo.toml and messages,
/// `tfb_axum` as a crate path), from the source's to the new one's.
struct Renaming {
    package: (String, String),
}

impl Renaming {
    fn apply(&self, text: &str) -> String {
        let (old, new) = &self.package;
        let text = replace_name(text, old, new);
        replace_name(&text, &old.replace('-', "_"), &new.replace('-', "_"))
    }
}

/// Replaces `old` where it stands as a whole name: not where it begins or ends a longer one
/// (`tfb-hyper` in `tfb-hyper-serve` is another crate).
fn replace_name(text: &str, old: &str, new: &str) -> String {
    let part_of_a_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(old) {
        out.push_str(&rest[..at]);
        let before = out.chars().next_back();
        let after = rest[at + old.len()..].chars().next();
        if before.is_some_and(part_of_a_name) || after.is_some_and(part_of_a_name) {
            out.push_str(old);
        } else {
            out.push_str(new);
        }
        rest = &rest[at + old.len()..];
    }
    out.push_str(rest);
    out
}

/// Copies `from` into `to` (which must not exist) with the package renamed in every text file;
/// build output and the source framework's contract exceptions stay behind.
fn copy_folder(from: &Path, to: &Path, renamed: &Renaming) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let file_name = entry.file_name();
        if file_name == "target" || file_name == "contract-exceptions.json" {
            continue;
        }
        let (source, destination) = (entry.path(), to.join(&file_name));
        if entry.file_type()?.is_dir() {
            copy_folder(&source, &destination, renamed)?;
            continue;
        }
        let bytes = fs::read(&source)?;
        match String::from_utf8(bytes) {
            Ok(text) => fs::write(&destination, renamed.apply(&text))?,
            Err(not_text) => fs::write(&destination, not_text.into_bytes())?,
        }
    }
    Ok(())
}

/// The Dockerfile the source's default test names.
fn dockerfile_of(source: &Implementation) -> anyhow::Result<String> {
    let config: Value = serde_json::from_str(&fs::read_to_string(
        source.dir.join("benchmark_config.json"),
    )?)?;
    config["tests"][0]["default"]["dockerfile"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "implementations/{}/benchmark_config.json names no dockerfile for its default test",
                source.name
            )
        })
}

/// The first line's "The <framework> ..." title names the source: every "The <framework> " names
/// the new one instead, and the first line says where it came from.
fn retitle(text: &str, name: &str, from: &str) -> String {
    let Some(word) = text
        .lines()
        .next()
        .and_then(|first| first.strip_prefix("# The "))
        .and_then(|rest| rest.split_whitespace().next())
    else {
        return text.to_owned();
    };
    let renamed = text.replace(&format!("The {word} "), &format!("The {name} "));
    let (first, rest) = renamed.split_once('\n').unwrap_or((&renamed, ""));
    let first = first.replacen(
        "implementation",
        &format!("implementation (scaffolded from {from} by `tfb new`)"),
        1,
    );
    if rest.is_empty() && !renamed.contains('\n') {
        first
    } else {
        format!("{first}\n{rest}")
    }
}

/// The source's `benchmark_config.json` under the new name: `framework`, each test's
/// `display_name`, `notes` (until rewritten, they say where the glue came from), `versus` where
/// it named the source, and `dockerfile`. Edited in place, so the file keeps its layout.
fn benchmark_config(text: &str, source: &Implementation, name: &str) -> anyhow::Result<String> {
    let config: Value = serde_json::from_str(text)?;
    let old_framework = &source.config.framework;
    let mut edited = text.to_owned();
    let mut replace = |key: &str, old: &Value, new: &str| {
        let (old, new) = (
            format!("\"{key}\": {old}"),
            format!("\"{key}\": {}", Value::from(new)),
        );
        edited = edited.replace(&old, &new);
    };
    replace("framework", &config["framework"], name);
    for tests in config["tests"].as_array().into_iter().flatten() {
        for test in tests
            .as_object()
            .into_iter()
            .flat_map(|tests| tests.values())
        {
            for (key, new) in [
                (
                    "display_name",
                    test["display_name"].as_str().unwrap_or_default().replacen(
                        old_framework.as_str(),
                        name,
                        1,
                    ),
                ),
                (
                    "notes",
                    format!(
                        "scaffolded by `tfb new` from the {old_framework} implementation: say how \
                         {name} serves this test"
                    ),
                ),
                ("framework", name.to_owned()),
                ("dockerfile", format!("{name}.dockerfile")),
            ] {
                if !test[key].is_null() {
                    replace(key, &test[key], &new);
                }
            }
            if test["versus"].as_str() == Some(old_framework) {
                replace("versus", &test["versus"], name);
            }
        }
    }
    let written: Value = serde_json::from_str(&edited)?;
    if written["framework"] != name {
        bail!(
            "benchmark_config.json of {} is laid out in a way `tfb new` cannot edit",
            source.name
        );
    }
    Ok(edited)
}

/// Adds `implementations/<name>` to the workspace's members, after the source's line.
fn add_member(root: &Path, name: &str, from: &str) -> anyhow::Result<()> {
    let path = root.join("Cargo.toml");
    let text = fs::read_to_string(&path)?;
    let source_line = format!("    \"implementations/{from}\",\n");
    let Some(at) = text.find(&source_line) else {
        bail!(
            "Cargo.toml: no member line {:?} to add implementations/{name} after",
            source_line.trim()
        );
    };
    let at = at + source_line.len();
    let edited = format!(
        "{}    \"implementations/{name}\",\n{}",
        &text[..at],
        &text[at..]
    );
    fs::write(&path, edited)?;
    Ok(())
}

/// A row for the new folder in implementations/README.md's table, after the source's row; false
/// when the file or the row is not there.
fn add_table_row(root: &Path, name: &str, from: &str) -> anyhow::Result<bool> {
    let path = root.join("implementations/README.md");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(false);
    };
    let prefix = format!("| `{from}/` |");
    let Some(start) = text.find(&prefix) else {
        return Ok(false);
    };
    let end = start + text[start..].find('\n').unwrap_or(text.len() - start) + 1;
    let row = format!(
        "| `{name}/` | `tfb-{name}` | (its framework) | scaffolded from `{from}/` by `tfb new`; \
         describe how it serves |\n"
    );
    fs::write(&path, format!("{}{row}{}", &text[..end], &text[end..]))?;
    Ok(true)
}

/// Records the new package in `Cargo.lock`, which the builds read with `--locked`; its
/// dependencies are the source's, so nothing needs fetching.
fn update_lockfile(root: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    for offline in [true, false] {
        let mut command = Command::new(&cargo);
        command
            .args(["update", "--workspace", "--quiet"])
            .current_dir(root);
        if offline {
            command.arg("--offline");
        }
        let output = command.output().context("running cargo update")?;
        if output.status.success() {
            return Ok(());
        }
        if !offline {
            bail!(
                "cargo update --workspace failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain() {
        for good in ["ntex", "xitca-web", "hyper2", "a"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Ntex",
            "xitca_web",
            "-web",
            "web-",
            "a--b",
            "9lives",
            "a/b",
            "a b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn both_spellings_of_the_package_are_renamed() {
        let renamed = Renaming {
            package: ("tfb-may-minihttp".to_owned(), "tfb-ntex".to_owned()),
        };
        assert_eq!(
            renamed.apply("name = \"tfb-may-minihttp\"\nuse tfb_may_minihttp::x;\ntfb-common"),
            "name = \"tfb-ntex\"\nuse tfb_ntex::x;\ntfb-common"
        );
    }

    #[test]
    fn only_whole_names_are_renamed() {
        let renamed = Renaming {
            package: ("tfb-hyper".to_owned(), "tfb-ntex".to_owned()),
        };
        assert_eq!(
            renamed.apply(
                "tfb-hyper-serve.workspace = true\n\"tfb-hyper\", tfb_hyper_serve::run(\"tfb-hyper\")\n\
                 mytfb-hyper tfb-hyper"
            ),
            "tfb-hyper-serve.workspace = true\n\"tfb-ntex\", tfb_hyper_serve::run(\"tfb-ntex\")\n\
             mytfb-hyper tfb-ntex"
        );
    }

    #[test]
    fn the_title_names_the_new_implementation() {
        assert_eq!(
            retitle(
                "# The axum reference implementation. Build it:\nFROM x\nLABEL d=\"The axum reference implementation of\"\n",
                "ntex",
                "axum"
            ),
            "# The ntex reference implementation (scaffolded from axum by `tfb new`). Build it:\nFROM x\n\
             LABEL d=\"The ntex reference implementation of\"\n"
        );
        assert_eq!(retitle("FROM x\n", "ntex", "axum"), "FROM x\n");
    }
}
