//! `make bench`'s runner: builds nothing, starts the release binaries it is
//! given, runs each section (its own module, `run`), prints one Markdown table
//! and writes it as JSON under `bench-results/`. It never fails on a figure:
//! what cannot be measured becomes a row saying why. Sections, in order:
//!
//! 1. `cold`: spawn → first answered request, api and the `hello` floor;
//! 2. `lambda`: Lambda-mode init against a Runtime API stub;
//! 3. `load`: wrk on get-by-id and list, next to the floor; peak RSS;
//! 4. `instructions`: a request's instructions under callgrind, api and floor;
//! 5. `package`: the Lambda zip and the release profile;
//! 6. `seed`: `deployer seed` and the AWS CLI on the emulator;
//! 7. `deploy`: a no-op `deployer deploy` on the emulator;
//! 8. `index`: a filtered list's first page by Scan and from a secondary
//!    index, on tables of growing size, on the emulator.
//!
//! Sections 6 to 8 need `AWS_ENDPOINT_URL` on loopback (`tools/with-emulator`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bench::report::{Row, markdown};
use bench::setup::{Options, Paths, Section};
use bench::{cold_start, deploy, index, instructions, lambda_init, load, package, seeding};
use clap::Parser;
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let paths = Paths::new(&options)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut rows = Vec::new();
    for section in &options.sections {
        eprintln!(
            "bench: {section:?} ({:.0} s so far)",
            started.elapsed().as_secs_f64()
        );
        let result = match section {
            Section::Cold => cold_start::run(&paths, &options),
            Section::Lambda => runtime.block_on(lambda_init::run(&paths, &options)),
            Section::Load => load::run(&paths, &options),
            Section::Instructions => instructions::run(&paths, &options),
            Section::Package => package::run(&paths),
            Section::Seed => seeding::run(&runtime, &paths, &options),
            Section::Deploy => deploy::run(&paths, &options),
            Section::Index => index::run(&runtime, &options),
        };
        match result {
            Ok(section_rows) => rows.extend(section_rows),
            Err(error) => {
                eprintln!("bench: {section:?} not measured: {error:#}");
                rows.push(Row::skipped(
                    &format!("{section:?}").to_lowercase(),
                    "(whole section)",
                    format!("{error:#}"),
                ));
            }
        }
    }
    let table = markdown(&rows);
    println!("{table}");
    let written = write_json(&paths, &options, &rows)?;
    eprintln!(
        "bench: done in {:.0} s; {} and {}",
        started.elapsed().as_secs_f64(),
        written.display(),
        paths.out.join("latest.json").display()
    );
    Ok(())
}

fn write_json(paths: &Paths, options: &Options, rows: &[Row]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&paths.out)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let document = json!({
        "generated_unix": now,
        "machine": machine(),
        "git": git_describe(&paths.workspace),
        "options": options,
        "rows": rows,
    });
    let text = serde_json::to_string_pretty(&document)?;
    let path = paths.out.join(format!("bench-{now}.json"));
    std::fs::write(&path, &text)?;
    std::fs::write(paths.out.join("latest.json"), &text)?;
    Ok(path)
}

/// CPUs, CPU model and kernel: figures mean little without them.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|line| {
        line.strip_prefix("model name")?
            .split_once(':')
            .map(|(_, model)| model.trim().to_owned())
    });
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, usize::from),
        "cpu_model": model,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|text| text.trim().to_owned()).ok(),
    })
}

/// `git describe --always --dirty`, when git is there.
fn git_describe(workspace: &Path) -> Option<String> {
    let output = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(workspace)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
