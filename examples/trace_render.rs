//! Draws a Chrome trace from `Loop::start_trace_file` as a self-contained SVG (or HTML) timeline:
//! `cargo run --example trace_render -- in.json out.svg [--title TEXT] [--max-spans N]`.
//!
//! Three rows: iterations, phases, and callbacks (with poll's waits hatched). The time axis is
//! *not linear*: a phase that ran nothing takes ~0.1 µs and a wait can take a second, so each
//! stretch between two events is drawn with a width that grows as duration^0.4, every span is
//! at least wide enough for its label, and waits are capped. Order and nesting are exact;
//! exact times are in each box's tooltip and in the labels of the longer spans. An output path
//! ending in `.html` gets the SVG wrapped in a page.
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::{env, fs, io, process};

use serde_json::Value;

#[derive(Debug, Clone)]
struct Span {
    name: String,
    cat: String,
    /// Start and end in ns (the trace's µs with three decimals, made integral).
    start: i64,
    end: i64,
}

const ROW_ITER: f64 = 40.0;
const ROW_PHASE: f64 = 64.0;
const ROW_CB: f64 = 92.0;
const ROW_H: f64 = 24.0;
const LEFT: f64 = 10.0;
const WAIT_MAX_PX: f64 = 56.0;
const CHAR_PX: f64 = 6.2;

fn ns(v: &Value) -> Option<i64> {
    v.as_f64().map(|us| (us * 1000.0).round() as i64)
}

fn parse(text: &str, max_spans: usize) -> Result<Vec<Span>, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let events = json["traceEvents"]
        .as_array()
        .ok_or("no traceEvents array")?;
    let mut spans: Vec<Span> = events
        .iter()
        .filter(|e| e["ph"] == "X")
        .filter_map(|e| {
            let start = ns(&e["ts"])?;
            Some(Span {
                name: e["name"].as_str()?.to_owned(),
                cat: e["cat"].as_str().unwrap_or("").to_owned(),
                start,
                end: start + ns(&e["dur"]).unwrap_or(0),
            })
        })
        .collect();
    // Parents first when they start together, so nesting reads top-down.
    spans.sort_by_key(|s| (s.start, -s.end));
    spans.truncate(max_spans);
    Ok(spans)
}

fn label_px(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_PX + 8.0
}

fn fmt_dur(ns: i64) -> String {
    match ns {
        n if n < 1_000 => format!("{n} ns"),
        n if n < 1_000_000 => format!("{:.1} µs", n as f64 / 1e3),
        n if n < 1_000_000_000 => format!("{:.1} ms", n as f64 / 1e6),
        n => format!("{:.2} s", n as f64 / 1e9),
    }
}

fn phase_color(name: &str) -> &'static str {
    match name {
        "timers" => "#f4a261",
        "pending" => "#e9c46a",
        "idle" | "prepare" => "#e5e5e5",
        "poll" => "#8ecae6",
        "check" => "#90be6d",
        "close" => "#d4a5b5",
        _ => "#cdb4db", // main, before-exit
    }
}

