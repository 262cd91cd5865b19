//! Reading uploaded .zip and .tar.gz archives into a project tree, and writing a project as a
//! .zip. Nothing in an archive is trusted: names go through [`crate::paths::normalize`], sizes are
//! counted while reading (a header can lie), links and special files are refused, and the total
//! unpacked size is bounded absolutely and relative to the archive's size. Folders count toward
//! the entry limit as files do. In a .tar.gz every byte the decompressor gives out counts toward
//! the size limits, whatever becomes of it (stored, skipped, a header or padding): the tar reader
//! inflates the data of an entry it skips as it passes over it.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read, Write};
use std::rc::Rc;

use db::FileBody;
use db::queries::files::ancestors;

use crate::Error;
use crate::paths;
use crate::projects::ProjectLimits;

/// What an archive holds once checked: folders and files by normalised path.
#[derive(Debug, Default)]
pub struct ImportedTree {
    pub folders: Vec<String>,
    pub files: Vec<(String, FileBody)>,
}

/// Most refused entries named in one message.
const NAMED_PROBLEMS: usize = 10;

/// Collects what is wrong with an archive, then says it all at once.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, entry: &str, reason: &str) {
        self.0
            .push(format!("\"{}\": {reason}", entry.escape_debug()));
    }

    fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let count = self.0.len();
        let mut message = format!(
            "The archive was not imported: {count} entr{} refused. ",
            if count == 1 { "y is" } else { "ies are" }
        );
        message.push_str(&self.0[..count.min(NAMED_PROBLEMS)].join("; "));
        if count > NAMED_PROBLEMS {
            message.push_str(&format!("; and {} more", count - NAMED_PROBLEMS));
        }
        message.push('.');
        Err(Error::Invalid(message))
    }
}

/// Adds up what was unpacked and stops as soon as a limit is passed.
struct Budget<'a> {
    limits: &'a ProjectLimits,
    archive_bytes: u64,
    unpacked: u64,
    files: usize,
}

impl Budget<'_> {
    fn ceiling(&self) -> u64 {
        self.limits.max_project_bytes.min(
            self.archive_bytes
                .saturating_mul(self.limits.max_expansion_ratio)
                .max(64 * 1024),
        )
    }

    /// Counts one entry of the archive (a file, a folder or anything else it holds) toward the
    /// entry limit.
    fn count_entry(&mut self) -> Result<(), Error> {
        self.files += 1;
        if self.files > self.limits.max_files {
            return Err(Error::Invalid(format!(
                "The archive was not imported: it holds more than {} files and folders, the most an import may bring (folders count as files).",
                self.limits.max_files
            )));
        }
        Ok(())
    }

    /// The error when the archive unpacks to more than [`Self::ceiling`].
    fn too_large(&self) -> Error {
        Error::Invalid(format!(
            "The archive was not imported: it unpacks to more than {} bytes (the limit is {} bytes in all and {} times the archive's size; in a .tar.gz everything it unpacks to counts, entries that are not imported and the format's own headers included).",
            self.ceiling(),
            self.limits.max_project_bytes,
            self.limits.max_expansion_ratio
        ))
    }

    /// Reads one entry, never more than the per-file limit or what is left of the total.
    fn read(&mut self, name: &str, reader: &mut impl Read) -> Result<Vec<u8>, Error> {
        let left = self.ceiling().saturating_sub(self.unpacked);
        let allowed = self.limits.max_file_bytes.min(left);
        let mut bytes = Vec::new();
        reader
            .take(allowed + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| {
                Error::Invalid(format!(
                    "The archive was not imported: \"{}\" cannot be read ({error}).",
                    name.escape_debug()
                ))
            })?;
        let size = bytes.len() as u64;
        if size > allowed {
            if size > self.limits.max_file_bytes {
                return Err(Error::Invalid(format!(
                    "The archive was not imported: \"{}\" is larger than the {} bytes a file may have.",
                    name.escape_debug(),
                    self.limits.max_file_bytes
                )));
            }
            return Err(self.too_large());
        }
        self.unpacked += size;
        Ok(bytes)
    }
}

/// The decompressed side of a .tar.gz: counts every byte the decompressor gives out, whatever
/// the tar reader then does with it, and fails once more than `limit` came out. It never asks
/// the decompressor for more than one byte past the limit.
struct CountingReader<R> {
    inner: R,
    inflated: Rc<Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let so_far = self.inflated.get();
        let room = self.limit.saturating_sub(so_far).saturating_add(1);
        let length = buffer
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        let count = self.inner.read(&mut buffer[..length])?;
        let total = so_far.saturating_add(count as u64);
        self.inflated.set(total);
        if total > self.limit {
            return Err(std::io::Error::other(
                "the archive unpacks to more than its limit",
            ));
        }
        Ok(count)
    }
}

