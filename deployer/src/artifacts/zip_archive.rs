//! Just enough of the zip format to check a Lambda package: the file names
//! and Unix modes of the central directory. Nothing is decompressed.
//!
//! It exists so `deploy --artifact PATH` can refuse a zip Lambda would refuse
//! at its first invocation (no `bootstrap` at the root, or one without its
//! execute bit), before a stack update is spent on it, without taking a zip
//! library as a run-time dependency for a directory listing.

use thiserror::Error;

/// The executable a custom runtime (`provided.al2023`) starts: it must sit at
/// the root of the zip.
pub const BOOTSTRAP: &str = "bootstrap";

/// Why bytes are not a usable Lambda zip.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ZipProblem {
    #[error("it is not a zip archive (no end-of-central-directory record)")]
    NotAZip,
    #[error("the zip is truncated or corrupt ({0})")]
    Corrupt(&'static str),
    #[error(
        "it is a ZIP64 archive, which this check does not read; a Lambda zip is far below \
         the 4 GiB and 65,535 files that need ZIP64"
    )]
    Zip64,
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
}

/// One file or directory listed in the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path inside the archive, `/`-separated.
    pub name: String,
    /// The Unix mode, when the archive was made on Unix and recorded one.
    pub unix_mode: Option<u32>,
}

const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
const CENTRAL_DIRECTORY_HEADER: u32 = 0x0201_4b50;
const END_RECORD_LEN: usize = 22;
const CENTRAL_HEADER_LEN: usize = 46;
/// The end record is followed by a comment of at most this many bytes.
const MAX_COMMENT_LEN: usize = u16::MAX as usize;
/// "Version made by" host system 3: the external attributes hold a Unix mode.
const HOST_UNIX: u8 = 3;

/// Checks `bytes` is a zip a custom-runtime Lambda can start.
pub fn check_lambda_zip(bytes: &[u8]) -> Result<(), ZipProblem> {
    let entries = entries(bytes)?;
    match entries.iter().find(|entry| entry.name == BOOTSTRAP) {
        Some(entry) => match entry.unix_mode {
            // Only the owner's bit matters to Lambda, but any execute bit
            // shows the file was meant to run; none at all never works.
            Some(mode) if mode & 0o111 == 0 => {
                Err(ZipProblem::BootstrapNotExecutable(mode & 0o7777))
            }
            _ => Ok(()),
        },
        None => match entries
            .iter()
            .find(|entry| entry.name.ends_with("/bootstrap"))
        {
            Some(nested) => Err(ZipProblem::BootstrapNotAtRoot(nested.name.clone())),
            None => Err(ZipProblem::NoBootstrap),
        },
    }
}

/// Every entry of the central directory, in archive order.
pub fn entries(bytes: &[u8]) -> Result<Vec<Entry>, ZipProblem> {
    let end = find_end_record(bytes)?;
    let total_entries = read_u16(bytes, end + 10)?;
    let directory_len = read_u32(bytes, end + 12)?;
    let directory_offset = read_u32(bytes, end + 16)?;
    if total_entries == u16::MAX || directory_len == u32::MAX || directory_offset == u32::MAX {
        return Err(ZipProblem::Zip64);
    }
    let mut entries = Vec::with_capacity(usize::from(total_entries));
    let mut at = usize::try_from(directory_offset)
        .map_err(|_| ZipProblem::Corrupt("central directory offset out of range"))?;
    for _ in 0..total_entries {
        if read_u32(bytes, at)? != CENTRAL_DIRECTORY_HEADER {
            return Err(ZipProblem::Corrupt("bad central directory header"));
        }
        let host_system = *bytes
            .get(at + 5)
            .ok_or(ZipProblem::Corrupt("central directory header cut short"))?;
        let name_len = usize::from(read_u16(bytes, at + 28)?);
        let extra_len = usize::from(read_u16(bytes, at + 30)?);
        let comment_len = usize::from(read_u16(bytes, at + 32)?);
        let external_attributes = read_u32(bytes, at + 38)?;
        let name_start = at + CENTRAL_HEADER_LEN;
        let name = bytes
            .get(name_start..name_start + name_len)
            .ok_or(ZipProblem::Corrupt("file name cut short"))?;
        let mode = external_attributes >> 16;
        entries.push(Entry {
            // Names are UTF-8 or CP437; both spell ASCII names the same,
            // and `bootstrap` is ASCII.
            name: String::from_utf8_lossy(name).into_owned(),
            unix_mode: (host_system == HOST_UNIX && mode != 0).then_some(mode),
        });
        at = name_start + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

/// Where the end-of-central-directory record starts: searched from the end,
/// since a comment of up to 64 KiB may follow it.
fn find_end_record(bytes: &[u8]) -> Result<usize, ZipProblem> {
    let last_start = bytes
        .len()
        .checked_sub(END_RECORD_LEN)
        .ok_or(ZipProblem::NotAZip)?;
    let first_start = last_start.saturating_sub(MAX_COMMENT_LEN);
    (first_start..=last_start)
        .rev()
        .find(|&at| read_u32(bytes, at) == Ok(END_OF_CENTRAL_DIRECTORY))
        .ok_or(ZipProblem::NotAZip)
}

fn read_u16(bytes: &[u8], at: usize) -> Result<u16, ZipProblem> {
    bytes
        .get(at..at + 2)
        .and_then(|slice| <[u8; 2]>::try_from(slice).ok())
        .map(u16::from_le_bytes)
        .ok_or(ZipProblem::Corrupt("record cut short"))
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, ZipProblem> {
    bytes
        .get(at..at + 4)
        .and_then(|slice| <[u8; 4]>::try_from(slice).ok())
        .map(u32::from_le_bytes)
        .ok_or(ZipProblem::Corrupt("record cut short"))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    /// A zip holding `files` (name, Unix mode), each with a little content.
    pub(crate) fn zip_of(files: &[(&str, u32)], comment: &str) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, mode) in files {
            let options = SimpleFileOptions::default().unix_permissions(*mode);
            if name.ends_with('/') {
                writer.add_directory(*name, options).unwrap();
            } else {
                writer.start_file(*name, options).unwrap();
                writer.write_all(name.as_bytes()).unwrap();
            }
        }
        writer.set_comment(comment);
        writer.finish().unwrap().into_inner()
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
        let listed: Vec<(String, Option<u32>)> = entries(&bytes)
            .unwrap()
            .into_iter()
            .map(|entry| (entry.name, entry.unix_mode.map(|mode| mode & 0o777)))
            .collect();
        assert_eq!(
            listed,
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
            assert_eq!(check_lambda_zip(bytes), expected);
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
        check(b"", Err(ZipProblem::NotAZip));
        check(b"#!/bin/sh\necho not a zip\n", Err(ZipProblem::NotAZip));
    }

    #[test]
    fn a_truncated_zip_is_corrupt_not_a_panic() {
        let bytes = zip_of(&[("bootstrap", 0o755)], "");
        let end = find_end_record(&bytes).unwrap();
        // Keep the end record but cut the central directory it points to.
        let mut cut = bytes[..40].to_vec();
        cut.extend_from_slice(&bytes[end..]);
        assert!(matches!(
            check_lambda_zip(&cut),
            Err(ZipProblem::Corrupt(_) | ZipProblem::NotAZip)
        ));
        for len in 0..bytes.len() {
            // Any prefix is refused cleanly.
            assert!(check_lambda_zip(&bytes[..len]).is_err());
        }
    }
}
