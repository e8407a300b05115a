//! The Lambda package: the zip's size and age, and the release profile that
//! produced it (read from the workspace's Cargo.toml).

use crate::report::Row;
use crate::setup::Paths;
use std::path::Path;
use std::time::SystemTime;

/// The settings of `[profile.<name>]`, `key = value` joined by `, `.
pub fn profile_settings(cargo_toml: &str, name: &str) -> String {
    let header = format!("[profile.{name}]");
    cargo_toml
        .lines()
        .skip_while(|line| line.trim() != header)
        .skip(1)
        .map(str::trim)
        .take_while(|line| !line.starts_with('['))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The newest modification time of the files under `dir` (recursively).
pub fn newest_under(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let modified = if path.is_dir() {
            newest_under(&path)
        } else {
            entry.metadata().ok()?.modified().ok()
        };
        newest = newest.max(modified);
    }
    newest
}

// --- The section -----------------------------------------------------------

/// The section's rows, for `make bench`'s table.
pub fn run(paths: &Paths) -> anyhow::Result<Vec<Row>> {
    let section = "package";
    let cargo_toml = std::fs::read_to_string(paths.workspace.join("Cargo.toml"))?;
    let profile = format!(
        "[profile.lambda] {}; [profile.release] {}",
        profile_settings(&cargo_toml, "lambda"),
        profile_settings(&cargo_toml, "release")
    );
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let mut rows = Vec::new();
    let zip = paths.workspace.join("target/lambda/api/bootstrap.zip");
    match std::fs::metadata(&zip) {
        Ok(metadata) => {
            let built = metadata.modified().ok();
            let sources = [
                paths.workspace.join("api/src"),
                paths.workspace.join("Cargo.lock"),
            ]
            .iter()
            .filter_map(|path| {
                if path.is_dir() {
                    newest_under(path)
                } else {
                    std::fs::metadata(path).and_then(|m| m.modified()).ok()
                }
            })
            .max();
            let freshness = match (built, sources) {
                (Some(built), Some(sources)) if built < sources => {
                    "STALE: older than api/src or Cargo.lock, rebuild with BENCH_LAMBDA=1 make bench"
                }
                _ => "newer than api/src and Cargo.lock",
            };
            rows.push(
                Row::new(
                    section,
                    "Lambda zip, arm64 (target/lambda/api/bootstrap.zip)",
                    mib(metadata.len()),
                    "MiB",
                )
                .note(format!("{} bytes; {freshness}; {profile}", metadata.len())),
            );
        }
        Err(_) => rows.push(Row::skipped(
            section,
            "Lambda zip, arm64 (target/lambda/api/bootstrap.zip)",
            format!("not built (BENCH_LAMBDA=1 make bench, or make lambda); {profile}"),
        )),
    }
    for (figure, binary) in [
        ("api release binary, host (target/release/api)", &paths.api),
        (
            "hello release binary, host (target/release/hello)",
            &paths.hello,
        ),
    ] {
        match std::fs::metadata(binary) {
            Ok(metadata) => rows.push(
                Row::new(section, figure, mib(metadata.len()), "MiB")
                    .note("stripped, uncompressed"),
            ),
            Err(error) => rows.push(Row::skipped(section, figure, error)),
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_read_from_cargo_toml() {
        let toml = "[workspace]\nmembers = []\n\n[profile.release]\nlto = true\n# why\ncodegen-units = 1\nopt-level = \"s\"\n\n[profile.lambda]\ninherits = \"release\"\nopt-level = \"z\"\n";
        assert_eq!(
            profile_settings(toml, "release"),
            "lto = true, codegen-units = 1, opt-level = \"s\""
        );
        assert_eq!(
            profile_settings(toml, "lambda"),
            "inherits = \"release\", opt-level = \"z\""
        );
        assert_eq!(profile_settings("[workspace]\n", "release"), "");
    }
}
