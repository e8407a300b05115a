//! What is inside a Lambda zip: the checks Lambda would otherwise make at
//! the first invocation, and one canonical byte form for the same files.
//!
//! The checks exist so a deploy refuses, before anything is uploaded or a
//! stack update is spent, a zip whose every request would fail: no
//! `bootstrap` at the root, one without its execute bit, or one that is not
//! a Linux executable for the function's CPU. AWS would not catch the last:
//! CloudFormation reports `UPDATE_COMPLETE` for an arm64 function given an
//! x86_64 binary, and every invocation then fails with `Runtime.InvalidEntrypoint`
//! ("exec format error").
//!
//! The canonical form exists because cargo-lambda writes each file's
//! modification time into the zip: the same source built twice (every push
//! in CodeBuild) would give new bytes, a new SHA-256, a new S3 object and a
//! Lambda update with its cold starts. Rewritten with fixed times, modes and
//! order, the same files always give the same bytes.

use std::io::{Cursor, Read as _, Write as _};

use thiserror::Error;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::settings::Arch;

/// The executable a custom runtime (`provided.al2023`) starts: it must sit at
/// the root of the zip.
pub const BOOTSTRAP: &str = "bootstrap";

/// Why bytes are not a usable Lambda zip.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ZipProblem {
    #[error("it is not a readable zip archive ({0})")]
    NotAZip(String),
    #[error("its entry `{name}` cannot be read ({reason})")]
    Unreadable { name: String, reason: String },
    #[error(
        "it has no `bootstrap` at its root (found `{0}`: zip the binary without its directory)"
    )]
    BootstrapNotAtRoot(String),
    #[error(
        "it has no `bootstrap` at its root: a custom-runtime Lambda starts the executable \
         named `bootstrap` (`cargo lambda build --output-format zip` makes one)"
    )]
    NoBootstrap,
    #[error(
        "its `bootstrap` is not executable (mode {0:o}); Lambda would fail with \
         `permission denied`: store it with mode 755"
    )]
    BootstrapNotExecutable(u32),
    #[error(
        "its `bootstrap` is {found}, not a Linux (ELF) executable: the `provided.al2023` runtime \
         execs it on Linux; build it with `cargo lambda build` (or `make lambda`)"
    )]
    BootstrapNotElf { found: String },
    #[error(
        "its `bootstrap` is built for {found}, but the function runs on {expected} \
         (`stack.arch`): every request would fail with `exec format error`. Build for \
         {expected} (`make lambda LAMBDA_ARCH={expected}`, or let `deployer deploy` build it)"
    )]
    WrongArchitecture { expected: Arch, found: String },
}

/// One file or directory listed in the zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path inside the archive, `/`-separated.
    pub name: String,
    /// The Unix mode, when the archive was made on Unix and recorded one.
    pub unix_mode: Option<u32>,
}

fn archive(bytes: &[u8]) -> Result<ZipArchive<Cursor<&[u8]>>, ZipProblem> {
    ZipArchive::new(Cursor::new(bytes)).map_err(|error| ZipProblem::NotAZip(error.to_string()))
}

fn unreadable(name: &str, error: impl std::fmt::Display) -> ZipProblem {
    ZipProblem::Unreadable {
        name: name.to_owned(),
        reason: error.to_string(),
    }
}

/// Every entry of the zip, in archive order.
pub fn entries(bytes: &[u8]) -> Result<Vec<Entry>, ZipProblem> {
    let mut zip = archive(bytes)?;
    let mut entries = Vec::with_capacity(zip.len());
    for index in 0..zip.len() {
        let file = zip
            .by_index_raw(index)
            .map_err(|error| unreadable(&format!("#{index}"), error))?;
        entries.push(Entry {
            name: file.name().to_owned(),
            unix_mode: file.unix_mode().filter(|mode| *mode != 0),
        });
    }
    Ok(entries)
}