/// Text is valid UTF-8 without NUL bytes; anything else is kept as bytes.
pub fn body_of(bytes: Vec<u8>) -> FileBody {
    if bytes.contains(&0) {
        return FileBody::Binary(bytes);
    }
    match String::from_utf8(bytes) {
        Ok(text) => FileBody::Text(text),
        Err(error) => FileBody::Binary(error.into_bytes()),
    }
}

/// Reads a .zip or a .tar.gz (recognised by their first bytes, not by a file name).
pub fn read(archive: &[u8], limits: &ProjectLimits) -> Result<ImportedTree, Error> {
    if archive.len() as u64 > limits.max_archive_bytes {
        return Err(Error::Invalid(format!(
            "The archive is larger than the {} bytes an upload may have.",
            limits.max_archive_bytes
        )));
    }
    let mut budget = Budget {
        limits,
        archive_bytes: archive.len() as u64,
        unpacked: 0,
        files: 0,
    };
    let mut problems = Problems::default();
    let mut folders = BTreeSet::new();
    let mut files = BTreeMap::new();
    if archive.starts_with(b"PK\x03\x04") || archive.starts_with(b"PK\x05\x06") {
        read_zip(
            archive,
            &mut budget,
            &mut problems,
            &mut folders,
            &mut files,
        )?;
    } else if archive.starts_with(&[0x1f, 0x8b]) {
        read_tar_gz(
            archive,
            &mut budget,
            &mut problems,
            &mut folders,
            &mut files,
        )?;
    } else {
        return Err(Error::Invalid(
            "This is not a .zip or .tar.gz archive.".into(),
        ));
    }
    // A file cannot sit where a folder must be.
    for path in files.keys() {
        for ancestor in ancestors(path) {
            if files.contains_key(ancestor) {
                problems.add(
                    path,
                    &format!("\"{ancestor}\" is a file, so it cannot hold files"),
                );
            }
            folders.insert(ancestor.to_owned());
        }
        if folders.contains(path) {
            problems.add(path, "a folder has the same path");
        }
    }
    problems.into_result()?;
    Ok(ImportedTree {
        folders: folders.into_iter().collect(),
        files: files.into_iter().collect(),
    })
}

fn add_file(
    name: &str,
    bytes: Vec<u8>,
    problems: &mut Problems,
    files: &mut BTreeMap<String, FileBody>,
) {
    match paths::normalize(name) {
        Ok(path) => {
            if files.insert(path, body_of(bytes)).is_some() {
                problems.add(name, "the archive holds this path twice");
            }
        }
        Err(error) => problems.add(name, &reason_of(error)),
    }
}

fn add_folder(name: &str, problems: &mut Problems, folders: &mut BTreeSet<String>) {
    match paths::normalize(name) {
        Ok(path) => {
            folders.insert(path);
        }
        Err(error) => problems.add(name, &reason_of(error)),
    }
}

/// The reason part of a path error (the path itself is named by the caller).
fn reason_of(error: Error) -> String {
    let message = error.to_string();
    match message.split_once("\": ") {
        Some((_, reason)) => reason.to_owned(),
        None => message,
    }
}

fn read_zip(
    archive: &[u8],
    budget: &mut Budget<'_>,
    problems: &mut Problems,
    folders: &mut BTreeSet<String>,
    files: &mut BTreeMap<String, FileBody>,
) -> Result<(), Error> {
    let unreadable = |error: zip::result::ZipError| {
        Error::Invalid(format!("The .zip archive cannot be read: {error}."))
    };
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).map_err(unreadable)?;
    for index in 0..zip.len() {
        budget.count_entry()?;
        let mut entry = zip.by_index(index).map_err(unreadable)?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if entry.is_symlink() {
            problems.add(&name, "links are not imported");
            continue;
        }
        if entry.is_dir() {
            add_folder(&name, problems, folders);
            continue;
        }
        if let Some(mode) = entry.unix_mode() {
            let kind = mode & 0o170_000;
            if kind != 0 && kind != 0o100_000 {
                problems.add(&name, "only regular files and folders are imported");
                continue;
            }
        }
        if paths::normalize(&name).is_err() {
            // Checked (and reported) without unpacking it.
            add_file(&name, Vec::new(), problems, files);
            continue;
        }
        let bytes = budget.read(&name, &mut entry)?;
        add_file(&name, bytes, problems, files);
    }
    Ok(())
}

fn read_tar_gz(
    archive: &[u8],
    budget: &mut Budget<'_>,
    problems: &mut Problems,
    folders: &mut BTreeSet<String>,
    files: &mut BTreeMap<String, FileBody>,
) -> Result<(), Error> {
    let limit = budget.ceiling();
    let inflated = Rc::new(Cell::new(0));
    let decoder = CountingReader {
        inner: flate2::read::GzDecoder::new(archive),
        inflated: Rc::clone(&inflated),
        limit,
    };
    let mut tar = tar::Archive::new(decoder);
    let result = read_tar_entries(&mut tar, budget, problems, folders, files);
    // Passing the limit fails the read under way, whichever it was (an entry's data, one skipped,
    // a header); the limit is the reason then, whatever the tar reader made of the failure.
    if inflated.get() > limit {
        return Err(budget.too_large());
    }
    result
}

