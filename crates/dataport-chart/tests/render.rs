//! What callers of `render` rely on: valid PNG and SVG of the asked size, a
//! picture for odd inputs (no bars, one bar, warm-up NaN, no volume), and
//! errors that name the bad field and value.

use dataport_chart::{ChartError, ChartOptions, Format, MAX_SIZE, MIN_SIZE, MacdLines, Panels, render};
use dataport_core::market::bars::{Bar, Date};

/// `n` weekday bars from 2013-01-01 on, a deterministic random walk around 100.
fn bars(n: usize) -> Vec<Bar> {
    let mut out = Vec::with_capacity(n);
    let (mut year, mut month, mut day, mut weekday) = (2013u16, 1u8, 1u8, 1u8); // 2013-01-01 was a Tuesday
    let mut close = 100.0;
    let mut seed = 12_345u64;
    while out.len() < n {
        if weekday < 5 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let step = ((seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 4.0;
            let open = close;
            close = (close + step).max(1.0);
            let date = Date::new(year, month, day).expect("the loop only builds real dates");
            let volume = Some(1_000_000.0 + (seed >> 44) as f64 * 100.0);
            out.push(Bar {
                date,
                open,
                high: open.max(close) + 1.0,
                low: open.min(close) - 1.0,
                close,
                volume,
                adj_close: None,
            });
        }
        weekday = (weekday + 1) % 7;
        day += 1;
        if Date::new(year, month, day).is_none() {
            day = 1;
            month += 1;
            if month > 12 {
                month = 1;
                year += 1;
            }
        }
    }
    out
}

/// MACD-like lines for `n` bars, NaN for the first `warm_up`.
fn lines(n: usize, warm_up: usize) -> [Vec<f64>; 3] {
    let value = |i: usize, k: f64| if i < warm_up { f64::NAN } else { (i as f64 * k).sin() };
    [
        (0..n).map(|i| value(i, 0.1)).collect(),
        (0..n).map(|i| value(i, 0.09)).collect(),
        (0..n).map(|i| value(i, 0.3)).collect(),
    ]
}

fn macd(lines: &[Vec<f64>; 3]) -> MacdLines<'_> {
    MacdLines { macd: &lines[0], signal: &lines[1], hist: &lines[2] }
}

fn options(width: u32, height: u32) -> ChartOptions {
    ChartOptions { width, height, title: "TEST daily, MACD(12, 26, 9)".to_owned(), ..ChartOptions::default() }
}

/// Decodes a PNG fully and returns its size.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().expect("a valid PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a sane PNG size")];
    let frame = reader.next_frame(&mut pixels).expect("valid PNG data");
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    (frame.width, frame.height)
}

fn render_png(bars: &[Bar], macd: MacdLines<'_>, options: &ChartOptions) -> (u32, u32) {
    png_size(&render(bars, macd, options).expect("renders"))
}

#[test]
fn png_decodes_at_the_asked_size() {
    let (b, l) = (bars(252), lines(252, 33));
    assert_eq!(render_png(&b, macd(&l), &options(1000, 700)), (1000, 700));
    assert_eq!(render_png(&b, macd(&l), &options(640, 480)), (640, 480));
}

#[test]
fn smallest_and_widest_sizes_render() {
    let (b, l) = (bars(60), lines(60, 0));
    assert_eq!(render_png(&b, macd(&l), &options(MIN_SIZE, MIN_SIZE)), (MIN_SIZE, MIN_SIZE));
    assert_eq!(render_png(&b, macd(&l), &options(MAX_SIZE, MIN_SIZE)), (MAX_SIZE, MIN_SIZE));
}

