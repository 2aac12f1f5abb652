//! Path confinement: a URL path becomes a regular file inside the
//! canonical document root, or nothing (the parent module's *Path rules*);
//! and the bounded, non-blocking read of that file.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use meteor_proto::path::valid_path_bytes;

use super::cache::Stamp;
use super::{DocError, Documents};

/// A resolved document: the canonical file and what it looked like.
#[derive(Debug)]
pub(super) struct Resolved {
    pub(super) file: PathBuf,
    pub(super) stamp: Stamp,
    /// Name used for the Content-Type (the requested name, or the index).
    pub(super) name: String,
}

impl Documents {
    /// Map `url_path` to a regular file inside the canonical `root`.
    pub(super) fn resolve(&self, root: &Path, url_path: &str) -> Result<Resolved, DocError> {
        if !valid_path_bytes(url_path.as_bytes()) {
            return Err(DocError::NotFound("character outside [A-Za-z0-9._/-]"));
        }
        if url_path.contains("..") {
            return Err(DocError::NotFound("'..' in the path"));
        }
        let mut joined = root.to_path_buf();
        let mut name = String::new();
        for segment in url_path.split('/') {
            match segment {
                "" | "." => {}
                segment => {
                    joined.push(segment);
                    name = segment.to_owned();
                }
            }
        }
        let wants_directory = name.is_empty();
        if wants_directory {
            joined.push(&self.directory_index);
            name.clone_from(&self.directory_index);
        }
        let (mut file, mut meta) = canonical_inside(root, &joined)?;
        if meta.is_dir() && !wants_directory {
            joined = file.join(&self.directory_index);
            name.clone_from(&self.directory_index);
            (file, meta) = canonical_inside(root, &joined)?;
        }
        if !meta.is_file() {
            return Err(DocError::NotFound("not a regular file"));
        }
        Ok(Resolved {
            file,
            stamp: Stamp::of(&meta),
            name,
        })
    }
}

/// The root, canonicalized now (it may have been created or moved since
/// the daemon started). The file system's root serves nothing, as in the
/// original (`SubscriberDocumentRoot /` means no documents).
pub(super) fn canonical_root(root: &Path) -> Result<PathBuf, DocError> {
    // Empty = no document root configured: nothing is served (never the
    // current directory, which an empty path would otherwise name).
    if root.as_os_str().is_empty() {
        return Err(DocError::NotFound("no document root"));
    }
    let root = fs::canonicalize(root).map_err(|_| DocError::NotFound("document root missing"))?;
    if root.parent().is_none() {
        return Err(DocError::NotFound("the document root is /"));
    }
    Ok(root)
}

/// Canonicalize `path` and require it inside `root`; also return its metadata.
fn canonical_inside(root: &Path, path: &Path) -> Result<(PathBuf, Metadata), DocError> {
    let file = fs::canonicalize(path).map_err(|_| DocError::NotFound("no such file"))?;
    if !file.starts_with(root) {
        tracing::warn!(path = %path.display(), target = %file.display(), "symlink points outside the document root");
        return Err(DocError::NotFound("outside the document root"));
    }
    let meta = fs::metadata(&file).map_err(|_| DocError::NotFound("no such file"))?;
    Ok((file, meta))
}

/// Read at most `limit` bytes of `file`, with the stamp taken *before*
/// reading (a write racing with the read then shows up as a changed stamp on
/// the next request rather than as stale content).
pub(super) fn read_bounded(file: &Path, limit: usize) -> Result<(Vec<u8>, Stamp), DocError> {
    // Non-blocking open and a type check on the open handle: if the file was
    // swapped for a FIFO since it was resolved, opening it must not hang a
    // worker thread. (O_NONBLOCK has no effect on reading regular files.)
    let mut handle = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(file)
        .map_err(|err| match err.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
                DocError::NotFound("cannot open file")
            }
            _ => DocError::Io(err),
        })?;
    let meta = handle.metadata().map_err(DocError::Io)?;
    if !meta.is_file() {
        return Err(DocError::NotFound("not a regular file"));
    }
    if meta.size() > limit as u64 {
        return Err(DocError::TooLarge);
    }
    let mut raw = Vec::with_capacity(usize::try_from(meta.size()).unwrap_or(0));
    // One byte past the limit tells "grew while reading" from "fits".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    (&mut handle)
        .take(cap)
        .read_to_end(&mut raw)
        .map_err(DocError::Io)?;
    if raw.len() > limit {
        return Err(DocError::TooLarge);
    }
    Ok((raw, Stamp::of(&meta)))
}