/// Checks `bytes` is a zip a custom-runtime Lambda on `arch` can start.
pub fn check_lambda_zip(bytes: &[u8], arch: Arch) -> Result<(), ZipProblem> {
    let listed = entries(bytes)?;
    let Some(bootstrap) = listed.iter().find(|entry| entry.name == BOOTSTRAP) else {
        return Err(
            match listed
                .iter()
                .find(|entry| entry.name.ends_with("/bootstrap"))
            {
                Some(nested) => ZipProblem::BootstrapNotAtRoot(nested.name.clone()),
                None => ZipProblem::NoBootstrap,
            },
        );
    };
    // Only the owner's bit matters to Lambda, but any execute bit shows the
    // file was meant to run; none at all never works.
    if let Some(mode) = bootstrap.unix_mode
        && mode & 0o111 == 0
    {
        return Err(ZipProblem::BootstrapNotExecutable(mode & 0o7777));
    }
    let mut header = Vec::with_capacity(ELF_HEADER_PREFIX);
    archive(bytes)?
        .by_name(BOOTSTRAP)
        .map_err(|error| unreadable(BOOTSTRAP, error))?
        .take(ELF_HEADER_PREFIX as u64)
        .read_to_end(&mut header)
        .map_err(|error| unreadable(BOOTSTRAP, error))?;
    match executable_kind(&header) {
        Executable::Linux(found) if found == arch => Ok(()),
        Executable::Linux(found) => Err(ZipProblem::WrongArchitecture {
            expected: arch,
            found: found.to_string(),
        }),
        Executable::Other(found) => Err(ZipProblem::WrongArchitecture {
            expected: arch,
            found,
        }),
        Executable::NotElf(found) => Err(ZipProblem::BootstrapNotElf {
            found: found.to_owned(),
        }),
    }
}

/// The bytes of the ELF header read: identification (16), type (2), machine (2).
const ELF_HEADER_PREFIX: usize = 20;

