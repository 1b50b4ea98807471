//! The file system on the thread pool: Node's `fs` callback API (libuv's `uv_fs_*` requests).
//!
//! Every call is a *request*: the syscall runs on the loop's thread pool and the callback runs
//! on the loop thread in a later poll phase, as a thread-pool completion (Node runs its fs
//! callbacks at the same point). A pending request keeps the loop alive; the returned
//! [`WorkId`] can cancel it with [`Loop::cancel_work`] before a worker takes it (the callback
//! then gets `ECANCELED`). The loop thread never touches the disk.
//!
//! ```
//! use oneloop_runtime::{fs, Loop};
//!
//! let mut lp = Loop::new()?;
//! let path = std::env::temp_dir().join(format!("oneloop-fs-doc-{}", std::process::id()));
//! let written = path.clone();
//! fs::write_file(&mut lp, &path, b"hello".to_vec(), fs::WriteOptions::default(), move |lp, r| {
//!     r.expect("write");
//!     let read = written.clone();
//!     fs::read_file(lp, &written, move |lp, r| {
//!         assert_eq!(r.expect("read"), b"hello");
//!         fs::unlink(lp, &read, |_lp, r| r.expect("unlink")).expect("pool");
//!     })
//!     .expect("pool");
//! })?;
//! lp.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Errors
//! Callbacks get [`FsError`], whose `Display` is Node's message
//! (`ENOENT: no such file or directory, open 'x'`). The functions themselves fail only when the
//! thread pool cannot start (as [`Loop::queue_work`]).
//!
//! # Differences from Node
//! - Descriptors are [`File`] values (an `Arc` around `std::fs::File`), not integers: closing
//!   twice or using a closed descriptor cannot reach another file. [`close`] drops the last
//!   reference on the pool; Rust's `File` does not report `close(2)` errors, so call [`fsync`]
//!   first where durability matters.
//! - [`readdir`] returns `OsString`s (no lossy UTF-8 decoding), sorted bytewise as libuv's
//!   `scandir` sorts them.
//! - [`read_file`] has no 2 GiB cap (`ERR_FS_FILE_TOO_LARGE`); read large files with a
//!   [`ReadStream`], whose memory is bounded by its chunk size.

mod error;
mod stream;

use std::ffi::OsString;
use std::fs as stdfs;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

pub use error::FsError;
pub use stream::{ReadStream, ReadStreamOptions, DEFAULT_STREAM_CHUNK};

use crate::{Loop, WorkError, WorkId};

/// A file-system request's outcome.
pub type FsResult<T> = Result<T, FsError>;

/// Runs `work` on the pool and hands its outcome to `callback`, mapping a cancelled or panicked
/// request to an `FsError` (`ECANCELED`, or `EIO` with the panic message).
#[track_caller]
fn request<T: Send + 'static>(
    lp: &mut Loop,
    syscall: &'static str,
    work: impl FnOnce() -> FsResult<T> + Send + 'static,
    callback: impl FnOnce(&mut Loop, FsResult<T>) + 'static,
) -> io::Result<WorkId> {
    lp.queue_work(work, move |lp, done| {
        let result = match done {
            Ok(result) => result,
            Err(WorkError::Cancelled) => Err(FsError::new(
                syscall,
                None,
                io::Error::from_raw_os_error(libc::ECANCELED),
            )),
            Err(WorkError::Panicked(msg)) => {
                Err(FsError::new(syscall, None, io::Error::other(msg)))
            }
        };
        callback(lp, result)
    })
}

fn at<'p>(syscall: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> FsError + 'p {
    move |e| FsError::new(syscall, Some(path), e)
}

/// A request whose syscall takes one path and whose error names it.
#[track_caller]
fn path_request<T: Send + 'static>(
    lp: &mut Loop,
    syscall: &'static str,
    path: &Path,
    op: impl FnOnce(&Path) -> io::Result<T> + Send + 'static,
    callback: impl FnOnce(&mut Loop, FsResult<T>) + 'static,
) -> io::Result<WorkId> {
    let path = path.to_path_buf();
    request(
        lp,
        syscall,
        move || op(&path).map_err(at(syscall, &path)),
        callback,
    )
}

/// Reads a whole file (Node's `fs.readFile(path, cb)`).
#[track_caller]
pub fn read_file(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    callback: impl FnOnce(&mut Loop, FsResult<Vec<u8>>) + 'static,
) -> io::Result<WorkId> {
    let path = path.as_ref().to_path_buf();
    request(
        lp,
        "open",
        move || {
            let mut file = stdfs::File::open(&path).map_err(at("open", &path))?;
            let mut data = Vec::new();
            file.read_to_end(&mut data)
                .map_err(|e| FsError::new("read", None, e))?;
            Ok(data)
        },
        callback,
    )
}

/// Options of [`write_file`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Write to a temporary file in the same directory, `fsync` it, then rename it over `path`:
    /// a reader sees the old contents or the new ones, never a torn file. Off by default (as
    /// Node's `writeFile`, which truncates in place).
    pub atomic: bool,
}

