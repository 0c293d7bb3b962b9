//! Dataport's market chart: one symbol's daily bars drawn as candlesticks, a
//! volume strip and a MACD panel on one trading-day axis, returned as PNG or
//! SVG bytes. It owns the look of the chart (layout, colours, ticks, labels)
//! and the encoding; the caller owns the data, including the MACD lines, which
//! it computes over the whole history so the visible part has no warm-up gap.
//! It must never do I/O or anything async: [`render`] is a pure, blocking
//! function of its arguments, so a server runs it on `spawn_blocking`.
//!
//! Text is drawn with [ab_glyph] from a font compiled into the crate, DejaVu
//! Sans 2.37 (from Debian's `fonts-dejavu-core`), under the Bitstream Vera
//! license with the DejaVu and Arev additions (`fonts/LICENSE`): no system
//! font library is loaded. PNG text is laid out by `text::Glyphs`, because
//! plotters 0.3.7's own ab_glyph drawing drops glyph bearings ("1 5.1 6").
//!
//! [ab_glyph]: https://docs.rs/ab_glyph

use std::sync::OnceLock;

use dataport_core::market::bars::Bar;
use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};
use plotters::style::FontStyle;

mod draw;
mod shapes;
mod text;
mod ticks;

/// The smallest width or height, in pixels.
pub const MIN_SIZE: u32 = 200;
/// The largest width or height, in pixels (a 4000x4000 PNG is 48 MB of RGB while drawn).
pub const MAX_SIZE: u32 = 4000;

/// The encoding of the chart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    #[default]
    Png,
    Svg,
}

/// Which panels to draw, top to bottom; the ones left out give their height
/// to the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Panels {
    pub price: bool,
    pub volume: bool,
    pub macd: bool,
}

impl Default for Panels {
    fn default() -> Self {
        Panels { price: true, volume: true, macd: true }
    }
}

/// How to draw: size in pixels, encoding, panels, and the title line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChartOptions {
    pub width: u32,
    pub height: u32,
    pub format: Format,
    pub panels: Panels,
    /// Drawn centred on top, shortened with "…" if too wide; empty draws none.
    pub title: String,
}

impl Default for ChartOptions {
    fn default() -> Self {
        ChartOptions {
            width: 1000,
            height: 700,
            format: Format::Png,
            panels: Panels::default(),
            title: String::new(),
        }
    }
}

/// The MACD lines aligned with the bars: element `i` belongs to `bars[i]`,
/// NaN where there is no value (the warm-up). Only read when the MACD panel is
/// drawn; otherwise `MacdLines::default()` (empty) will do.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MacdLines<'a> {
    pub macd: &'a [f64],
    pub signal: &'a [f64],
    pub hist: &'a [f64],
}

/// Why a chart was not drawn.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    #[error("{field} must be {MIN_SIZE} to {MAX_SIZE} pixels, not {value}")]
    Size { field: &'static str, value: u32 },
    #[error("no panel chosen: draw at least one of price, volume and MACD")]
    NoPanel,
    #[error("{field} has {len} values but there are {bars} bars: pass the MACD lines aligned with the bars")]
    Length { field: &'static str, len: usize, bars: usize },
    #[error("drawing the chart failed: {0}")]
    Drawing(String),
}

/// Draws `bars` (oldest first) with their MACD lines as one chart.
///
/// Zero bars is not an error: the chart then says "no bars in this range", so a
/// client that expects a picture gets one.
pub fn render(bars: &[Bar], macd: MacdLines<'_>, options: &ChartOptions) -> Result<Vec<u8>, ChartError> {
    check(bars, macd, options)?;
    let (width, height) = (options.width, options.height);
    match options.format {
        Format::Png => {
            let rgb = draw_rgb(bars, macd, options)?;
            encode_png(&rgb, width, height)
        }
        Format::Svg => {
            register_font()?;
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
                draw::chart(&root, bars, macd, options).map_err(drawing)?;
            }
            Ok(svg.into_bytes())
        }
    }
}

fn check(bars: &[Bar], macd: MacdLines<'_>, options: &ChartOptions) -> Result<(), ChartError> {
    for (field, value) in [("width", options.width), ("height", options.height)] {
        if !(MIN_SIZE..=MAX_SIZE).contains(&value) {
            return Err(ChartError::Size { field, value });
        }
    }
    let panels = options.panels;
    if !(panels.price || panels.volume || panels.macd) {
        return Err(ChartError::NoPanel);
    }
    if panels.macd {
        for (field, line) in [("macd", macd.macd), ("signal", macd.signal), ("hist", macd.hist)] {
            if line.len() != bars.len() {
                return Err(ChartError::Length { field, len: line.len(), bars: bars.len() });
            }
        }
    }
    Ok(())
}

/// The chart as 8-bit RGB rows, top first (checked options only).
fn draw_rgb(bars: &[Bar], macd: MacdLines<'_>, options: &ChartOptions) -> Result<Vec<u8>, ChartError> {
    let font = font()?;
    let (width, height) = (options.width, options.height);
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    {
        let bitmap = BitMapBackend::with_buffer(&mut rgb, (width, height));
        let root = text::Glyphs::new(bitmap, font).into_drawing_area();
        draw::chart(&root, bars, macd, options).map_err(drawing)?;
    }
    Ok(rgb)
}

/// PNG settings, chosen by measuring a year of bars at 1000x700 (the ignored
/// `timing::png_settings` test prints the table; release build, 2-core VM):
/// zlib level 1 with the Up filter gave 57 KB in 1.6 ms; fdeflate gave 75 KB
/// in 0.6 ms (Paeth); level 2 gave 42 KB but took 8 ms, and level 6 (the png
/// crate's default) 39 KB in 15 ms, ten times the cost of drawing the chart.
const PNG_DEFLATE: png::DeflateCompression = png::DeflateCompression::Level(1);
const PNG_FILTER: png::Filter = png::Filter::Up;

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    encode_png_with(rgb, width, height, PNG_DEFLATE, PNG_FILTER)
}

fn encode_png_with(
    rgb: &[u8],
    width: u32,
    height: u32,
    deflate: png::DeflateCompression,
    filter: png::Filter,
) -> Result<Vec<u8>, ChartError> {
    let failed = |e: png::EncodingError| ChartError::Drawing(format!("PNG encoding: {e}"));
    let mut out = Vec::with_capacity(rgb.len() / 16);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_deflate_compression(deflate);
    encoder.set_filter(filter);
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(rgb).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

fn drawing(e: impl std::fmt::Display) -> ChartError {
    ChartError::Drawing(e.to_string())
}

/// DejaVu Sans. The bitmap is drawn with it ([`text::Glyphs`]); plotters also
/// knows it as its "sans-serif" family to measure SVG text, which names the
/// generic family so viewers use their own sans font.
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

fn font() -> Result<ab_glyph::FontRef<'static>, ChartError> {
    static PARSED: OnceLock<Option<ab_glyph::FontRef<'static>>> = OnceLock::new();
    PARSED
        .get_or_init(|| ab_glyph::FontRef::try_from_slice(FONT).ok())
        .clone()
        .ok_or_else(|| ChartError::Drawing("the bundled font DejaVu Sans did not load".to_owned()))
}

fn register_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(ChartError::Drawing("the bundled font DejaVu Sans did not load".to_owned())) }
}

#[cfg(test)]
mod timing;

#[cfg(test)]
mod tests_support {
    /// Owned MACD lines for tests.
    #[derive(Debug)]
    pub(crate) struct Lines {
        pub macd: Vec<f64>,
        pub signal: Vec<f64>,
        pub hist: Vec<f64>,
    }
}
