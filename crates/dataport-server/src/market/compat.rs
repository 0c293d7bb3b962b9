//! The seed `idc.Indicator` and `idc.IndicatorGraph` services.

use dataport_chart::ChartOptions;
use dataport_core::market::{MacdParams, macd};
use dataport_proto::idc::{self, indicator_graph_server, indicator_server};
use tonic::{Request, Response, Status};

use super::{ChartRequest, DateRange, Market, chunks, computed};
use crate::Reply;

/// `idc.Indicator`.
#[derive(Clone, Debug)]
pub struct Indicator {
    market: Market,
}

/// `idc.Indicator` over `market`.
pub fn indicator(market: Market, max_message: usize) -> indicator_server::IndicatorServer<Indicator> {
    indicator_server::IndicatorServer::new(Indicator { market }).max_decoding_message_size(max_message)
}

/// `idc.IndicatorGraph`.
#[derive(Clone, Debug)]
pub struct IndicatorGraph {
    market: Market,
}

/// `idc.IndicatorGraph` over `market`.
pub fn indicator_graph(
    market: Market,
    max_message: usize,
) -> indicator_graph_server::IndicatorGraphServer<IndicatorGraph> {
    indicator_graph_server::IndicatorGraphServer::new(IndicatorGraph { market })
        .max_decoding_message_size(max_message)
}

#[tonic::async_trait]
impl indicator_server::Indicator for Indicator {
    async fn get_macd(&self, request: Request<idc::MacdRequest>) -> Reply<idc::MacdReply> {
        let req = request.into_inner();
        let range = DateRange::closed(&req.start_date, &req.end_date)?;
        let market = self.market.clone();
        let rows = computed(move || {
            let symbol = market.symbol(&req.symbol)?;
            // As traded unless configured otherwise: existing clients keep their numbers.
            let (bars, _) = market.series(&symbol, market.compat_adjusted)?;
            // Over the whole history, so the warm-up comes from bars before start.
            let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
            let m = macd(&closes, MacdParams::default());
            let rows = range
                .indices(&bars)
                .filter(|&i| !m.macd[i].is_nan())
                .map(|i| {
                    let b = &bars[i];
                    idc::MacdData {
                        date: b.date.to_string(),
                        open: b.open as f32,
                        close: b.close as f32,
                        high: b.high as f32,
                        low: b.low as f32,
                        macd: m.macd[i] as f32,
                        signal: m.signal[i] as f32,
                        histogram: m.hist[i] as f32,
                    }
                })
                .collect();
            Ok(rows)
        })
        .await?;
        Ok(Response::new(idc::MacdReply { macd: rows }))
    }
}

type GraphStream = tokio_stream::Iter<std::vec::IntoIter<Result<idc::MacdGraphReply, Status>>>;

#[tonic::async_trait]
impl indicator_graph_server::IndicatorGraph for IndicatorGraph {
    type GetMACDGraphStream = GraphStream;

    /// A 1000x700 PNG of candlesticks, volume and MACD(12, 26, 9).
    async fn get_macd_graph(&self, request: Request<idc::MacdGraphRequest>) -> Reply<GraphStream> {
        let req = request.into_inner();
        let range = DateRange::closed(&req.start_date, &req.end_date)?;
        let market = self.market.clone();
        let png = computed(move || {
            let symbol = market.symbol(&req.symbol)?;
            let options = ChartOptions::default();
            let adjusted = market.compat_adjusted;
            let chart = ChartRequest { symbol, range, macd: MacdParams::default(), adjusted, options };
            market.chart(chart).map(|(png, _)| png)
        })
        .await?;
        let replies: Vec<_> = chunks(png).map(|macd_chunk| Ok(idc::MacdGraphReply { macd_chunk })).collect();
        Ok(Response::new(tokio_stream::iter(replies)))
    }
}
