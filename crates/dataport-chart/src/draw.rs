//! The drawing itself, for any plotters backend: layout, panels, axes, marks.
//!
//! Every size is derived from one text size that grows with the picture, so a
//! 500x350 chart and a 2000x1400 one look alike. The x axis is the bar index
//! (trading days: weekends and holidays leave no gaps), shared by every panel.

use std::ops::Range;

use dataport_core::market::bars::Bar;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::shapes::Shape;
use crate::ticks::{self, XTick};
use crate::{ChartOptions, MacdLines};

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

const UP: RGBColor = RGBColor(38, 166, 154);
const DOWN: RGBColor = RGBColor(239, 83, 80);
const MACD_LINE: RGBColor = RGBColor(41, 98, 255);
const SIGNAL_LINE: RGBColor = RGBColor(255, 109, 0);
const INK: RGBColor = RGBColor(40, 40, 40);
const MUTED: RGBColor = RGBColor(110, 110, 110);
const FRAME: RGBColor = RGBColor(170, 170, 170);
const GRID: RGBColor = RGBColor(234, 234, 234);
const ZERO: RGBColor = RGBColor(140, 140, 140);

/// A colour blended with white, opaque: volume and histogram columns are
/// lighter than candles, and opaque pixels are cheaper than alpha blending.
fn light(color: RGBColor, amount: f64) -> RGBColor {
    let mix = |c: u8| (f64::from(c) * amount + 255.0 * (1.0 - amount)).round() as u8;
    RGBColor(mix(color.0), mix(color.1), mix(color.2))
}

/// The message drawn instead of an empty chart.
pub(crate) const NO_BARS: &str = "no bars in this range";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Panel {
    Price,
    Volume,
    Macd,
}

impl Panel {
    /// Share of the height, relative to the other panels shown.
    fn weight(self) -> f64 {
        match self {
            Panel::Price => 0.55,
            Panel::Volume => 0.15,
            Panel::Macd => 0.30,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Panel::Price => "Price",
            Panel::Volume => "Volume",
            Panel::Macd => "MACD",
        }
    }
}

/// One axis: a linear range whose grid lines and labels sit exactly at the
/// ticks we chose (plotters' own key points would put dates at fractional
/// bar indices and prices at steps we cannot predict the decimals of).
#[derive(Clone, Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.lo) / (self.hi - self.lo);
        let pixel = f64::from(limit.0) + t * f64::from(limit.1 - limit.0);
        // Out-of-range values land off the picture, never wrap around.
        if pixel.is_finite() { pixel.round().clamp(-1e6, 1e6) as i32 } else { limit.0 }
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold points only: the light grid lines would be extra noise.
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Axis {
    // Every mesh below passes its own formatter; this is only a safe fallback.
    fn format(value: &f64) -> String {
        value.to_string()
    }
}

/// Sizes shared by every part of the picture.
struct Style {
    /// Text size in pixels; every other size follows from it.
    text: f64,
    stroke: u32,
    tick: i32,
}

impl Style {
    fn font(&self, scale: f64, color: RGBColor) -> TextStyle<'static> {
        let font = FontDesc::new(FontFamily::SansSerif, (self.text * scale).round(), FontStyle::Normal);
        TextStyle { color: color.to_backend_color(), ..TextStyle::from(font) }
    }
}

/// One panel's vertical place and y axis, decided before anything is drawn so
/// that every panel can share one left margin wide enough for all labels.
struct PanelPlan {
    panel: Panel,
    top: u32,
    height: u32,
    axis: Axis,
    labels: Vec<String>,
}