/// Writes `data` to `path`, creating or truncating it (Node's `fs.writeFile`).
#[track_caller]
pub fn write_file(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    data: impl Into<Vec<u8>>,
    options: WriteOptions,
    callback: impl FnOnce(&mut Loop, FsResult<()>) + 'static,
) -> io::Result<WorkId> {
    let path = path.as_ref().to_path_buf();
    let data = data.into();
    request(
        lp,
        "open",
        move || {
            if options.atomic {
                write_atomic(&path, &data)
            } else {
                let mut file = stdfs::File::create(&path).map_err(at("open", &path))?;
                file.write_all(&data)
                    .map_err(|e| FsError::new("write", None, e))
            }
        },
        callback,
    )
}

/// The temporary file is `.<name>.<pid>.<n>.tmp` beside `path`, created exclusively (a
/// concurrent writer picks the next `n`), removed if anything fails before the rename.
fn write_atomic(path: &Path, data: &[u8]) -> FsResult<()> {
    let name = path.file_name().ok_or_else(|| {
        FsError::new(
            "open",
            Some(path),
            io::Error::from_raw_os_error(libc::EISDIR),
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for n in 0u32..1000 {
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        let mut file = match stdfs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(FsError::new("open", Some(&tmp), e)),
        };
        let written = file
            .write_all(data)
            .map_err(|e| FsError::new("write", None, e))
            .and_then(|()| file.sync_all().map_err(|e| FsError::new("fsync", None, e)))
            .and_then(|()| {
                stdfs::rename(&tmp, path)
                    .map_err(|e| FsError::new("rename", Some(&tmp), e).with_dest(path))
            });
        if written.is_err() {
            let _ = stdfs::remove_file(&tmp);
        }
        return written;
    }
    Err(FsError::new(
        "open",
        Some(path),
        io::Error::from_raw_os_error(libc::EEXIST),
    ))
}

/// Metadata of `path`, following symlinks (Node's `fs.stat`).
#[track_caller]
pub fn stat(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    callback: impl FnOnce(&mut Loop, FsResult<stdfs::Metadata>) + 'static,
) -> io::Result<WorkId> {
    path_request(lp, "stat", path.as_ref(), |p| stdfs::metadata(p), callback)
}

/// Metadata of `path` itself, not following a final symlink (Node's `fs.lstat`).
#[track_caller]
pub fn lstat(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    callback: impl FnOnce(&mut Loop, FsResult<stdfs::Metadata>) + 'static,
) -> io::Result<WorkId> {
    path_request(
        lp,
        "lstat",
        path.as_ref(),
        |p| stdfs::symlink_metadata(p),
        callback,
    )
}

/// The names in a directory, without `.` and `..`, sorted bytewise (Node's `fs.readdir`).
#[track_caller]
pub fn readdir(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    callback: impl FnOnce(&mut Loop, FsResult<Vec<OsString>>) + 'static,
) -> io::Result<WorkId> {
    let path = path.as_ref().to_path_buf();
    request(
        lp,
        "scandir",
        move || {
            let mut names = Vec::new();
            for entry in stdfs::read_dir(&path).map_err(at("scandir", &path))? {
                names.push(entry.map_err(at("scandir", &path))?.file_name());
            }
            names.sort_unstable_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
            Ok(names)
        },
        callback,
    )
}

/// Creates a directory; with `recursive`, its missing parents too, and an existing directory
/// is not an error (Node's `fs.mkdir(path, {recursive})`).
#[track_caller]
pub fn mkdir(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    recursive: bool,
    callback: impl FnOnce(&mut Loop, FsResult<()>) + 'static,
) -> io::Result<WorkId> {
    let mkdir = move |p: &Path| {
        if recursive {
            stdfs::create_dir_all(p)
        } else {
            stdfs::create_dir(p)
        }
    };
    path_request(lp, "mkdir", path.as_ref(), mkdir, callback)
}

/// Removes an empty directory (Node's `fs.rmdir`).
#[track_caller]
pub fn rmdir(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    callback: impl FnOnce(&mut Loop, FsResult<()>) + 'static,
) -> io::Result<WorkId> {
    path_request(
        lp,
        "rmdir",
        path.as_ref(),
        |p| stdfs::remove_dir(p),
        callback,
    )
}

/// Removes a file or symlink (Node's `fs.unlink`).
#[track_caller]
pub fn unlink(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    callback: impl FnOnce(&mut Loop, FsResult<()>) + 'static,
) -> io::Result<WorkId> {
    path_request(
        lp,
        "unlink",
        path.as_ref(),
        |p| stdfs::remove_file(p),
        callback,
    )
}

/// Renames `from` to `to`, replacing `to` if it is a file (Node's `fs.rename`).
#[track_caller]
pub fn rename(
    lp: &mut Loop,
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
    callback: impl FnOnce(&mut Loop, FsResult<()>) + 'static,
) -> io::Result<WorkId> {
    let from = from.as_ref().to_path_buf();
    let to = to.as_ref().to_path_buf();
    request(
        lp,
        "rename",
        move || {
            stdfs::rename(&from, &to)
                .map_err(|e| FsError::new("rename", Some(&from), e).with_dest(&to))
        },
        callback,
    )
}

/// An open file: what Node calls a file descriptor. Cheap to clone (an `Arc`); the file is
/// closed when [`close`] runs or the last clone is dropped.
#[derive(Debug, Clone)]
pub struct File {
    inner: Arc<stdfs::File>,
    path: Arc<Path>,
}

impl File {
    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Parses Node's flag strings (`r`, `r+`, `w`, `wx`, `w+`, `wx+`, `a`, `ax`, `a+`, `ax+`;
/// `x` may come first).
fn open_options(flags: &str) -> Option<stdfs::OpenOptions> {
    let mut o = stdfs::OpenOptions::new();
    let flags = match flags {
        "xw" => "wx",
        "xw+" => "wx+",
        "xa" => "ax",
        "xa+" => "ax+",
        other => other,
    };
    match flags {
        "r" => o.read(true),
        "r+" => o.read(true).write(true),
        "w" => o.write(true).create(true).truncate(true),
        "wx" => o.write(true).create_new(true),
        "w+" => o.read(true).write(true).create(true).truncate(true),
        "wx+" => o.read(true).write(true).create_new(true),
        "a" => o.append(true).create(true),
        "ax" => o.append(true).create_new(true),
        "a+" => o.read(true).append(true).create(true),
        "ax+" => o.read(true).append(true).create_new(true),
        _ => return None,
    };
    Some(o)
}

/// Opens `path` with Node's `flags` (`"r"`, `"w"`, `"a+"`, ...; new files get mode 0o666 less
/// the umask, as Node's default). An unknown flag string fails with `EINVAL`.
#[track_caller]
pub fn open(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    flags: &str,
    callback: impl FnOnce(&mut Loop, FsResult<File>) + 'static,
) -> io::Result<WorkId> {
    let path: Arc<Path> = Arc::from(path.as_ref());
    let options = open_options(flags);
    request(
        lp,
        "open",
        move || {
            let options = options.ok_or_else(|| {
                FsError::new(
                    "open",
                    Some(&path),
                    io::Error::from_raw_os_error(libc::EINVAL),
                )
            })?;
            let file = options.open(&path).map_err(at("open", &path))?;
            Ok(File {
                inner: Arc::new(file),
                path,
            })
        },
        callback,
    )
}

/// Reads up to `len` bytes at `position` (or at the file's current offset, advancing it, when
/// `None`), as Node's `fs.read`. An empty result means end of file.
#[track_caller]
pub fn read(
    lp: &mut Loop,
    file: &File,
    len: usize,
    position: Option<u64>,
    callback: impl FnOnce(&mut Loop, FsResult<Vec<u8>>) + 'static,
) -> io::Result<WorkId> {
    let file = file.inner.clone();
    request(
        lp,
        "read",
        move || read_chunk(&file, len, position),
        callback,
    )
}

pub(crate) fn read_chunk(
    file: &stdfs::File,
    len: usize,
    position: Option<u64>,
) -> FsResult<Vec<u8>> {
    let mut buf = vec![0; len];
    let n = match position {
        Some(pos) => file.read_at(&mut buf, pos),
        None => (&*file).read(&mut buf),
    }
    .map_err(|e| FsError::new("read", None, e))?;
    buf.truncate(n);
    Ok(buf)
}

/// Writes all of `data` at `position` (or at the current offset, advancing it), as Node's
/// `fs.write`; the callback gets the number of bytes written.
#[track_caller]
pub fn write(
    lp: &mut Loop,
    file: &File,
    data: impl Into<Vec<u8>>,
    position: Option<u64>,
    callback: impl FnOnce(&mut Loop, FsResult<usize>) + 'static,
) -> io::Result<WorkId> {
    let file = file.inner.clone();
    let data = data.into();
    request(
        lp,
        "write",
        move || {
            match position {
                Some(pos) => file.write_all_at(&data, pos),
                None => (&*file).write_all(&data),
            }
            .map_err(|e| FsError::new("write", None, e))?;
            Ok(data.len())
        },
        callback,
    )
}

/// Flushes the file's data and metadata to the device (Node's `fs.fsync`).
#[track_caller]
pub fn fsync(
    lp: &mut Loop,
    file: &File,
    callback: impl FnOnce(&mut Loop, FsResult<()>) + 'static,
) -> io::Result<WorkId> {
    let file = file.inner.clone();
    request(
        lp,
        "fsync",
        move || file.sync_all().map_err(|e| FsError::new("fsync", None, e)),
        callback,
    )
}

/// Closes the file on the pool (Node's `fs.close`). Other clones of `file` keep it open until
/// they are dropped too.
#[track_caller]
pub fn close(
    lp: &mut Loop,
    file: File,
    callback: impl FnOnce(&mut Loop, FsResult<()>) + 'static,
) -> io::Result<WorkId> {
    request(
        lp,
        "close",
        move || {
            drop(file);
            Ok(())
        },
        callback,
    )
}
