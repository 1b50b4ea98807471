//! The fs module over a real temporary directory: every request, its errors in Node's words,
//! the read stream's order, backpressure and bounded memory, and what keeps the loop alive.

use std::cell::RefCell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use oneloop_runtime::fs::{self, ReadStream, ReadStreamOptions, WriteOptions};
use oneloop_runtime::Loop;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "oneloop-fs-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

#[test]
fn write_file_then_read_file_round_trips_the_bytes() {
    let dir = TempDir::new("roundtrip");
    let path = dir.join("a.txt");
    let mut lp = Loop::new().unwrap();
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    let p = path.clone();
    fs::write_file(
        &mut lp,
        &path,
        b"hello fs".to_vec(),
        WriteOptions::default(),
        move |lp, r| {
            r.expect("write");
            fs::read_file(lp, &p, move |_lp, r| {
                *g.borrow_mut() = Some(r.expect("read"))
            })
            .unwrap();
        },
    )
    .unwrap();
    lp.run().unwrap();
    assert_eq!(got.borrow().as_deref(), Some(&b"hello fs"[..]));
}

#[test]
fn atomic_write_file_replaces_the_file_and_leaves_no_temporary() {
    let dir = TempDir::new("atomic");
    let path = dir.join("config.json");
    std::fs::write(&path, b"old").unwrap();
    let mut lp = Loop::new().unwrap();
    let opts = WriteOptions { atomic: true };
    fs::write_file(&mut lp, &path, b"new contents".to_vec(), opts, |_lp, r| {
        r.expect("atomic write")
    })
    .unwrap();
    lp.run().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
    let names: Vec<OsString> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![OsString::from("config.json")],
        "temporary left behind"
    );
}