pub(crate) fn chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    bars: &[Bar],
    macd: MacdLines<'_>,
    options: &ChartOptions,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (width, height) = root.dim_in_pixel();
    let (w, h) = (f64::from(width), f64::from(height));
    let scale = (w * h / (1000.0 * 700.0)).sqrt();
    let text = (13.0 * scale).clamp(10.0, 34.0).round();
    let style =
        Style { text, stroke: (1.4 * scale).round().max(1.0) as u32, tick: (text * 0.35).round() as i32 };
    let label = style.font(1.0, INK);
    let pad = (text * 0.8).round();

    let top =
        if options.title.trim().is_empty() { pad } else { draw_title(root, &options.title, &style, w)? };

    if bars.is_empty() {
        let message = style.font(1.4, MUTED).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text(NO_BARS, &message, ((w / 2.0) as i32, ((top + h) / 2.0) as i32))?;
        return root.present();
    }

    // Vertical layout: panels share what the title and the date labels leave.
    let bottom_labels = (f64::from(style.tick) * 2.0 + text * 1.2 + pad * 0.5).round();
    let plans =
        plan_panels(options, bars, macd, (top, h - top - bottom_labels - pad * 0.25), bottom_labels, text);

    // Horizontal layout: one left margin for all panels, so their x axes line up.
    let widest = plans
        .iter()
        .flat_map(|p| p.labels.iter())
        .map(|s| text_width(root, s, &label, text))
        .fold(0.0, f64::max);
    let outer = (pad * 0.6).round();
    let label_area = (text * 1.3 + pad * 0.5 + widest + f64::from(style.tick) * 2.0).round();
    let left = outer + label_area;
    let right = (pad * 1.5).round();
    let plot_w = (w - left - right).max(1.0);

    let (x_lo, x_hi) = x_range(bars.len());
    let per_bar = plot_w / (x_hi - x_lo);
    let body = candle_width(per_bar, text);
    let x_of = |i: usize| left + (i as f64 - x_lo) / (x_hi - x_lo) * plot_w;
    let x_ticks = ticks::x_ticks(
        bars,
        x_of,
        |s| text_width(root, s, &label, text),
        text * 1.5,
        (pad * 0.5, w - pad * 0.25),
    );
    let x_axis = Axis { lo: x_lo, hi: x_hi, ticks: x_ticks.iter().map(|t| t.index as f64).collect() };

    let last = plans.len().saturating_sub(1);
    for (i, plan) in plans.iter().enumerate() {
        let area = root.clone().shrink((0, plan.top), (width, plan.height));
        let bottom = if i == last { bottom_labels as u32 } else { 0 };
        let mut chart = ChartBuilder::on(&area)
            .margin_left(outer as u32)
            .set_label_area_size(LabelAreaPosition::Left, label_area as u32)
            .set_label_area_size(LabelAreaPosition::Bottom, bottom)
            .margin_right(right as u32)
            .build_cartesian_2d(x_axis.clone(), plan.axis.clone())?;
        draw_mesh(&mut chart, plan, &x_ticks, &style, i == last)?;
        match plan.panel {
            Panel::Price => draw_price(&mut chart, bars, body, &style)?,
            Panel::Volume => draw_volume(&mut chart, bars, body)?,
            Panel::Macd => draw_macd(&mut chart, macd, body, &style)?,
        }
        let frame = [(x_lo, plan.axis.lo), (x_hi, plan.axis.hi)];
        chart.plotting_area().draw(&Rectangle::new(frame, FRAME.stroke_width(1)))?;
    }
    root.present()
}