fn callback_color(name: &str) -> &'static str {
    match name {
        "timer" => "#e76f51",
        "immediate" => "#2a9d8f",
        "next-tick" => "#7b2cbf",
        "microtask" => "#d63384",
        "work" => "#1d70a2",
        "io" => "#3a7d44",
        _ => "#6c757d",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// x of every boundary: a monotone map from time to pixels (see the file comment).
fn layout(spans: &[Span]) -> (Vec<i64>, Vec<f64>) {
    let bounds: Vec<i64> = spans
        .iter()
        .flat_map(|s| [s.start, s.end])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index = |t: i64| bounds.binary_search(&t).expect("a boundary");
    // Minimum x distance from a span's start boundary to its end boundary.
    let mut min_to: Vec<Vec<(usize, f64)>> = vec![Vec::new(); bounds.len()];
    for s in spans {
        let min = match s.cat.as_str() {
            "wait" => 14.0,
            "iteration" => 0.0,
            _ => label_px(&s.name),
        };
        min_to[index(s.end)].push((index(s.start), min));
    }
    let in_wait = |a: i64, b: i64| {
        spans
            .iter()
            .any(|s| s.cat == "wait" && s.start <= a && b <= s.end)
    };
    let mut xs = vec![LEFT; bounds.len()];
    for i in 1..bounds.len() {
        let dt_us = (bounds[i] - bounds[i - 1]) as f64 / 1000.0;
        let mut w = 3.0 + 6.0 * dt_us.powf(0.4);
        if in_wait(bounds[i - 1], bounds[i]) {
            w = w.min(WAIT_MAX_PX);
        }
        let mut x = xs[i - 1] + w;
        for &(from, min) in &min_to[i] {
            x = x.max(xs[from] + min);
        }
        xs[i] = x;
    }
    (bounds, xs)
}

fn render(spans: &[Span], title: &str) -> String {
    let (bounds, xs) = layout(spans);
    let x_of = |t: i64| xs[bounds.binary_search(&t).expect("a boundary")];
    let width = xs.last().copied().unwrap_or(LEFT) + LEFT + 10.0;
    let height = ROW_CB + ROW_H + 56.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="ui-monospace, Menlo, Consolas, monospace" font-size="10">
<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f4f4f4"/><line x1="0" y1="0" x2="0" y2="6" stroke="#bbb" stroke-width="2"/></pattern></defs>
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="16" font-size="12" font-weight="bold">{}</text>
<text x="{LEFT}" y="30" fill="#666">iterations / phases / callbacks (hatched: poll waiting). Widths grow with duration^0.4, not to scale; hover for times.</text>
"##,
        esc(title)
    );
    let origin = spans.first().map_or(0, |s| s.start);
    for s in spans {
        let (x0, x1) = (x_of(s.start), x_of(s.end));
        let w = (x1 - x0).max(1.0);
        let dur = fmt_dur(s.end - s.start);
        let at = fmt_dur(s.start - origin);
        let (y, fill, text_fill) = match s.cat.as_str() {
            "iteration" => (ROW_ITER, "#f1f3f5", "#333"),
            "phase" => (ROW_PHASE, phase_color(&s.name), "#222"),
            "wait" => (ROW_CB, "url(#hatch)", "#555"),
            _ => (ROW_CB, callback_color(&s.name), "white"),
        };
        let h = if s.cat == "iteration" { 20.0 } else { ROW_H };
        let _ = writeln!(
            svg,
            r##"<g><title>{} ({}) at +{at}, {dur}</title><rect x="{x0:.1}" y="{y}" width="{w:.1}" height="{h}" rx="2" fill="{fill}" stroke="white" stroke-width="0.8"/>"##,
            esc(&s.name),
            s.cat,
        );
        let label = if s.cat == "wait" {
            format!("wait {dur}")
        } else {
            s.name.clone()
        };
        if label_px(&label) <= w + 0.5 {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="{text_fill}">{}</text>"##,
                x0 + 4.0,
                y + h / 2.0 + 3.5,
                esc(&label)
            );
        } else if s.cat == "wait" {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#555" font-size="8">{}</text>"##,
                x0 + 1.0,
                y + h + 10.0,
                esc(&dur)
            );
        }
        let _ = writeln!(svg, "</g>");
        // Long callbacks get their duration underneath: that is the stall.
        if s.cat == "callback" && s.end - s.start >= 1_000_000 {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#b00" font-size="9">{} ran {dur}</text>"##,
                x0 + 2.0,
                ROW_CB + ROW_H + 12.0,
                esc(&s.name)
            );
        }
    }
    // A time mark under each iteration start.
    for s in spans.iter().filter(|s| s.cat == "iteration") {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" fill="#888" font-size="8">+{}</text>"##,
            x_of(s.start) + 1.0,
            ROW_CB + ROW_H + 26.0,
            fmt_dur(s.start - origin)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn main() -> io::Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let positional: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|&(i, a)| {
            let is_value = i > 0 && matches!(args[i - 1].as_str(), "--title" | "--max-spans");
            !a.starts_with("--") && !is_value
        })
        .map(|(_, a)| a)
        .collect();
    let [input, output] = positional[..] else {
        eprintln!("usage: trace_render in.json out.svg|out.html [--title TEXT] [--max-spans N]");
        process::exit(2);
    };
    let max_spans = opt("--max-spans")
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    let text = fs::read_to_string(input)?;
    let spans = parse(&text, max_spans).unwrap_or_else(|e| {
        eprintln!("{input}: {e}");
        process::exit(1);
    });
    let title = opt("--title").unwrap_or_else(|| input.clone());
    let svg = render(&spans, &title);
    let out = if output.ends_with(".html") {
        format!(
            "<!doctype html><meta charset=\"utf-8\"><title>{}</title><body style=\"margin:0\">{svg}</body>\n",
            esc(&title)
        )
    } else {
        svg
    };
    fs::write(output, out)?;
    println!("{output}: {} spans", spans.len());
    Ok(())
}