fn read_tar_entries(
    tar: &mut tar::Archive<impl Read>,
    budget: &mut Budget<'_>,
    problems: &mut Problems,
    folders: &mut BTreeSet<String>,
    files: &mut BTreeMap<String, FileBody>,
) -> Result<(), Error> {
    let unreadable = |error: std::io::Error| {
        Error::Invalid(format!("The .tar.gz archive cannot be read: {error}."))
    };
    for entry in tar.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        budget.count_entry()?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            problems.add(&name, "links are not imported");
            continue;
        }
        if kind.is_dir() {
            add_folder(&name, problems, folders);
            continue;
        }
        if kind.is_pax_global_extensions() {
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            problems.add(&name, "only regular files and folders are imported");
            continue;
        }
        if paths::normalize(&name).is_err() {
            add_file(&name, Vec::new(), problems, files);
            continue;
        }
        let bytes = budget.read(&name, &mut entry)?;
        add_file(&name, bytes, problems, files);
    }
    Ok(())
}

/// A .zip of the given folders and files (deflated), in path order.
pub fn write_zip(folders: &[String], files: &[(String, FileBody)]) -> Result<Vec<u8>, Error> {
    let failed =
        |error: zip::result::ZipError| Error::Internal(format!("writing a zip failed: {error}"));
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644)
        .large_file(false);
    for folder in folders {
        writer
            .add_directory(format!("{folder}/"), options.unix_permissions(0o755))
            .map_err(failed)?;
    }
    for (path, body) in files {
        writer.start_file(path.as_str(), options).map_err(failed)?;
        let bytes: &[u8] = match body {
            FileBody::Text(text) => text.as_bytes(),
            FileBody::Binary(bytes) => bytes,
        };
        writer
            .write_all(bytes)
            .map_err(|error| Error::Internal(format!("writing a zip failed: {error}")))?;
    }
    Ok(writer.finish().map_err(failed)?.into_inner())
}

