//! Uploads over real sockets: real `curl -F` sends forms to a oneloop app with the multipart
//! middleware; files land in the destination byte for byte; limits answer 413, broken forms
//! 400; and no file is left behind by a failed or abandoned upload.

mod express_twin;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use express_twin::serve_oneloop;
use oneloop::app::multipart::{multipart, Multipart, MultipartLimits, MultipartOptions};
use oneloop::app::{App, AppError};
use serde_json::json;

fn dest(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("oneloop-upload-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn app(dest: PathBuf, limits: MultipartLimits) -> impl FnOnce() -> App + Send {
    move || {
        let mut app = App::new();
        app.use_mw(multipart(MultipartOptions { dest, limits }));
        app.post("/upload", |req, res| {
            let form = req
                .locals
                .get::<Multipart>()
                .ok_or(AppError::new(400, "no form"))?;
            let files: Vec<_> = form
                .files
                .iter()
                .map(|f| {
                    json!({"field": f.field, "name": f.filename, "type": f.content_type,
                                "size": f.size, "path": f.path})
                })
                .collect();
            res.json(&json!({"fields": form.fields, "files": files}));
            Ok(())
        });
        app
    }
}

fn curl(addr: SocketAddr, args: &[&str]) -> (u16, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    express_twin::curl(&format!("http://{addr}/upload"), &args)
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Waits (bounded) until `dir` holds `n` files.
fn settle(dir: &Path, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while files_in(dir) != n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    files_in(dir)
}

#[test]
fn curl_uploads_land_byte_for_byte_with_their_fields() {
    let dir = dest("ok");
    let addr = serve_oneloop(app(dir.clone(), MultipartLimits::default()));
    let src = std::env::temp_dir().join(format!("oneloop-src-{}.bin", std::process::id()));
    let content: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &content).unwrap();
    let (status, body) = curl(
        addr,
        &[
            "-F",
            "title=Blue mug",
            "-F",
            "price=12.50",
            "-F",
            &format!(
                "image=@{};type=image/png;filename=mug \"1\".png",
                src.display()
            ),
            "-F",
            "notes=<-;type=text/plain",
        ],
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["fields"][0], json!(["title", "Blue mug"]));
    assert_eq!(v["fields"][1], json!(["price", "12.50"]));
    let file = &v["files"][0];
    assert_eq!(file["field"], "image");
    assert_eq!(file["type"], "image/png");
    assert_eq!(file["size"], 3_000_000);
    let stored = std::fs::read(file["path"].as_str().unwrap()).unwrap();
    assert!(stored == content, "the stored file differs from the upload");
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn limits_answer_413_and_leave_no_file_behind() {
    let dir = dest("limits");
    let limits = MultipartLimits {
        file_size: 100_000,
        files: 2,
        field_size: 1_000,
        ..MultipartLimits::default()
    };
    let addr = serve_oneloop(app(dir.clone(), limits));
    let src = std::env::temp_dir().join(format!("oneloop-big-{}.bin", std::process::id()));
    std::fs::write(&src, vec![7u8; 200_000]).unwrap();
    let small = std::env::temp_dir().join(format!("oneloop-small-{}.bin", std::process::id()));
    std::fs::write(&small, b"tiny").unwrap();
    let big = format!("f=@{}", src.display());
    let tiny = format!("f=@{}", small.display());
    let long_field = format!("t={}", "x".repeat(2_000));
    for args in [
        vec!["-F", tiny.as_str(), "-F", big.as_str()],
        vec![
            "-F",
            tiny.as_str(),
            "-F",
            tiny.as_str(),
            "-F",
            tiny.as_str(),
        ],
        vec!["-F", tiny.as_str(), "-F", long_field.as_str()],
    ] {
        let (status, body) = curl(addr, &args);
        assert_eq!(status, 413, "{args:?}: {body}");
        assert_eq!(settle(&dir, 0), 0, "{args:?}: files left behind");
    }
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&small);
}

#[test]
fn broken_forms_answer_400() {
    let dir = dest("broken");
    let addr = serve_oneloop(app(dir.clone(), MultipartLimits::default()));
    // Written raw: the bodies are the point.
    let raw = |ct: &str, body: &[u8]| -> u16 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut out);
        String::from_utf8_lossy(&out)[9..12].parse().unwrap_or(0)
    };
    let ct = "multipart/form-data; boundary=B";
    assert_eq!(
        raw(
            ct,
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated"
        ),
        400
    );
    assert_eq!(raw(ct, b"no boundary anywhere"), 400);
    assert_eq!(raw(ct, b"--B\r\nContent-Type: x\r\n\r\nv\r\n--B--"), 400);
    assert_eq!(raw("multipart/form-data", b"--B--"), 400);
    assert_eq!(
        raw(ct, b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\npartial file"),
        400
    );
    assert_eq!(settle(&dir, 0), 0, "a broken upload leaves no file");
}

#[test]
fn a_client_that_goes_away_mid_upload_leaves_no_file() {
    let dir = dest("abort");
    let addr = serve_oneloop(app(dir.clone(), MultipartLimits::default()));
    let mut s = TcpStream::connect(addr).unwrap();
    let head = "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 5000000\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n\r\n";
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&vec![1u8; 1_000_000]).unwrap();
    assert_eq!(settle(&dir, 1), 1, "the file is being written");
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    assert_eq!(settle(&dir, 0), 0, "removed once the client left");
}
