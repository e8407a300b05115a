//! `buildspec.yaml` is what CodeBuild runs on every push: it must parse and
//! hold the steps a deploy needs, in that order.

#![allow(clippy::unwrap_used)] // a test that cannot go on should panic, loudly

use std::path::Path;

fn commands(buildspec: &serde_yaml::Value, phase: &str) -> Vec<String> {
    buildspec["phases"][phase]["commands"]
        .as_sequence()
        .unwrap_or_else(|| panic!("phase `{phase}` has no commands"))
        .iter()
        .map(|command| command.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_buildspec_installs_builds_and_deploys() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../buildspec.yaml");
    let buildspec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(buildspec["version"].as_f64(), Some(0.2));

    let install = commands(&buildspec, "install").join("\n");
    assert!(
        install.contains("rustup"),
        "installs the Rust toolchain:\n{install}"
    );
    assert!(
        !install.contains("aarch64-unknown-linux-gnu"),
        "no hard-coded architecture: the build is for stack.arch:\n{install}"
    );
    assert!(
        install.contains("cargo-lambda"),
        "installs cargo-lambda:\n{install}"
    );

    // The deployer builds the zip itself, for the stack's architecture: a
    // `make lambda` (arm64 unless told) handed over with `--artifact` would
    // give an x86_64 stack an arm64 binary.
    let build = commands(&buildspec, "build");
    let deploy: Vec<&String> = build
        .iter()
        .filter(|c| c.contains("deployer -- deploy --yes"))
        .collect();
    assert_eq!(deploy.len(), 1, "deploys without prompting: {build:?}");
    assert!(!deploy[0].contains("--artifact"), "{build:?}");
    assert!(
        deploy[0].contains("--from-pipeline"),
        "refuses pipeline changes and stale commits: {build:?}"
    );
    assert!(
        !build.iter().any(|c| c.contains("make lambda")),
        "{build:?}"
    );

    let cached: Vec<&str> = buildspec["cache"]["paths"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for needed in ["/root/.cargo/registry/**/*", "target/**/*"] {
        assert!(cached.contains(&needed), "caches {needed}: {cached:?}");
    }
}
