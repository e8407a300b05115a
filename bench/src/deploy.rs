//! Deploying on the emulator with the real `deployer` binary: a first
//! `bootstrap` (bucket, stack, seeds), then no-op `deploy`s, each timed from
//! spawn to exit. The Lambda package is the host's release `api`, zipped as
//! `bootstrap` with the seeds, as `deployer/tests/e2e_emulator.rs` does.
//!
//! The stack is left in place: the emulator `make bench` starts is stopped
//! (and forgotten) when the run ends.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::{Row, median};
use crate::seeding;
use crate::setup::{Options, Paths, TempDir, unique};
use anyhow::{Context as _, bail};

/// `api` (already stripped by the release profile) as `bootstrap`, and
/// `infra/seed/*` under `infra/seed/`, where cargo-lambda's `--include` puts them.
pub fn host_lambda_zip(api: &Path, seeds: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("lambda.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path)?);
    let executable = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.start_file("bootstrap", executable)?;
    zip.write_all(&std::fs::read(api).with_context(|| format!("cannot read {}", api.display()))?)?;
    for seed in std::fs::read_dir(seeds)? {
        let seed = seed?.path();
        let name = format!(
            "infra/seed/{}",
            seed.file_name()
                .map(|name| name.to_string_lossy())
                .unwrap_or_default()
        );
        zip.start_file(
            name,
            zip::write::SimpleFileOptions::default().unix_permissions(0o644),
        )?;
        zip.write_all(&std::fs::read(&seed)?)?;
    }
    zip.finish()?;
    Ok(path)
}

/// A copy of the workspace's `infra/` under `dir` whose stack runs on the
/// host's CPU: the emulator runs the zip's `bootstrap` here, and the deployer
/// refuses a zip built for another architecture than `stack.arch`.
pub fn host_declaration(workspace: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "arm64",
        other => bail!("no Lambda architecture runs {other} binaries"),
    };
    let infra = dir.join("infra");
    std::fs::create_dir_all(infra.join("seed"))?;
    for seed in std::fs::read_dir(workspace.join("infra/seed"))? {
        let seed = seed?.path();
        if let Some(name) = seed.file_name() {
            std::fs::copy(&seed, infra.join("seed").join(name))?;
        }
    }
    let app = std::fs::read_to_string(workspace.join("infra/app.yaml"))?;
    if app.lines().any(|line| line.starts_with("stack:")) {
        bail!("infra/app.yaml has a `stack:` section; the bench's copy would repeat it");
    }
    let path = infra.join("app.yaml");
    std::fs::write(&path, format!("{app}stack:\n  arch: {arch}\n"))?;
    Ok(path)
}

/// Runs `deployer ARGS` from `workspace`, returning its stdout and how long it took.
pub fn deployer(
    deployer: &Path,
    workspace: &Path,
    args: &[&str],
) -> anyhow::Result<(String, Duration)> {
    let started = Instant::now();
    let output = Command::new(deployer)
        .args(args)
        .current_dir(workspace)
        // The emulator answers at once; the default 2 s poll would only wait.
        .env("DEPLOYER_POLL_INTERVAL_MS", "100")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", deployer.display()))?;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "deployer {} failed ({}): {}{}",
            args.join(" "),
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((stdout, elapsed))
}

// --- The section -----------------------------------------------------------

/// The section's rows, for `make bench`'s table.
pub fn run(paths: &Paths, options: &Options) -> anyhow::Result<Vec<Row>> {
    seeding::emulator_endpoint()?;
    Paths::require(&[&paths.api, &paths.deployer])?;
    let section = "deploy";
    let work = TempDir::new("deploy")?;
    let zip = host_lambda_zip(&paths.api, &paths.workspace.join("infra/seed"), &work.0)?;
    let zip = zip.to_str().context("a temp path that is not UTF-8")?;
    let app_yaml = host_declaration(&paths.workspace, &work.0)?;
    let config = app_yaml.to_str().context("a temp path that is not UTF-8")?;
    let stack = unique("stack");
    let common = ["--config", config, "--stack-name", &stack];
    let (_, first) = deployer(
        &paths.deployer,
        &paths.workspace,
        &[&common[..], &["bootstrap", "--artifact", zip, "--yes"]].concat(),
    )?;
    let mut no_ops = Vec::new();
    for _ in 0..options.deploys {
        let (stdout, elapsed) = deployer(
            &paths.deployer,
            &paths.workspace,
            &[&common[..], &["deploy", "--artifact", zip, "--yes"]].concat(),
        )?;
        if !stdout.contains("No changes") {
            bail!("a second deploy was not a no-op: {stdout}");
        }
        no_ops.push(elapsed);
    }
    let runs = no_ops
        .iter()
        .map(|run| format!("{:.2}", run.as_secs_f64()))
        .collect::<Vec<_>>();
    Ok(vec![
        Row::new(
            section,
            "first deploy: deployer bootstrap --artifact (bucket, stack, seed)",
            first.as_secs_f64(),
            "s",
        )
        .note("host release api zipped as bootstrap; DEPLOYER_POLL_INTERVAL_MS=100"),
        Row::new(
            section,
            "no-op deployer deploy --yes --artifact",
            median(&no_ops.iter().map(Duration::as_secs_f64).collect::<Vec<_>>())
                .unwrap_or_default(),
            "s",
        )
        .note(format!(
            "median of {} runs ({} s), each answering 'No changes'; DEPLOYER_POLL_INTERVAL_MS=100",
            options.deploys,
            runs.join(", ")
        )),
    ])
}
