//! Market analytics over daily bars: the bar itself and its CSV form
//! (`bars`), and technical indicators that match TA-Lib.
//!
//! Every indicator takes plain `f64` series and returns series of the same
//! length, with `f64::NAN` on the bars that have no value yet (the first
//! `*_lookback()` bars). TA-Lib 0.8.2 (the Python wheel) is the reference, and
//! the arithmetic follows the order of operations of that build (EMAs fused
//! multiply-add, RSI times the reciprocal of the period): on the sample bars
//! SMA, EMA, MACD and RSI are bit for bit TA-Lib's, ATR within 2e-15 and the
//! Bollinger Bands within 2e-11 relative (`tests/oracle/run` checks 1e-9).
//!
//! NaN in the input follows TA-Lib's Python wrapper: leading NaNs are skipped
//! (the series starts at its first valid bar, with the lookback counted from
//! there); a NaN after that poisons every later SMA, EMA, MACD and Bollinger
//! value (except a 1-bar EMA, which is the input), turns every later RSI into
//! 0, and in ATR a NaN high or low poisons every later value while a NaN close
//! is passed over (see each function).

pub mod bars;
mod columns;
mod indicators;

pub use columns::{Column, Indicator};
pub use indicators::*;

#[cfg(test)]
mod tests;