/// The panels `options` asks for, stacked from `top` down through
/// `available` pixels (the last one also holding the `bottom_labels` below
/// it), each with its value axis and tick labels.
fn plan_panels(
    options: &ChartOptions,
    bars: &[Bar],
    macd: MacdLines<'_>,
    (top, available): (f64, f64),
    bottom_labels: f64,
    text: f64,
) -> Vec<PanelPlan> {
    let panels: Vec<Panel> = [
        (options.panels.price, Panel::Price),
        (options.panels.volume, Panel::Volume),
        (options.panels.macd, Panel::Macd),
    ]
    .into_iter()
    .filter_map(|(on, panel)| on.then_some(panel))
    .collect();
    let gap = (text * 0.6).round();
    let available = (available - gap * (panels.len() as f64 - 1.0)).max(1.0);
    let total_weight: f64 = panels.iter().map(|p| p.weight()).sum();
    let mut plans = Vec::with_capacity(panels.len());
    let mut y = top;
    for (i, &panel) in panels.iter().enumerate() {
        let mut panel_h = (available * panel.weight() / total_weight).floor();
        if i == panels.len() - 1 {
            panel_h += bottom_labels;
        }
        let plot_h = if i == panels.len() - 1 { panel_h - bottom_labels } else { panel_h };
        let (lo, hi) = y_range(panel, bars, macd, plot_h, text);
        let target = (plot_h / (text * 2.2)).floor().clamp(3.0, 10.0) as usize;
        // Labels are centred on their tick: keep them off the panel's edges,
        // where they would run into the neighbouring panel's labels.
        let per_px = (hi - lo) / plot_h.max(1.0);
        let margin = text * 0.7 * per_px;
        let (values, step): (Vec<f64>, f64) = match panel {
            // Volume columns stand on the panel's floor, 0, which gets the
            // first label: a short strip still shows a scale (0, 50M, 100M).
            Panel::Volume => ticks::zero_based_ticks(hi - margin, target, text * 1.2 * per_px),
            Panel::Price | Panel::Macd => {
                let (values, step) = ticks::nice_ticks(lo, hi, target);
                (values.into_iter().filter(|v| *v >= lo + margin && *v <= hi - margin).collect(), step)
            }
        };
        let labels = values.iter().map(|v| y_label(panel, *v, step, &values)).collect();
        plans.push(PanelPlan {
            panel,
            top: y as u32,
            height: panel_h as u32,
            axis: Axis { lo, hi, ticks: values },
            labels,
        });
        y += panel_h + gap;
    }
    plans
}

/// Draws the title centred on top, shortened with an ellipsis if it is wider
/// than the picture; returns the height it took.
fn draw_title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    style: &Style,
    w: f64,
) -> Result<f64, DrawingAreaErrorKind<DB::ErrorType>> {
    let font = style.font(1.3, INK);
    let shown = shorten(root, title.trim(), &font, style.text * 1.3, w - style.text * 2.0);
    let height = (style.text * 1.3 * 2.0).round();
    let centred = font.pos(Pos::new(HPos::Center, VPos::Center));
    root.draw_text(&shown, &centred, ((w / 2.0) as i32, (height * 0.55) as i32))?;
    Ok(height)
}

/// `text`, or as much of it as fits in `room` pixels followed by "…".
fn shorten<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
    font: &TextStyle,
    size: f64,
    room: f64,
) -> String {
    if text_width(root, text, font, size) <= room {
        return text.to_owned();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while chars.pop().is_some() {
        let kept: String = chars.iter().collect();
        let candidate = format!("{}…", kept.trim_end());
        if text_width(root, &candidate, font, size) <= room {
            return candidate;
        }
    }
    String::new()
}

/// Width of `s` in pixels; an estimate from the text size if the font cannot say.
fn text_width<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &str,
    font: &TextStyle,
    size: f64,
) -> f64 {
    match root.estimate_text_size(s, font) {
        Ok((width, _)) => f64::from(width),
        Err(_) => s.chars().count() as f64 * size * 0.62,
    }
}

/// The x axis for `n` bars at indices 0..n: a bar slot of air before the first
/// and after the last (1% of the bars when that is more), so no candle or
/// column touches the frame and a lone bar stands in the middle.
fn x_range(n: usize) -> (f64, f64) {
    let n = n as f64;
    let extra = (n * 0.01).max(1.0);
    (-extra, n - 1.0 + extra)
}

/// Candle body width: most of a bar's slot, odd so the wick sits in the
/// middle, and not absurdly wide when there are only a few bars.
fn candle_width(per_bar: f64, text: f64) -> u32 {
    let mut body = (per_bar * 0.72).floor().min(text * 2.5).max(1.0) as u32;
    if body > 2 && body.is_multiple_of(2) {
        body -= 1;
    }
    body
}

