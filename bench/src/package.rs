//! The Lambda package: the zip's size and age, and the release profile that
//! produced it (read from the workspace's Cargo.toml).

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