#[test]
fn svg_is_an_svg_with_the_title() {
    let (b, l) = (bars(100), lines(100, 33));
    let bytes =
        render(&b, macd(&l), &ChartOptions { format: Format::Svg, ..options(500, 350) }).expect("renders");
    let svg = String::from_utf8(bytes).expect("SVG is UTF-8");
    assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("TEST daily, MACD(12, 26, 9)"));
    assert!(svg.contains(r#"width="500""#) && svg.contains(r#"height="350""#));
}

#[test]
fn size_out_of_range_names_the_field_and_value() {
    let (b, l) = (bars(10), lines(10, 0));
    let err = render(&b, macd(&l), &options(MIN_SIZE - 1, 700)).expect_err("too narrow");
    assert_eq!(err, ChartError::Size { field: "width", value: MIN_SIZE - 1 });
    assert!(err.to_string().contains("width") && err.to_string().contains("199"), "{err}");
    let err = render(&b, macd(&l), &options(1000, MAX_SIZE + 1)).expect_err("too tall");
    assert_eq!(err, ChartError::Size { field: "height", value: MAX_SIZE + 1 });
    assert!(err.to_string().contains("height") && err.to_string().contains("4001"), "{err}");
    let err = render(&b, macd(&l), &options(0, 0)).expect_err("empty");
    assert_eq!(err, ChartError::Size { field: "width", value: 0 });
}

#[test]
fn no_panel_is_an_error() {
    let (b, l) = (bars(10), lines(10, 0));
    let none = Panels { price: false, volume: false, macd: false };
    let err = render(&b, macd(&l), &ChartOptions { panels: none, ..options(500, 350) })
        .expect_err("nothing to draw");
    assert_eq!(err, ChartError::NoPanel);
}

#[test]
fn macd_lines_of_another_length_are_an_error() {
    let (b, l) = (bars(10), lines(10, 0));
    let short = &l[2][..9];
    let err = render(&b, MacdLines { hist: short, ..macd(&l) }, &options(500, 350)).expect_err("misaligned");
    assert_eq!(err, ChartError::Length { field: "hist", len: 9, bars: 10 });
    assert!(err.to_string().contains("hist has 9 values but there are 10 bars"), "{err}");
    let err = render(&b, MacdLines::default(), &options(500, 350)).expect_err("missing");
    assert_eq!(err, ChartError::Length { field: "macd", len: 0, bars: 10 });
}

#[test]
fn macd_lines_are_not_needed_without_the_macd_panel() {
    let b = bars(10);
    let panels = Panels { macd: false, ..Panels::default() };
    let size = render_png(&b, MacdLines::default(), &ChartOptions { panels, ..options(800, 500) });
    assert_eq!(size, (800, 500));
}

#[test]
fn every_panel_combination_renders() {
    let (b, l) = (bars(120), lines(120, 33));
    for bits in 1..8u8 {
        let panels = Panels { price: bits & 1 != 0, volume: bits & 2 != 0, macd: bits & 4 != 0 };
        let size = render_png(&b, macd(&l), &ChartOptions { panels, ..options(500, 350) });
        assert_eq!(size, (500, 350), "{panels:?}");
    }
}

#[test]
fn zero_bars_render_a_chart_that_says_so() {
    let empty = MacdLines::default();
    assert_eq!(render_png(&[], empty, &options(500, 350)), (500, 350));
    let svg =
        render(&[], empty, &ChartOptions { format: Format::Svg, ..options(500, 350) }).expect("renders");
    let svg = String::from_utf8(svg).expect("SVG is UTF-8");
    assert!(svg.contains("no bars in this range"));
}

#[test]
fn a_single_bar_renders() {
    let (b, l) = (bars(1), lines(1, 0));
    assert_eq!(render_png(&b, macd(&l), &options(500, 350)), (500, 350));
}

#[test]
fn warm_up_nan_macd_renders() {
    let (b, partly, all) = (bars(50), lines(50, 33), lines(50, 50));
    assert_eq!(render_png(&b, macd(&partly), &options(500, 350)), (500, 350));
    assert_eq!(render_png(&b, macd(&all), &options(500, 350)), (500, 350));
}

#[test]
fn bars_without_volume_render() {
    let (mut b, l) = (bars(30), lines(30, 0));
    b[3].volume = None;
    assert_eq!(render_png(&b, macd(&l), &options(500, 350)), (500, 350));
    for bar in &mut b {
        bar.volume = None;
    }
    assert_eq!(render_png(&b, macd(&l), &options(500, 350)), (500, 350));
}

#[test]
fn flat_and_non_finite_values_render() {
    let (mut b, mut l) = (bars(30), lines(30, 0));
    for bar in &mut b {
        (bar.open, bar.high, bar.low, bar.close) = (5.0, 5.0, 5.0, 5.0);
    }
    b[7].high = f64::INFINITY;
    b[8].close = f64::NAN;
    b[9].volume = Some(f64::NAN);
    l[0][10] = f64::INFINITY;
    assert_eq!(render_png(&b, macd(&l), &options(500, 350)), (500, 350));
}

#[test]
fn long_titles_are_shortened_not_dropped() {
    let (b, l) = (bars(20), lines(20, 0));
    let title = "A VERY LONG SYMBOL NAME ".repeat(10);
    let svg = render(&b, macd(&l), &ChartOptions { title, format: Format::Svg, ..options(500, 350) })
        .expect("renders");
    let svg = String::from_utf8(svg).expect("SVG is UTF-8");
    assert!(svg.contains("A VERY LONG SYMBOL NAME") && svg.contains('…'));
}

#[test]
fn two_thousand_bars_render() {
    let (b, l) = (bars(2000), lines(2000, 33));
    assert_eq!(render_png(&b, macd(&l), &options(500, 350)), (500, 350));
}

/// The text elements of an SVG, as (start tag, text).
fn svg_texts(svg: &str) -> Vec<(&str, &str)> {
    svg.split("<text ")
        .skip(1)
        .filter_map(|rest| {
            let (tag, rest) = rest.split_once('>')?;
            let (text, _) = rest.split_once("</text>")?;
            Some((tag, text.trim()))
        })
        .collect()
}

/// A numeric attribute of an SVG tag.
fn attr(tag: &str, name: &str) -> Option<f64> {
    let tag = format!(" {tag}");
    let (_, rest) = tag.split_once(&format!(" {name}=\""))?;
    rest.split('"').next()?.parse().ok()
}

/// The rectangles of an SVG whose tag contains `marker` (a fill or stroke),
/// as [x, y, width, height].
fn svg_rects(svg: &str, marker: &str) -> Vec<[f64; 4]> {
    svg.split("<rect ")
        .skip(1)
        .filter_map(|rest| rest.split_once("/>").map(|(tag, _)| tag))
        .filter(|tag| tag.contains(marker))
        .filter_map(|tag| Some([attr(tag, "x")?, attr(tag, "y")?, attr(tag, "width")?, attr(tag, "height")?]))
        .collect()
}

/// The panels' frames, top to bottom.
fn frames(svg: &str) -> Vec<[f64; 4]> {
    svg_rects(svg, r##"fill="none" stroke="#AAAAAA""##)
}

/// The value labels left of the panel in `frame`, top to bottom.
fn y_labels(svg: &str, [x, y, _, h]: [f64; 4]) -> Vec<String> {
    let mut labels: Vec<(f64, String)> = svg_texts(svg)
        .into_iter()
        .filter(|(tag, _)| tag.contains(r#"text-anchor="end""#))
        .filter_map(|(tag, text)| Some((attr(tag, "x")?, attr(tag, "y")?, text)))
        .filter(|(lx, ly, _)| *lx < x && *ly >= y - 1.0 && *ly <= y + h + 1.0)
        .map(|(_, ly, text)| (ly, text.to_owned()))
        .collect();
    labels.sort_by(|a, b| a.0.total_cmp(&b.0));
    labels.into_iter().map(|(_, text)| text).collect()
}

fn svg(bars: &[Bar], macd: MacdLines<'_>, options: &ChartOptions) -> String {
    let bytes =
        render(bars, macd, &ChartOptions { format: Format::Svg, ..options.clone() }).expect("renders");
    String::from_utf8(bytes).expect("SVG is UTF-8")
}

#[test]
fn the_volume_axis_shows_a_scale_from_zero() {
    let (mut b, l) = (bars(252), lines(252, 33));
    // Highest volumes from under one share to tens of trillions; 6.5M gave
    // one label alone (5M) before the volume axis counted from 0.
    for top in [0.004, 6.5, 22_000.0, 6.5e6, 1.2e8, 4.4e9, 7.7e13] {
        for (i, bar) in b.iter_mut().enumerate() {
            bar.volume = Some(top * (0.3 + 0.7 * (i % 10) as f64 / 9.0));
        }
        for (width, height) in [(1000, 700), (800, 500)] {
            let svg = svg(&b, macd(&l), &options(width, height));
            let frames = frames(&svg);
            assert_eq!(frames.len(), 3, "{frames:?}");
            let labels = y_labels(&svg, frames[1]);
            assert!(labels.len() >= 3, "top {top}, {width}x{height}: {labels:?}");
            assert_eq!(labels.last().map(String::as_str), Some("0"), "top {top}: {labels:?}");
        }
    }
}

#[test]
fn candles_keep_clear_of_the_frame() {
    for n in [1, 5, 20, 252] {
        let (b, l) = (bars(n), lines(n, 0));
        let svg = svg(&b, macd(&l), &options(1000, 700));
        let [x, _, w, _] = frames(&svg)[0];
        let mut bodies = svg_rects(&svg, r##"fill="#26A69A""##);
        bodies.extend(svg_rects(&svg, r##"fill="#EF5350""##));
        assert!(!bodies.is_empty(), "{n} bars");
        let left = bodies.iter().map(|r| r[0]).fold(f64::INFINITY, f64::min);
        let right = bodies.iter().map(|r| r[0] + r[2]).fold(0.0, f64::max);
        let body = bodies.iter().map(|r| r[2]).fold(0.0, f64::max);
        // At least half a candle's width of air on each side.
        assert!(left - x >= body / 2.0, "{n} bars: frame at {x}, first body at {left}, {body} wide");
        assert!(x + w - right >= body / 2.0, "{n} bars: frame ends at {}, last body at {right}", x + w);
    }
}
