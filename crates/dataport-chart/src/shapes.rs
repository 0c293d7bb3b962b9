//! The two shapes plotters has no element for, a candle and a column, each
//! drawn straight onto the backend from the points plotters maps for it.

use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters_backend::{BackendCoord, BackendStyle, DrawingErrorKind};

pub(crate) enum Shape {
    /// A candle: wick from low to high, body from open to close, `body`
    /// pixels wide. Its points: open, high, low, close.
    Candle { points: [(f64, f64); 4], body: u32, style: ShapeStyle },
    /// A column from `from` to `to` at one x, `width` pixels wide (volume,
    /// histogram). Its points: from, to.
    Column { points: [(f64, f64); 2], width: u32, color: RGBColor },
}

/// A shape hands plotters its points as the slice it holds.
impl<'a> PointCollection<'a, (f64, f64)> for &'a Shape {
    type Point = &'a (f64, f64);
    type IntoIter = &'a [(f64, f64)];

    fn point_iter(self) -> Self::IntoIter {
        match self {
            Shape::Candle { points, .. } => points,
            Shape::Column { points, .. } => points,
        }
    }
}

impl<DB: DrawingBackend> Drawable<DB> for Shape {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        match self {
            Shape::Candle { body, style, .. } => {
                let (Some(open), Some(high), Some(low), Some(close)) =
                    (points.next(), points.next(), points.next(), points.next())
                else {
                    return Ok(());
                };
                backend.draw_line((open.0, high.1), (open.0, low.1), style)?;
                if *body > 1 {
                    fill(backend, open, close.1, *body, style)?;
                }
                Ok(())
            }
            Shape::Column { width, color, .. } => {
                let (Some(from), Some(to)) = (points.next(), points.next()) else {
                    return Ok(());
                };
                fill(backend, from, to.1, *width, color)
            }
        }
    }
}

/// Fills `width` pixels centred on `from`'s x, from `from`'s y to `to_y`
/// (both included).
fn fill<DB: DrawingBackend, S: BackendStyle>(
    backend: &mut DB,
    from: BackendCoord,
    to_y: i32,
    width: u32,
    style: &S,
) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
    // Backends fill rectangles up to, not including, the far corner.
    let left = from.0 - width as i32 / 2;
    let (top, bottom) = (from.1.min(to_y), from.1.max(to_y));
    backend.draw_rect((left, top), (left + width as i32, bottom + 1), style, true)
}