/// The y range of a panel, padded so nothing touches the frame and the top
/// row stays free for the panel's header line (the last bar, the MACD legend).
fn y_range(panel: Panel, bars: &[Bar], macd: MacdLines<'_>, plot_h: f64, text: f64) -> (f64, f64) {
    let finite = |v: &f64| v.is_finite();
    let (lo, hi) = match panel {
        Panel::Price => min_max(bars.iter().flat_map(|b| [b.open, b.high, b.low, b.close]).filter(finite)),
        Panel::Volume => {
            let top = bars
                .iter()
                .filter_map(|b| b.volume)
                .filter(|v| v.is_finite() && *v > 0.0)
                .fold(0.0, f64::max);
            // Columns stand on the frame; only the top gets air.
            return (0.0, if top > 0.0 { top * 1.08 } else { 1.0 });
        }
        Panel::Macd => {
            min_max(macd.macd.iter().chain(macd.signal).chain(macd.hist).copied().filter(finite).chain([0.0]))
        }
    };
    let (lo, hi) = match (lo, hi) {
        (Some(lo), Some(hi)) if hi > lo => (lo, hi),
        (Some(v), Some(_)) => {
            let half = (v.abs() * 0.01).max(1e-6);
            (v - half, v + half)
        }
        _ => (0.0, 1.0),
    };
    let (top_px, bottom_px) = (text * 2.0, text * 0.6);
    let per_px = (hi - lo) / (plot_h - top_px - bottom_px).max(plot_h * 0.3).max(1.0);
    (lo - bottom_px * per_px, hi + top_px * per_px)
}

fn min_max(values: impl Iterator<Item = f64>) -> (Option<f64>, Option<f64>) {
    values.fold((None, None), |(lo, hi), v| {
        (Some(lo.map_or(v, |l: f64| l.min(v))), Some(hi.map_or(v, |h: f64| h.max(v))))
    })
}

fn y_label(panel: Panel, value: f64, step: f64, ticks: &[f64]) -> String {
    match panel {
        Panel::Volume => {
            let largest = ticks.iter().copied().fold(0.0, f64::max);
            ticks::compact(value, step, largest)
        }
        Panel::Price | Panel::Macd => ticks::fixed(value, ticks::decimals(step)),
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Axis, Axis>>;

fn draw_mesh<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    plan: &PanelPlan,
    x_ticks: &[XTick],
    style: &Style,
    show_dates: bool,
) -> DrawResult<DB> {
    let x_label = |v: &f64| {
        let index = v.round() as usize;
        x_ticks.iter().find(|t| t.index == index).map(|t| t.label.clone()).unwrap_or_default()
    };
    let y_label = |v: &f64| {
        plan.axis
            .ticks
            .iter()
            .position(|t| t == v)
            .and_then(|i| plan.labels.get(i))
            .cloned()
            .unwrap_or_default()
    };
    let no_label = |_: &f64| String::new();
    chart
        .configure_mesh()
        .bold_line_style(GRID.stroke_width(1))
        .axis_style(FRAME.stroke_width(1))
        .set_all_tick_mark_size(style.tick)
        .label_style(style.font(1.0, INK))
        .axis_desc_style(style.font(1.0, MUTED))
        .x_label_formatter(if show_dates { &x_label } else { &no_label })
        .y_label_formatter(&y_label)
        .y_desc(plan.panel.name())
        .draw()
}

fn draw_price<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    bars: &[Bar],
    body: u32,
    style: &Style,
) -> DrawResult<DB> {
    let candles = bars.iter().enumerate().filter_map(|(i, b)| {
        let values = [b.open, b.high, b.low, b.close];
        if !values.iter().all(|v| v.is_finite()) {
            return None;
        }
        let color = if b.close >= b.open { UP } else { DOWN };
        let x = i as f64;
        // Order matters to Shape::draw: open, high, low, close.
        Some(Shape::Candle {
            points: [(x, b.open), (x, b.high.max(b.low)), (x, b.low.min(b.high)), (x, b.close)],
            body,
            style: color.filled().stroke_width(1),
        })
    });
    chart.draw_series(candles)?;
    draw_last_bar(chart, bars, style)
}