#[test]
fn errors_carry_the_errno_name_syscall_and_path_as_node_prints_them() {
    let dir = TempDir::new("errors");
    let missing = dir.join("missing");
    let log = Log::default();
    let mut lp = Loop::new().unwrap();
    let l = log.clone();
    fs::read_file(&mut lp, &missing, move |_lp, r| {
        let e = r.unwrap_err();
        assert_eq!(e.code(), "ENOENT");
        assert_eq!(e.syscall(), "open");
        push(&l, e.to_string());
    })
    .unwrap();
    let l = log.clone();
    fs::mkdir(&mut lp, &dir.0, false, move |_lp, r| {
        push(&l, r.unwrap_err().to_string())
    })
    .unwrap();
    let l = log.clone();
    let (a, b) = (dir.join("nope"), dir.join("b"));
    fs::rename(&mut lp, &a, &b, move |_lp, r| {
        push(&l, r.unwrap_err().to_string())
    })
    .unwrap();
    let l = log.clone();
    fs::read_file(&mut lp, &dir.0, move |_lp, r| {
        push(&l, r.unwrap_err().to_string())
    })
    .unwrap();
    let l = log.clone();
    fs::open(&mut lp, &missing, "rw?", move |_lp, r| {
        push(&l, r.unwrap_err().code())
    })
    .unwrap();
    lp.run().unwrap();
    let d = dir.0.display();
    let mut got = log.borrow().clone();
    got.sort();
    let mut want = vec![
        format!("ENOENT: no such file or directory, open '{d}/missing'"),
        format!("EEXIST: file already exists, mkdir '{d}'"),
        format!("ENOENT: no such file or directory, rename '{d}/nope' -> '{d}/b'"),
        "EISDIR: illegal operation on a directory, read".to_string(),
        "EINVAL".to_string(),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn directory_requests_create_list_sorted_rename_and_remove() {
    let dir = TempDir::new("dirs");
    let nested = dir.join("x/y/z");
    let log = Log::default();
    let mut lp = Loop::new().unwrap();
    let (l, root) = (log.clone(), dir.0.clone());
    fs::mkdir(&mut lp, &nested, true, move |lp, r| {
        r.expect("mkdir -p");
        for name in ["b", "a", "C"] {
            std::fs::write(root.join(name), name).unwrap(); // set-up, not the code under test
        }
        let root2 = root.clone();
        fs::readdir(lp, &root, move |lp, r| {
            let names: Vec<String> = r
                .expect("readdir")
                .into_iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            push(&l, names.join(","));
            let (from, to) = (root2.join("a"), root2.join("renamed"));
            let to2 = to.clone();
            fs::rename(lp, &from, &to, move |lp, r| {
                r.expect("rename");
                fs::unlink(lp, &to2, move |lp, r| {
                    r.expect("unlink");
                    fs::rmdir(lp, root2.join("x/y/z"), move |lp, r| {
                        r.expect("rmdir");
                        fs::stat(lp, root2.join("x/y"), move |_lp, r| {
                            push(&l, format!("y is dir: {}", r.expect("stat").is_dir()));
                        })
                        .unwrap();
                    })
                    .unwrap();
                })
                .unwrap();
            })
            .unwrap();
        })
        .unwrap();
    })
    .unwrap();
    lp.run().unwrap();
    assert_eq!(*log.borrow(), ["C,a,b,x", "y is dir: true"]);
    assert!(!dir.join("a").exists() && !dir.join("renamed").exists());
    assert!(!dir.join("x/y/z").exists());
}

#[test]
fn descriptors_write_read_at_positions_and_at_the_offset_then_close() {
    let dir = TempDir::new("fd");
    let path = dir.join("data.bin");
    let log = Log::default();
    let mut lp = Loop::new().unwrap();
    let l = log.clone();
    fs::open(&mut lp, &path, "w+", move |lp, r| {
        let file = r.expect("open w+");
        let f2 = file.clone();
        fs::write(lp, &file, b"0123456789".to_vec(), None, move |lp, r| {
            assert_eq!(r.expect("write"), 10);
            let f3 = f2.clone();
            fs::write(lp, &f2, b"AB".to_vec(), Some(3), move |lp, r| {
                r.expect("pwrite");
                let f4 = f3.clone();
                fs::read(lp, &f3, 4, Some(2), move |lp, r| {
                    push(&l, String::from_utf8(r.expect("pread")).unwrap());
                    let f5 = f4.clone();
                    fs::fsync(lp, &f4, move |lp, r| {
                        r.expect("fsync");
                        fs::close(lp, f5, move |_lp, r| {
                            r.expect("close");
                            push(&l, "closed");
                        })
                        .unwrap();
                    })
                    .unwrap();
                })
                .unwrap();
            })
            .unwrap();
        })
        .unwrap();
        drop(file);
    })
    .unwrap();
    lp.run().unwrap();
    assert_eq!(*log.borrow(), ["2AB5", "closed"]);
    assert_eq!(std::fs::read(&path).unwrap(), b"012AB56789");
}

/// A file of `len` bytes whose byte `i` is `i % 251`.
fn pattern_file(path: &Path, len: usize) {
    let block: Vec<u8> = (0..251 * 4096).map(|i| (i % 251) as u8).collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len());
        std::io::Write::write_all(&mut out, &block[..n]).unwrap();
        left -= n;
    }
}

#[test]
fn read_stream_delivers_every_byte_in_order_then_end_then_close() {
    let dir = TempDir::new("stream");
    let path = dir.join("f");
    let len = 1_000_003;
    pattern_file(&path, len);
    let log = Log::default();
    let received = Rc::new(RefCell::new(0usize));
    let mut lp = Loop::new().unwrap();
    let r = received.clone();
    let opts = ReadStreamOptions {
        chunk_size: 65_536,
        ..Default::default()
    };
    let stream = ReadStream::open(&mut lp, &path, opts, move |_lp, _s, chunk| {
        let start = *r.borrow();
        for (i, b) in chunk.iter().enumerate() {
            assert_eq!(*b, ((start + i) % 251) as u8, "byte {}", start + i);
        }
        assert!(chunk.len() <= 65_536);
        *r.borrow_mut() += chunk.len();
    })
    .unwrap();
    let l = log.clone();
    stream.on_end(move |_lp, s| push(&l, format!("end {}", s.bytes_read())));
    let l = log.clone();
    stream.on_close(move |_lp, _s| push(&l, "close"));
    lp.run().unwrap();
    assert_eq!(*received.borrow(), len);
    assert_eq!(*log.borrow(), [format!("end {len}"), "close".to_string()]);
}