/// A download name from a project name: letters, digits, `-`, `_` and `.` kept.
pub fn file_name_for(project_name: &str) -> String {
    let stem: String = project_name
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "-_.".contains(character) {
                character
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches(|character| character == '-' || character == '.');
    if stem.is_empty() {
        "project.zip".to_owned()
    } else {
        format!("{stem}.zip")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ProjectLimits {
        ProjectLimits {
            max_file_bytes: 1000,
            max_project_bytes: 10_000,
            max_files: 10,
            max_archive_bytes: 100_000,
            max_expansion_ratio: 100,
        }
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn a_zip_round_trips_byte_for_byte() {
        let binary: &[u8] = &[0, 159, 146, 150, 255, 0, 1];
        let archive = zip_of(&[
            ("src/main.rs", b"fn main() {}\r\n"),
            ("assets/logo.bin", binary),
            ("README.md", "héllo".as_bytes()),
        ]);
        let tree = read(&archive, &limits()).unwrap();
        assert_eq!(tree.folders, vec!["assets", "src"]);
        assert_eq!(tree.files.len(), 3);
        assert_eq!(tree.files[1].1, FileBody::Binary(binary.to_vec()));
        let exported = write_zip(&tree.folders, &tree.files).unwrap();
        let again = read(&exported, &limits()).unwrap();
        assert_eq!(again.files, tree.files);
        assert_eq!(again.folders, tree.folders);
    }

    #[test]
    fn bad_entries_are_named_and_nothing_is_kept() {
        let archive = zip_of(&[
            ("ok.txt", b"fine"),
            ("../escape.txt", b"x"),
            ("/etc/passwd", b"x"),
            ("a\0b", b"x"),
        ]);
        let message = read(&archive, &limits()).unwrap_err().to_string();
        assert!(message.contains("3 entries are refused"), "{message}");
        assert!(message.contains("\"../escape.txt\""), "{message}");
        assert!(message.contains("\"/etc/passwd\""), "{message}");
        assert!(message.contains("\"a\\0b\""), "{message}");
        assert!(!message.contains("ok.txt"), "{message}");
    }

    #[test]
    fn bombs_and_oversized_files_are_refused() {
        // 10 kB of zeros deflates to a few dozen bytes: far above 100 times its size.
        let zeros = vec![b'a'; 9000];
        let archive = zip_of(&[("a.txt", &zeros[..900]), ("b.txt", &zeros)]);
        let message = read(&archive, &limits()).unwrap_err().to_string();
        assert!(message.contains("larger than the 1000 bytes"), "{message}");
        let many: Vec<(String, Vec<u8>)> = (0..11)
            .map(|index| (format!("f{index}.txt"), b"x".to_vec()))
            .collect();
        let entries: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
            .collect();
        let message = read(&zip_of(&entries), &limits()).unwrap_err().to_string();
        assert!(message.contains("more than 10 files"), "{message}");
        let mut tight = limits();
        tight.max_expansion_ratio = 2;
        tight.max_file_bytes = 100_000;
        let big = vec![b'z'; 70_000];
        let message = read(&zip_of(&[("big.txt", &big)]), &tight)
            .unwrap_err()
            .to_string();
        assert!(message.contains("times the archive's size"), "{message}");
        assert!(read(b"not an archive", &limits()).is_err());
    }

    #[test]
    fn tar_gz_links_are_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "dir/file.txt", &b"text"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "dir/link", "/etc/passwd")
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&tar).unwrap();
        let archive = encoder.finish().unwrap();
        let message = read(&archive, &limits()).unwrap_err().to_string();
        assert!(
            message.contains("\"dir/link\": links are not imported"),
            "{message}"
        );
    }

    fn tar_gz_of(tar: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(tar).unwrap();
        encoder.finish().unwrap()
    }

    /// A .tar.gz of one entry of this kind whose data is `size` zeros.
    fn tar_gz_with(kind: tar::EntryType, name: &str, size: usize) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size as u64);
        header.set_mode(0o644);
        // Written as is: the builder refuses a name with `..`, a reader must not trust that.
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, &vec![0u8; size][..]).unwrap();
        tar_gz_of(&builder.into_inner().unwrap())
    }

    #[test]
    fn tar_gz_data_that_is_skipped_still_counts_toward_the_size_limits() {
        // 30 kB of zeros: well within 100 times its compressed size, but past the 10 000 bytes
        // the project may hold. None of these entries' data is stored.
        for (kind, name) in [
            (tar::EntryType::Directory, "folder/"),
            (tar::EntryType::XGlobalHeader, "pax_global_header"),
            (tar::EntryType::Fifo, "pipe"),
            (tar::EntryType::Char, "device"),
            (tar::EntryType::Regular, "../outside.txt"),
        ] {
            let archive = tar_gz_with(kind, name, 30_000);
            let message = read(&archive, &limits()).unwrap_err().to_string();
            assert!(
                message.contains("unpacks to more than 10000 bytes"),
                "{kind:?}: {message}"
            );
        }
        // The ratio counts as well: with 2 times the archive's size the ceiling is the floor of
        // 64 KiB, and 100 kB of skipped zeros pass it.
        let mut tight = limits();
        tight.max_project_bytes = 10_000_000;
        tight.max_expansion_ratio = 2;
        let archive = tar_gz_with(tar::EntryType::Directory, "folder/", 100_000);
        let message = read(&archive, &tight).unwrap_err().to_string();
        assert!(message.contains("times the archive's size"), "{message}");
        // Within the limits, the same entries import (or are refused for what they are).
        let archive = tar_gz_with(tar::EntryType::Directory, "folder/", 2_000);
        assert_eq!(read(&archive, &limits()).unwrap().folders, vec!["folder"]);
    }

    #[test]
    fn folders_count_toward_the_entry_limit() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for index in 0..11 {
            writer
                .add_directory(
                    format!("folder{index}/"),
                    zip::write::SimpleFileOptions::default(),
                )
                .unwrap();
        }
        let archive = writer.finish().unwrap().into_inner();
        let message = read(&archive, &limits()).unwrap_err().to_string();
        assert!(
            message.contains("more than 10 files and folders"),
            "{message}"
        );

        let mut builder = tar::Builder::new(Vec::new());
        for index in 0..11 {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header.set_mode(0o755);
            header.set_cksum();
            builder
                .append_data(&mut header, format!("folder{index}/"), std::io::empty())
                .unwrap();
        }
        let archive = tar_gz_of(&builder.into_inner().unwrap());
        let message = read(&archive, &limits()).unwrap_err().to_string();
        assert!(
            message.contains("more than 10 files and folders"),
            "{message}"
        );
        // Ten entries, folders and files together, are within the limit.
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for index in 0..5 {
            writer
                .add_directory(format!("folder{index}/"), options)
                .unwrap();
            writer
                .start_file(format!("folder{index}/file.txt"), options)
                .unwrap();
        }
        let archive = writer.finish().unwrap().into_inner();
        assert_eq!(read(&archive, &limits()).unwrap().files.len(), 5);
    }

    #[test]
    fn download_names_are_tidy() {
        assert_eq!(file_name_for("My Project!"), "My-Project.zip");
        assert_eq!(file_name_for("../.."), "project.zip");
    }
}
