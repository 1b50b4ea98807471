//! Uploads against Express 5 + multer 2.5.0 (tests/node/multer_app.js, `upload.any()` with the
//! same limits): real `curl -F` forms go to both; the parsed fields and the files' field names,
//! original names, types and sizes must match, and a form multer refuses for a limit (mapped
//! to 413 by the twin's error handler, multer leaves the status to the app) is refused here
//! with 413 too.

mod express_twin;

use std::net::SocketAddr;

use express_twin::{serve_express, serve_oneloop};
use oneloop::app::multipart::{multipart, Multipart, MultipartLimits, MultipartOptions};
use oneloop::app::{App, AppError};
use serde_json::{json, Value};

fn oneloop_app() -> App {
    let mut app = App::new();
    let limits = MultipartLimits {
        file_size: 100_000,
        files: 2,
        field_size: 1_000,
        ..MultipartLimits::default()
    };
    let dest = std::env::temp_dir().join(format!("oneloop-multer-diff-{}", std::process::id()));
    app.use_mw(multipart(MultipartOptions { dest, limits }));
    app.post("/upload", |req, res| {
        let form = req.locals.get::<Multipart>().ok_or(AppError::new(400, "no form"))?;
        let files: Vec<Value> = form
            .files
            .iter()
            .map(|f| json!({"field": f.field, "name": f.filename, "type": f.content_type, "size": f.size}))
            .collect();
        res.json(&json!({"fields": form.fields, "files": files}));
        Ok(())
    });
    app
}

/// Status and JSON body of a `curl -F` upload; the fields sorted (multer groups repeated names).
fn upload(addr: SocketAddr, args: &[String]) -> (u16, Value) {
    let (code, body) = express_twin::curl(&format!("http://{addr}/upload"), args);
    let mut v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if let Some(fields) = v.get_mut("fields").and_then(Value::as_array_mut) {
        fields.sort_by_key(|f| f.to_string());
    }
    (code, v)
}

#[test]
fn forms_parse_as_multer_parses_them_and_limits_refuse_the_same_forms() {
    let (_twin, express) = serve_express("multer_app.js", &["multer", "express"]);
    let oneloop = serve_oneloop(oneloop_app);
    let dir = std::env::temp_dir().join(format!("oneloop-multer-src-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, len: usize| {
        let p = dir.join(name);
        std::fs::write(&p, vec![b'z'; len]).unwrap();
        p.display().to_string()
    };
    let (small, big, empty) = (
        file("small.txt", 1_000),
        file("big.bin", 150_000),
        file("e", 0),
    );
    let f = |s: String| vec!["-F".to_owned(), s];
    let cases: Vec<Vec<String>> = vec![
        [f("a=1".into()), f("b=two words".into()), f("a=3".into())].concat(),
        [f(format!("doc=@{small}")), f("title=x".into())].concat(),
        [f(format!(
            "doc=@{small};type=text/csv;filename=report \"q\".csv"
        ))]
        .concat(),
        [f(format!("doc=@{empty}")), f(format!("other=@{small}"))].concat(),
        [f(format!("doc=@{big}"))].concat(),
        [
            f(format!("a=@{small}")),
            f(format!("b=@{small}")),
            f(format!("c=@{small}")),
        ]
        .concat(),
        [f(format!("t={}", "y".repeat(2_000)))].concat(),
        // Non-ASCII values; non-ASCII *names* differ on purpose (busboy reads header parameters
        // as latin1, we as UTF-8, which is what browsers send: docs/app.md section 17).
        [f("cafe=cr\u{e8}me".into()), f("emoji=\u{1f600}".into())].concat(),
    ];
    for args in &cases {
        let theirs = upload(express, args);
        let ours = upload(oneloop, args);
        match theirs.0 {
            200 => assert_eq!(ours, theirs, "{args:?}"),
            status => assert_eq!(ours.0, status, "{args:?}: multer refused it ({})", theirs.1),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
