//! The process, under the names every Prometheus client library uses
//! (`process_resident_memory_bytes`, `process_open_fds`,
//! `process_cpu_seconds_total`, ...), read from `/proc` at each scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug, Default)]
pub struct Process;

/// What `/proc/self/stat` says, in the units the metrics use.
#[derive(Debug, Default, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    start_time_seconds: f64,
    virtual_bytes: u64,
    resident_bytes: u64,
}

/// Parses `/proc/self/stat` (`stat`), given the clock's ticks a second,
/// the page size and the boot time (seconds since the epoch).
fn parse_stat(stat: &str, ticks: f64, page: u64, boot: u64) -> Option<Stat> {
    // The command name, in parentheses, may hold spaces: count after it.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // Fields 14, 15, 22, 23 and 24 of proc(5); the state (3) is fields[0].
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        start_time_seconds: boot as f64 + field(22)? as f64 / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page,
    })
}

fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

fn read_stat() -> Option<Stat> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    parse_stat(&stat, ticks, rustix::param::page_size() as u64, boot_time()?)
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        if let Some(stat) = read_stat() {
            let cpu = ConstCounter::new(stat.cpu_seconds);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                cpu.metric_type(),
            )?)?;
            let gauges = [
                (
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    stat.start_time_seconds,
                ),
                ("process_virtual_memory_bytes", "Virtual memory size in bytes.", stat.virtual_bytes as f64),
                (
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    stat.resident_bytes as f64,
                ),
            ];
            for (name, help, value) in gauges {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let gauge = ConstGauge::new(fds.count() as i64);
            gauge.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                gauge.metric_type(),
            )?)?;
        }
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(max) = limit.current {
            let gauge = ConstGauge::new(i64::try_from(max).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                None,
                gauge.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_read_after_the_command_name_whatever_it_holds() {
        let stat = "4242 (data port) S 1 4242 4242 0 -1 4194560 1434 0 0 0 250 130 0 0 20 0 9 0 \
                    5000 1261568000 12800 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let parsed = parse_stat(stat, 100.0, 4096, 1_700_000_000).unwrap();
        assert_eq!(
            parsed,
            Stat {
                cpu_seconds: 3.8,
                start_time_seconds: 1_700_000_050.0,
                virtual_bytes: 1_261_568_000,
                resident_bytes: 12800 * 4096,
            }
        );
    }

    #[test]
    fn this_process_is_readable() {
        let stat = read_stat().unwrap();
        assert!(stat.resident_bytes > 1 << 20, "{stat:?}");
        assert!(stat.start_time_seconds > 1.6e9, "{stat:?}");
    }
}