/// The last bar's values in the header line, the way trading screens show them.
fn draw_last_bar<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    bars: &[Bar],
    style: &Style,
) -> DrawResult<DB> {
    let Some(last) = bars.last() else {
        return Ok(());
    };
    let decimals = value_decimals(bars.iter().map(|b| b.close));
    let p = |v: f64| ticks::fixed(v, decimals);
    let mut items = vec![
        (Key::None, last.date.to_string()),
        (Key::None, format!("O {}", p(last.open))),
        (Key::None, format!("H {}", p(last.high))),
        (Key::None, format!("L {}", p(last.low))),
        (Key::None, format!("C {}", p(last.close))),
    ];
    let previous = bars.len().checked_sub(2).and_then(|i| bars.get(i)).map(|b| b.close);
    if let Some(previous) = previous.filter(|c| c.is_finite() && *c != 0.0) {
        let change = (last.close / previous - 1.0) * 100.0;
        if change.is_finite() {
            items.push((Key::None, format!("{change:+.2}%")));
        }
    }
    draw_header(&chart.plotting_area().strip_coord_spec(), &items, style)
}

/// Decimals that show values like these: 2 from 1 up, more below.
fn value_decimals(values: impl Iterator<Item = f64>) -> usize {
    let largest = values.filter(|v| v.is_finite()).map(f64::abs).fold(0.0, f64::max);
    if largest >= 1.0 || largest == 0.0 {
        2
    } else if largest >= 0.01 {
        4
    } else {
        6
    }
}

/// What stands before an item of a header line.
#[derive(Clone, Copy, Debug)]
enum Key {
    None,
    /// A short stroke, for a line series.
    Line(RGBColor),
    /// A square, half one colour and half the other, for a column series.
    Columns(RGBColor, RGBColor),
}

/// A panel's header line, in the top left corner of its plot, in the row that
/// [`y_range`] keeps free of data: the legend, without a box over the data.
fn draw_header<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(Key, String)],
    style: &Style,
) -> DrawResult<DB> {
    let font = style.font(0.95, INK).pos(Pos::new(HPos::Left, VPos::Top));
    let text = style.text;
    let (key_w, key_gap, item_gap) = ((text * 1.3) as i32, (text * 0.35) as i32, (text * 0.9) as i32);
    let (x0, y) = ((text * 0.5) as i32, (text * 0.45) as i32);
    let room = area.dim_in_pixel().0 as i32 - 2 * x0;
    // Items in order, as many as fit: a narrow chart shows the first ones whole.
    let mut shown = Vec::with_capacity(items.len());
    let (mut total, mut row_h) = (0, 0);
    for (key, label) in items {
        let (w, h) = area.estimate_text_size(label, &font)?;
        let key_room = if matches!(key, Key::None) { 0 } else { key_w + key_gap };
        let next = total + if shown.is_empty() { 0 } else { item_gap } + key_room + w as i32;
        if next > room {
            break;
        }
        total = next;
        row_h = row_h.max(h as i32);
        shown.push((*key, label, w as i32));
    }
    if shown.is_empty() {
        return Ok(());
    }
    let backdrop = [(x0 - 4, y - 3), (x0 + total + 4, y + row_h + 3)];
    area.draw(&Rectangle::new(backdrop, WHITE.mix(0.85).filled()))?;

    let mid = y + row_h / 2;
    let mut x = x0;
    for (key, label, w) in shown {
        match key {
            Key::None => {}
            Key::Line(color) => {
                let line = color.stroke_width(style.stroke.max(2));
                area.draw(&PathElement::new([(x, mid), (x + key_w, mid)], line))?;
                x += key_w + key_gap;
            }
            Key::Columns(up, down) => {
                let half = (row_h / 2).max(2);
                let size = key_w.min(2 * half);
                let left = x + (key_w - size) / 2;
                area.draw(&Rectangle::new([(left, mid - half), (left + size / 2, mid)], up.filled()))?;
                area.draw(&Rectangle::new(
                    [(left + size / 2, mid), (left + size, mid + half)],
                    down.filled(),
                ))?;
                x += key_w + key_gap;
            }
        }
        area.draw_text(label, &font, (x, y))?;
        x += w + item_gap;
    }
    Ok(())
}