#[test]
fn read_stream_honours_start_and_inclusive_end_as_node() {
    let dir = TempDir::new("range");
    let path = dir.join("f");
    std::fs::write(&path, b"abcdefghij").unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let mut lp = Loop::new().unwrap();
    let g = got.clone();
    let opts = ReadStreamOptions {
        chunk_size: 2,
        start: 2,
        end: Some(6),
    };
    ReadStream::open(&mut lp, &path, opts, move |_lp, _s, c| {
        g.borrow_mut().extend_from_slice(&c)
    })
    .unwrap();
    lp.run().unwrap();
    assert_eq!(&got.borrow()[..], b"cdefg");
}

#[test]
fn read_stream_of_a_missing_file_reports_error_then_close() {
    let dir = TempDir::new("missing-stream");
    let log = Log::default();
    let mut lp = Loop::new().unwrap();
    let s = ReadStream::open(&mut lp, dir.join("nope"), Default::default(), |_, _, _| {
        panic!("no data expected")
    })
    .unwrap();
    let l = log.clone();
    s.on_error(move |_lp, _s, e| push(&l, e.code()));
    let l = log.clone();
    s.on_end(move |_lp, _s| push(&l, "end"));
    let l = log.clone();
    s.on_close(move |_lp, _s| push(&l, "close"));
    lp.run().unwrap();
    assert_eq!(*log.borrow(), ["ENOENT", "close"]);
}

#[test]
fn paused_read_stream_does_not_keep_the_loop_alive_and_resumes_where_it_stopped() {
    let dir = TempDir::new("pause");
    let path = dir.join("f");
    pattern_file(&path, 10 * 1024);
    let chunks = Rc::new(RefCell::new(0usize));
    let mut lp = Loop::new().unwrap();
    let c = chunks.clone();
    let opts = ReadStreamOptions {
        chunk_size: 1024,
        ..Default::default()
    };
    let stream = ReadStream::open(&mut lp, &path, opts, move |_lp, s, _chunk| {
        *c.borrow_mut() += 1;
        if *c.borrow() == 3 {
            s.pause();
        }
    })
    .unwrap();
    // Paused after the third chunk: no request in flight, so run() returns.
    lp.run().unwrap();
    assert_eq!(*chunks.borrow(), 3);
    assert!(stream.is_paused());
    assert_eq!(stream.bytes_read(), 3 * 1024);
    stream.resume(&mut lp);
    lp.run().unwrap();
    assert_eq!(*chunks.borrow(), 10);
    assert_eq!(stream.bytes_read(), 10 * 1024);
}

#[test]
fn destroyed_read_stream_stops_delivering_and_closes() {
    let dir = TempDir::new("destroy");
    let path = dir.join("f");
    pattern_file(&path, 64 * 1024);
    let log = Log::default();
    let mut lp = Loop::new().unwrap();
    let l = log.clone();
    let opts = ReadStreamOptions {
        chunk_size: 1024,
        ..Default::default()
    };
    let stream = ReadStream::open(&mut lp, &path, opts, move |lp, s, _c| {
        push(&l, "data");
        s.destroy(lp);
    })
    .unwrap();
    let l = log.clone();
    stream.on_end(move |_lp, _s| push(&l, "end"));
    let l = log.clone();
    stream.on_close(move |_lp, _s| push(&l, "close"));
    lp.run().unwrap();
    assert_eq!(*log.borrow(), ["data", "close"]);
}

#[test]
fn pending_fs_request_keeps_the_loop_alive_until_its_callback() {
    let dir = TempDir::new("alive");
    let path = dir.join("f");
    std::fs::write(&path, b"x").unwrap();
    let mut lp = Loop::new().unwrap();
    let done = Rc::new(RefCell::new(false));
    let d = done.clone();
    fs::stat(&mut lp, &path, move |_lp, r| {
        r.expect("stat");
        *d.borrow_mut() = true;
    })
    .unwrap();
    assert!(lp.is_alive(), "a pending request keeps the loop alive");
    lp.run().unwrap();
    assert!(*done.borrow());
    assert!(!lp.is_alive());
}