/// What the first bytes of `bootstrap` say it is.
#[derive(Debug, PartialEq, Eq)]
enum Executable {
    /// A 64-bit little-endian ELF executable for a CPU Lambda offers.
    Linux(Arch),
    /// An ELF file Lambda cannot run: another CPU, 32-bit, or not an executable.
    Other(String),
    /// Not ELF at all, and what it looks like instead.
    NotElf(&'static str),
}

/// Reads the ELF identification and header fields (System V ABI, "ELF
/// Header": `e_ident` with class and data encoding, `e_type`, `e_machine`;
/// machine numbers EM_X86_64 = 62 and EM_AARCH64 = 183).
fn executable_kind(header: &[u8]) -> Executable {
    const EM_386: u16 = 3;
    const EM_ARM: u16 = 40;
    const EM_X86_64: u16 = 62;
    const EM_AARCH64: u16 = 183;
    const EM_RISCV: u16 = 243;
    if !header.starts_with(b"\x7fELF") {
        return Executable::NotElf(if header.starts_with(b"#!") {
            "a script (`#!`)"
        } else if header.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
            || header.starts_with(&[0xca, 0xfe, 0xba, 0xbe])
        {
            "a macOS (Mach-O) executable"
        } else if header.starts_with(b"MZ") {
            "a Windows executable"
        } else {
            "not an executable"
        });
    }
    if header.len() < ELF_HEADER_PREFIX {
        return Executable::Other("a truncated ELF file".to_owned());
    }
    let (class, little_endian) = (header[4], header[5] == 1);
    let read_u16 = |at: usize| {
        let pair = [header[at], header[at + 1]];
        if little_endian {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    };
    let (kind, machine) = (read_u16(16), read_u16(18));
    let cpu = match machine {
        EM_X86_64 => "x86_64",
        EM_AARCH64 => "arm64",
        EM_386 => "x86",
        EM_ARM => "ARM",
        EM_RISCV => "RISC-V",
        _ => "an unknown CPU",
    };
    // ET_EXEC (2) or ET_DYN (3, a position-independent executable).
    if !matches!(kind, 2 | 3) {
        return Executable::Other(format!("an ELF file that is not an executable ({cpu})"));
    }
    match (class, little_endian, machine) {
        (2, true, EM_X86_64) => Executable::Linux(Arch::X86_64),
        (2, true, EM_AARCH64) => Executable::Linux(Arch::Arm64),
        (1, _, _) => Executable::Other(format!("32-bit {cpu}")),
        _ => Executable::Other(cpu.to_owned()),
    }
}

/// The same files in one canonical zip: entries sorted by name, each
/// deflated, dated 1980-01-01 (the format's epoch), mode 755 if it was
/// executable and 644 otherwise, and no comment. Equal contents give equal
/// bytes, whatever tool zipped them, when, and from which checkout.
pub fn canonical_zip(bytes: &[u8]) -> Result<Vec<u8>, ZipProblem> {
    let mut zip = archive(bytes)?;
    let mut files: Vec<(String, bool, Option<Vec<u8>>)> = Vec::with_capacity(zip.len());
    for index in 0..zip.len() {
        let mut file = zip
            .by_index(index)
            .map_err(|error| unreadable(&format!("#{index}"), error))?;
        let name = file.name().to_owned();
        let executable = file.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        if file.is_dir() {
            files.push((name, true, None));
            continue;
        }
        let mut content = Vec::with_capacity(usize::try_from(file.size()).unwrap_or(0));
        file.read_to_end(&mut content)
            .map_err(|error| unreadable(&name, error))?;
        files.push((name, executable, Some(content)));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));

    let mut writer = ZipWriter::new(Cursor::new(Vec::with_capacity(bytes.len())));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default());
    for (name, executable, content) in files {
        let write_error = |error: &dyn std::fmt::Display| unreadable(&name, error);
        match content {
            None => writer
                .add_directory(name.as_str(), options.unix_permissions(0o755))
                .map_err(|error| write_error(&error))?,
            Some(content) => {
                let mode = if executable { 0o755 } else { 0o644 };
                writer
                    .start_file(name.as_str(), options.unix_permissions(mode))
                    .map_err(|error| write_error(&error))?;
                writer
                    .write_all(&content)
                    .map_err(|error| write_error(&error))?;
            }
        }
    }
    let written = writer
        .finish()
        .map_err(|error| unreadable("(end of archive)", error))?;
    Ok(written.into_inner())
}

#[cfg(test)]
pub(crate) mod tests {
    use zip::write::SimpleFileOptions;

    use super::*;

    /// The first bytes of a 64-bit little-endian ELF executable for `machine`
    /// (62 x86_64, 183 arm64), padded to a plausible header.
    pub(crate) fn elf_header(machine: u16) -> Vec<u8> {
        let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        header.resize(16, 0);
        header.extend_from_slice(&3u16.to_le_bytes()); // ET_DYN
        header.extend_from_slice(&machine.to_le_bytes());
        header.resize(64, 0);
        header
    }

    /// The host's own architecture, as the tests' Lambda binaries have it.
    pub(crate) fn elf_for(arch: Arch) -> Vec<u8> {
        elf_header(match arch {
            Arch::X86_64 => 62,
            Arch::Arm64 => 183,
        })
    }

    /// A zip holding `files` (name, Unix mode); `bootstrap` holds an arm64
    /// ELF header, every other file its own name.
    pub(crate) fn zip_of(files: &[(&str, u32)], comment: &str) -> Vec<u8> {
        zip_with(
            files
                .iter()
                .map(|(name, mode)| {
                    let content = if name.ends_with("bootstrap") {
                        elf_for(Arch::Arm64)
                    } else {
                        name.as_bytes().to_vec()
                    };
                    (*name, *mode, content)
                })
                .collect(),
            comment,
            DateTime::default(),
        )
    }

