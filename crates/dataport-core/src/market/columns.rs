//! Indicators chosen at run time, with their outputs as named columns: what
//! `dataport.market.v1.ComputeIndicators` and `dataport indicators` answer.

use super::bars::Bar;
use super::indicators::{BollingerParams, MacdParams, Period, atr, bollinger, ema, macd, rsi, sma};

/// One indicator with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Indicator {
    Sma(Period),
    Ema(Period),
    Macd(MacdParams),
    Rsi(Period),
    Bollinger(BollingerParams),
    Atr(Period),
}

/// One output series of an indicator, as long as the bars it was computed on.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// The indicator and its parameters, then the output for indicators with
    /// several: `sma_30`, `macd_12_26_9_signal`, `bollinger_5_2_2_upper`.
    pub name: String,
    pub values: Vec<f64>,
}

impl Indicator {
    /// The indicator's outputs over `bars` (closes, or high, low and close
    /// for ATR), NaN during the warm-up.
    pub fn columns(&self, bars: &[Bar]) -> Vec<Column> {
        let close: Vec<f64> = bars.iter().map(|b| b.close).collect();
        let one = |name: String, values| vec![Column { name, values }];
        match *self {
            Indicator::Sma(p) => one(format!("sma_{p}"), sma(&close, p)),
            Indicator::Ema(p) => one(format!("ema_{p}"), ema(&close, p)),
            Indicator::Rsi(p) => one(format!("rsi_{p}"), rsi(&close, p)),
            Indicator::Atr(p) => {
                let high: Vec<f64> = bars.iter().map(|b| b.high).collect();
                let low: Vec<f64> = bars.iter().map(|b| b.low).collect();
                let values = atr(&high, &low, &close, p)
                    .unwrap_or_else(|e| unreachable!("high, low and close come from the same bars: {e}"));
                one(format!("atr_{p}"), values)
            }
            Indicator::Macd(params) => {
                let base = format!("macd_{}_{}_{}", params.fast, params.slow, params.signal);
                let m = macd(&close, params);
                vec![
                    Column { name: base.clone(), values: m.macd },
                    Column { name: format!("{base}_signal"), values: m.signal },
                    Column { name: format!("{base}_hist"), values: m.hist },
                ]
            }
            Indicator::Bollinger(params) => {
                let base = format!("bollinger_{}_{}_{}", params.period, params.dev_up, params.dev_down);
                let b = bollinger(&close, params);
                vec![
                    Column { name: format!("{base}_upper"), values: b.upper },
                    Column { name: format!("{base}_middle"), values: b.middle },
                    Column { name: format!("{base}_lower"), values: b.lower },
                ]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::bars::Date;

    fn bars(closes: &[f64]) -> Vec<Bar> {
        (0..closes.len())
            .map(|i| {
                let close = closes[i];
                let date = Date::new(2024, 1 + (i / 28) as u8, 1 + (i % 28) as u8).unwrap();
                Bar {
                    date,
                    open: close,
                    high: close + 1.0,
                    low: close - 1.0,
                    close,
                    volume: None,
                    adj_close: None,
                }
            })
            .collect()
    }

    fn names(columns: &[Column]) -> Vec<&str> {
        columns.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn columns_are_named_by_indicator_parameters_and_output() {
        let b = bars(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let p = |n| Period::new(n).unwrap();
        assert_eq!(names(&Indicator::Sma(p(3)).columns(&b)), ["sma_3"]);
        assert_eq!(names(&Indicator::Ema(p(3)).columns(&b)), ["ema_3"]);
        assert_eq!(names(&Indicator::Rsi(p(2)).columns(&b)), ["rsi_2"]);
        assert_eq!(names(&Indicator::Atr(p(2)).columns(&b)), ["atr_2"]);
        assert_eq!(
            names(&Indicator::Macd(MacdParams::default()).columns(&b)),
            ["macd_12_26_9", "macd_12_26_9_signal", "macd_12_26_9_hist"]
        );
        let bands = BollingerParams { period: p(5), dev_up: 2.5, dev_down: 2.0 };
        assert_eq!(
            names(&Indicator::Bollinger(bands).columns(&b)),
            ["bollinger_5_2.5_2_upper", "bollinger_5_2.5_2_middle", "bollinger_5_2.5_2_lower"]
        );
    }

    #[test]
    fn columns_hold_the_indicator_values_aligned_with_the_bars() {
        let b = bars(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let sma = &Indicator::Sma(Period::new(3).unwrap()).columns(&b)[0].values;
        assert!(sma[..2].iter().all(|v| v.is_nan()));
        assert_eq!(sma[2..], [2.0, 3.0, 4.0]);
        // Each bar's true range is 2 (high - low), bar to bar moves are 1.
        let atr = &Indicator::Atr(Period::new(2).unwrap()).columns(&b)[0].values;
        assert!(atr[..2].iter().all(|v| v.is_nan()));
        assert_eq!(atr[2..], [2.0, 2.0, 2.0]);
    }
}
