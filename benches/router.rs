//! Lookup cost with 100 routes: 50 static, 40 with 1-2 params, 10 wildcards.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use oneloop::app::router::{Match, Router};

const RESOURCES: [&str; 10] = [
    "users", "products", "orders", "carts", "invoices", "reviews", "stores", "teams", "projects",
    "tickets",
];

fn table() -> Router<usize> {
    let mut r = Router::new();
    let mut n = 0;
    let mut add = |r: &mut Router<usize>, m: &str, p: String| {
        r.insert(m, &p, n).unwrap();
        n += 1;
    };
    for res in RESOURCES {
        // 5 static each = 50
        add(&mut r, "GET", format!("/api/{res}"));
        add(&mut r, "POST", format!("/api/{res}"));
        add(&mut r, "GET", format!("/api/{res}/search"));
        add(&mut r, "GET", format!("/api/{res}/stats"));
        add(&mut r, "GET", format!("/admin/{res}/export"));
        // 4 with params each = 40
        add(&mut r, "GET", format!("/api/{res}/:id"));
        add(&mut r, "PUT", format!("/api/{res}/:id"));
        add(&mut r, "GET", format!("/api/{res}/:id/items/:itemId"));
        add(&mut r, "DELETE", format!("/api/{res}/:id/items/:itemId"));
        // 1 wildcard each = 10
        add(&mut r, "GET", format!("/files/{res}/*path"));
    }
    assert_eq!(r.len(), 100);
    r
}

fn bench(c: &mut Criterion) {
    let r = table();
    let cases = [
        ("static_hit", "/api/products/search"),
        ("two_param_hit", "/api/orders/12345/items/678"),
        ("wildcard_hit", "/files/tickets/2024/03/report.pdf"),
        ("miss", "/api/nothing/here"),
    ];
    for (name, path) in cases {
        c.bench_function(name, |b| {
            b.iter(|| match r.lookup(black_box("GET"), black_box(path)) {
                Match::Found { value, params } => value + params.len(),
                _ => 0,
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
