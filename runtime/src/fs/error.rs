//! `FsError`: an `io::Error` with the syscall and the path, printed as Node prints its fs errors.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A failed file-system request: errno name, syscall and path(s), as Node's fs errors carry them.
///
/// `Display` is Node's message: `ENOENT: no such file or directory, open 'x'` (and
/// `rename 'a' -> 'b'` when there is a destination). The errno names and descriptions are
/// libuv's (`uv_err_name`, `uv_strerror`); an errno outside the table prints as `E<number>` with
/// the OS's own description.
#[derive(Debug)]
pub struct FsError {
    syscall: &'static str,
    path: Option<PathBuf>,
    dest: Option<PathBuf>,
    source: io::Error,
}

impl FsError {
    pub(crate) fn new(syscall: &'static str, path: Option<&Path>, source: io::Error) -> FsError {
        FsError {
            syscall,
            path: path.map(Path::to_path_buf),
            dest: None,
            source,
        }
    }

    pub(crate) fn with_dest(mut self, dest: &Path) -> FsError {
        self.dest = Some(dest.to_path_buf());
        self
    }

    /// The errno name, as Node's `err.code`: `"ENOENT"`, `"EACCES"`, ... (`"EUNKNOWN"` when the
    /// error carries no errno).
    pub fn code(&self) -> &'static str {
        self.source
            .raw_os_error()
            .and_then(|n| errno_entry(n).map(|(name, _)| name))
            .unwrap_or("EUNKNOWN")
    }

    /// The OS error number (positive, as `libc`'s constants), if any. Node's `err.errno` is its
    /// negation.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// The failing syscall, as Node's `err.syscall`: `"open"`, `"read"`, `"scandir"`, ...
    pub fn syscall(&self) -> &'static str {
        self.syscall
    }

    /// The path the request named, if the syscall took one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The destination path of `rename`.
    pub fn dest(&self) -> Option<&Path> {
        self.dest.as_deref()
    }

    /// The error's kind (`NotFound`, `PermissionDenied`, ...).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let described = self.source.raw_os_error().and_then(errno_entry);
        match described {
            Some((name, text)) => write!(f, "{name}: {text}, {}", self.syscall)?,
            None => match self.source.raw_os_error() {
                Some(n) => write!(f, "E{n}: {}, {}", self.source, self.syscall)?,
                None => write!(f, "EUNKNOWN: {}, {}", self.source, self.syscall)?,
            },
        }
        if let Some(path) = &self.path {
            write!(f, " '{}'", path.display())?;
        }
        if let Some(dest) = &self.dest {
            write!(f, " -> '{}'", dest.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for FsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl From<FsError> for io::Error {
    fn from(e: FsError) -> io::Error {
        io::Error::new(e.kind(), e.to_string())
    }
}

/// libuv's name and message for the errnos a file-system request meets (uv-common.c's
/// `UV_ERRNO_MAP`; the texts are the ones Node prints).
fn errno_entry(errno: i32) -> Option<(&'static str, &'static str)> {
    Some(match errno {
        libc::ENOENT => ("ENOENT", "no such file or directory"),
        libc::EACCES => ("EACCES", "permission denied"),
        libc::EEXIST => ("EEXIST", "file already exists"),
        libc::EISDIR => ("EISDIR", "illegal operation on a directory"),
        libc::ENOTDIR => ("ENOTDIR", "not a directory"),
        libc::ENOTEMPTY => ("ENOTEMPTY", "directory not empty"),
        libc::EBADF => ("EBADF", "bad file descriptor"),
        libc::EINVAL => ("EINVAL", "invalid argument"),
        libc::EMFILE => ("EMFILE", "too many open files"),
        libc::ENFILE => ("ENFILE", "file table overflow"),
        libc::ENOSPC => ("ENOSPC", "no space left on device"),
        libc::EPERM => ("EPERM", "operation not permitted"),
        libc::EXDEV => ("EXDEV", "cross-device link not permitted"),
        libc::ELOOP => ("ELOOP", "too many symbolic links encountered"),
        libc::ENAMETOOLONG => ("ENAMETOOLONG", "name too long"),
        libc::EROFS => ("EROFS", "read-only file system"),
        libc::EBUSY => ("EBUSY", "resource busy or locked"),
        libc::EIO => ("EIO", "i/o error"),
        libc::EFBIG => ("EFBIG", "file too large"),
        libc::ETXTBSY => ("ETXTBSY", "text file is busy"),
        libc::EAGAIN => ("EAGAIN", "resource temporarily unavailable"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_nodes_message_with_path_and_dest() {
        let e = FsError::new(
            "open",
            Some(Path::new("/nonexist/x")),
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(
            e.to_string(),
            "ENOENT: no such file or directory, open '/nonexist/x'"
        );
        assert_eq!(e.code(), "ENOENT");
        let e = FsError::new(
            "rename",
            Some(Path::new("/a")),
            io::Error::from_raw_os_error(libc::ENOENT),
        )
        .with_dest(Path::new("/b"));
        assert_eq!(
            e.to_string(),
            "ENOENT: no such file or directory, rename '/a' -> '/b'"
        );
        let e = FsError::new("read", None, io::Error::from_raw_os_error(libc::EISDIR));
        assert_eq!(
            e.to_string(),
            "EISDIR: illegal operation on a directory, read"
        );
    }
}