    fn zip_with(files: Vec<(&str, u32, Vec<u8>)>, comment: &str, time: DateTime) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, mode, content) in files {
            let options = SimpleFileOptions::default()
                .unix_permissions(mode)
                .last_modified_time(time);
            if name.ends_with('/') {
                writer.add_directory(name, options).unwrap();
            } else {
                writer.start_file(name, options).unwrap();
                writer.write_all(&content).unwrap();
            }
        }
        writer.set_comment(comment);
        writer.finish().unwrap().into_inner()
    }

    /// Each entry's name and permission bits.
    fn names_and_modes(bytes: &[u8]) -> Vec<(String, Option<u32>)> {
        entries(bytes)
            .unwrap()
            .into_iter()
            .map(|entry| (entry.name, entry.unix_mode.map(|mode| mode & 0o777)))
            .collect()
    }

    #[test]
    fn lists_names_and_modes() {
        let bytes = zip_of(
            &[
                ("bootstrap", 0o755),
                ("infra/", 0o755),
                ("infra/seed/users.json", 0o644),
            ],
            "",
        );
        assert_eq!(
            names_and_modes(&bytes),
            [
                ("bootstrap".to_owned(), Some(0o755)),
                ("infra/".to_owned(), Some(0o755)),
                ("infra/seed/users.json".to_owned(), Some(0o644)),
            ]
        );
    }

    #[test]
    fn judges_lambda_zips() {
        let check = |bytes: &[u8], expected: Result<(), ZipProblem>| {
            assert_eq!(check_lambda_zip(bytes, Arch::Arm64), expected);
        };
        check(&zip_of(&[("bootstrap", 0o755)], ""), Ok(()));
        // A comment after the end record must not hide it.
        check(&zip_of(&[("bootstrap", 0o755)], &"c".repeat(1000)), Ok(()));
        check(
            &zip_of(
                &[("bootstrap", 0o755), ("infra/seed/mocks.json", 0o644)],
                "",
            ),
            Ok(()),
        );
        check(
            &zip_of(&[("bootstrap", 0o644)], ""),
            Err(ZipProblem::BootstrapNotExecutable(0o644)),
        );
        check(
            &zip_of(&[("target/bootstrap", 0o755)], ""),
            Err(ZipProblem::BootstrapNotAtRoot(
                "target/bootstrap".to_owned(),
            )),
        );
        check(
            &zip_of(&[("main", 0o755)], ""),
            Err(ZipProblem::NoBootstrap),
        );
        check(&zip_of(&[], ""), Err(ZipProblem::NoBootstrap));
        assert!(matches!(
            check_lambda_zip(b"", Arch::Arm64),
            Err(ZipProblem::NotAZip(_))
        ));
        assert!(matches!(
            check_lambda_zip(b"#!/bin/sh\necho not a zip\n", Arch::Arm64),
            Err(ZipProblem::NotAZip(_))
        ));
    }

    /// The defect this check exists for: an arm64 stack given an x86_64
    /// binary (or the reverse) deploys "successfully" on AWS and then fails
    /// every request.
    #[test]
    fn a_bootstrap_for_another_cpu_is_refused_naming_both() {
        let zip = |content: Vec<u8>| {
            zip_with(vec![("bootstrap", 0o755, content)], "", DateTime::default())
        };
        assert_eq!(
            check_lambda_zip(&zip(elf_for(Arch::X86_64)), Arch::X86_64),
            Ok(())
        );
        assert_eq!(
            check_lambda_zip(&zip(elf_for(Arch::Arm64)), Arch::Arm64),
            Ok(())
        );
        let error = check_lambda_zip(&zip(elf_for(Arch::Arm64)), Arch::X86_64).unwrap_err();
        assert_eq!(
            error,
            ZipProblem::WrongArchitecture {
                expected: Arch::X86_64,
                found: "arm64".to_owned()
            }
        );
        let message = error.to_string();
        assert!(
            message
                .starts_with("its `bootstrap` is built for arm64, but the function runs on x86_64"),
            "{message}"
        );
        assert!(
            message.contains("make lambda LAMBDA_ARCH=x86_64"),
            "{message}"
        );
        let error = check_lambda_zip(&zip(elf_for(Arch::X86_64)), Arch::Arm64).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("built for x86_64, but the function runs on arm64")
        );

        // 32-bit, other CPUs, objects that are not executables.
        let mut i386 = elf_header(3);
        i386[4] = 1;
        let found = |content: Vec<u8>| match check_lambda_zip(&zip(content), Arch::Arm64) {
            Err(ZipProblem::WrongArchitecture { found, .. }) => found,
            other => panic!("{other:?}"),
        };
        assert_eq!(found(i386), "32-bit x86");
        assert_eq!(found(elf_header(243)), "RISC-V");
        let mut object = elf_for(Arch::Arm64);
        object[16] = 1; // ET_REL
        assert_eq!(
            found(object),
            "an ELF file that is not an executable (arm64)"
        );
    }

    #[test]
    fn a_bootstrap_that_is_not_elf_says_what_it_is() {
        let not_elf = |content: &[u8]| {
            let bytes = zip_with(
                vec![("bootstrap", 0o755, content.to_vec())],
                "",
                DateTime::default(),
            );
            match check_lambda_zip(&bytes, Arch::Arm64) {
                Err(ZipProblem::BootstrapNotElf { found }) => found,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(not_elf(b"#!/bin/sh\nexec ./api\n"), "a script (`#!`)");
        assert_eq!(
            not_elf(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]),
            "a macOS (Mach-O) executable"
        );
        assert_eq!(not_elf(b"MZ\x90\x00"), "a Windows executable");
        assert_eq!(not_elf(b""), "not an executable");
    }

    #[test]
    fn a_truncated_zip_is_refused_not_a_panic() {
        let bytes = zip_of(&[("bootstrap", 0o755)], "");
        for len in 0..bytes.len() {
            // Any prefix is refused cleanly.
            assert!(check_lambda_zip(&bytes[..len], Arch::Arm64).is_err());
        }
    }

    /// Same files, other times, order and modes: the same bytes. Another
    /// content: other bytes.
    #[test]
    fn the_canonical_zip_depends_on_the_contents_only() {
        let files = |order_reversed: bool, executable_mode: u32| {
            let mut files = vec![
                ("bootstrap", executable_mode, elf_for(Arch::Arm64)),
                ("infra/", 0o700, Vec::new()),
                ("infra/seed/users.json", 0o600, b"[]".to_vec()),
            ];
            if order_reversed {
                files.reverse();
            }
            files
        };
        let at = |year: u16| DateTime::from_date_and_time(year, 6, 1, 12, 30, 0).unwrap();
        let first = zip_with(files(false, 0o755), "built by cargo-lambda", at(2025));
        let second = zip_with(files(true, 0o775), "", at(2026));
        assert_ne!(first, second);
        let canonical = canonical_zip(&first).unwrap();
        assert_eq!(canonical, canonical_zip(&second).unwrap());
        // Idempotent, and still a good Lambda zip with the same files.
        assert_eq!(canonical_zip(&canonical).unwrap(), canonical);
        assert_eq!(check_lambda_zip(&canonical, Arch::Arm64), Ok(()));
        assert_eq!(
            names_and_modes(&canonical),
            [
                ("bootstrap".to_owned(), Some(0o755)),
                ("infra/".to_owned(), Some(0o755)),
                ("infra/seed/users.json".to_owned(), Some(0o644)),
            ]
        );

        let mut changed = files(false, 0o755);
        changed[2].2 = b"[{}]".to_vec();
        let other = zip_with(changed, "", at(2025));
        assert_ne!(canonical_zip(&other).unwrap(), canonical);
    }
}
