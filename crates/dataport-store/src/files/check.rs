//! The file store's part of `dataport fsck`: every stored file against the
//! index (its object there, its size, its sha256), and what no index entry
//! names (temporaries of uploads cut off by a crash, objects of commits cut
//! short). Only the latter may be removed (`repair`): a committed file never
//! is, whatever is wrong with it.

use std::io::Read;
use std::path::{Path, PathBuf};

use dataport_core::files::Sha256Digest;
use sha2::{Digest, Sha256};

use super::index::Index;
use super::{FileError, LocalFileStore};

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct FileCheck {
    /// Stored files checked, and their bytes.
    pub files: usize,
    pub bytes: u64,
    /// Stored files that are not what the index says, one line each.
    pub damaged: Vec<String>,
    /// What no index entry names: removed when repairing.
    pub leftovers: Vec<PathBuf>,
    /// Resumable uploads in progress (not a problem: they can be resumed).
    pub resumable: usize,
}

impl FileCheck {
    /// Whether anything is wrong that repairing would not fix, or, when
    /// `repaired`, anything at all.
    pub fn clean(&self, repaired: bool) -> bool {
        self.damaged.is_empty() && (repaired || self.leftovers.is_empty())
    }
}

/// Checks the file store of `data_dir` (whose lock the caller holds),
/// removing the leftovers when `repair`.
pub fn check(data_dir: &Path, repair: bool) -> Result<FileCheck, FileError> {
    let root = data_dir.join(LocalFileStore::DIR);
    let (objects, tmp) = (root.join("objects"), root.join(".tmp"));
    let mut found = FileCheck::default();
    if !root.exists() {
        return Ok(found);
    }
    let index = Index::open(root.join("index.sqlite3"))?;
    let index = index.lock();
    let mut after = String::new();
    loop {
        let page = index.page("", &after, 1000)?;
        let Some(last) = page.last() else { break };
        after = last.info.name.clone();
        for row in &page {
            found.files += 1;
            found.bytes += row.info.size;
            let path = objects.join(&row.object);
            if let Some(damage) = damage(&path, row.info.size, row.info.sha256) {
                found.damaged.push(format!("{:?}: {damage} ({})", row.info.name, path.display()));
            }
        }
    }
    let named = index.objects()?;
    for entry in read_dir(&objects)? {
        if !named.contains(&*entry.file_name().to_string_lossy()) {
            found.leftovers.push(entry.path());
        }
    }
    let resumable = tmp.join("resumable");
    for entry in read_dir(&tmp)? {
        if entry.path() != resumable {
            found.leftovers.push(entry.path());
        }
    }
    found.resumable = read_dir(&resumable)?.len();
    if repair {
        for path in &found.leftovers {
            let removed =
                if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
            removed.map_err(|e| FileError::io(path, e))?;
        }
    }
    Ok(found)
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, FileError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.collect::<Result<_, _>>().map_err(|e| FileError::io(dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(FileError::io(dir, e)),
    }
}

/// What is wrong with the object at `path`, which should hold `size` bytes
/// whose sha256 is `sha256`; `None` when nothing is.
fn damage(path: &Path, size: u64, sha256: Sha256Digest) -> Option<String> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => return Some(format!("its object cannot be read: {e}")),
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                read += n as u64;
            }
            Err(e) => return Some(format!("reading its object failed after {read} bytes: {e}")),
        }
    }
    if read != size {
        return Some(format!("{read} bytes where the index says {size}"));
    }
    let got = Sha256Digest(hasher.finalize().into());
    (got != sha256).then(|| format!("sha256 {got} where the index says {sha256}"))
}