fn draw_volume<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    bars: &[Bar],
    width: u32,
) -> DrawResult<DB> {
    let columns = bars.iter().enumerate().filter_map(|(i, b)| {
        let volume = b.volume.filter(|v| v.is_finite() && *v > 0.0)?;
        let color = if b.close >= b.open { UP } else { DOWN };
        Some(Shape::Column {
            points: [(i as f64, 0.0), (i as f64, volume)],
            width,
            color: light(color, 0.55),
        })
    });
    chart.draw_series(columns)?;
    Ok(())
}

fn draw_macd<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    macd: MacdLines<'_>,
    width: u32,
    style: &Style,
) -> DrawResult<DB> {
    let (x_lo, x_hi) = {
        let r = chart.x_range();
        (r.start, r.end)
    };
    let columns = macd.hist.iter().enumerate().filter(|(_, v)| v.is_finite() && **v != 0.0).map(|(i, v)| {
        let color = if *v > 0.0 { UP } else { DOWN };
        Shape::Column { points: [(i as f64, 0.0), (i as f64, *v)], width, color: light(color, 0.6) }
    });
    chart.draw_series(columns)?;
    // Over the columns, which stand on it, and under the lines.
    chart.draw_series([PathElement::new([(x_lo, 0.0), (x_hi, 0.0)], ZERO.stroke_width(1))])?;
    for (values, color) in [(macd.macd, MACD_LINE), (macd.signal, SIGNAL_LINE)] {
        let line = color.stroke_width(style.stroke);
        chart.draw_series(runs(values).into_iter().map(move |run| PathElement::new(run, line)))?;
    }

    // The legend, with each line's last value.
    let decimals = value_decimals(macd.macd.iter().chain(macd.signal).chain(macd.hist).copied());
    let last = |values: &[f64]| {
        values
            .iter()
            .rev()
            .find(|v| v.is_finite())
            .map(|v| format!(" {}", ticks::fixed(*v, decimals)))
            .unwrap_or_default()
    };
    let items = [
        (Key::Line(MACD_LINE), format!("MACD{}", last(macd.macd))),
        (Key::Line(SIGNAL_LINE), format!("signal{}", last(macd.signal))),
        (Key::Columns(light(UP, 0.6), light(DOWN, 0.6)), format!("histogram{}", last(macd.hist))),
    ];
    draw_header(&chart.plotting_area().strip_coord_spec(), &items, style)
}

/// The stretches of finite values, as points: a line breaks where MACD has no
/// value yet (its warm-up) instead of dropping to zero.
fn runs(values: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if v.is_finite() {
            current.push((i as f64, *v));
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    // A lone value (one bar, or one between gaps) would draw nothing: give it
    // a short level stroke across its bar.
    for run in &mut out {
        if let [(x, y)] = run[..] {
            *run = vec![(x - 0.3, y), (x + 0.3, y)];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_x_axis_keeps_a_bar_slot_free_on_each_side() {
        for n in [1, 2, 5, 20, 99, 100, 252, 2_000, 10_000] {
            let (lo, hi) = x_range(n);
            let last = (n - 1) as f64;
            assert!(lo <= -1.0 && hi >= last + 1.0, "{n} bars: {lo}..{hi}");
            // Both sides alike, so a lone bar stands in the middle.
            assert!((-lo - (hi - last)).abs() < 1e-9, "{n} bars: {lo}..{hi}");
            // Never so much that the bars shrink: at most 2% of the width.
            assert!((hi - lo) <= (last + 2.0) * 1.02 + 1e-9, "{n} bars: {lo}..{hi}");
        }
    }

    #[test]
    fn candle_bodies_leave_room_between_bars() {
        for per_bar in [0.5, 1.0, 3.0, 3.6, 10.0, 40.0, 200.0] {
            let body = f64::from(candle_width(per_bar, 13.0));
            assert!(body >= 1.0);
            assert!(body <= (per_bar * 0.72).max(1.0), "{per_bar} px a bar: body {body}");
        }
    }
}
