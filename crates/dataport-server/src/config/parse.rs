//! The parsers the declared settings use: text in, a typed value or the
//! reason it was refused out.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub(super) fn listen(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| "expected an IP address and port, such as 127.0.0.1:50051 or [::]:50051".to_owned())
}

pub(super) fn path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() { Err("must not be empty".to_owned()) } else { Ok(PathBuf::from(value)) }
}

pub(super) fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// An OTLP/gRPC collector's URL: `http://` or `https://`, a host, a port
/// if any, and no path (the service's path is the protocol's own).
pub(super) fn otlp_endpoint(value: &str) -> Result<String, String> {
    let usage = "expected a collector's URL such as http://127.0.0.1:4317 or https://otel.example.com:4317";
    let uri: http::Uri = value.parse().map_err(|_| usage.to_owned())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/");
    if !scheme_ok || uri.host().is_none_or(str::is_empty) || !bare {
        return Err(usage.to_owned());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// A PostgreSQL URL (`postgres://` or `postgresql://`); the rest is checked
/// when the server connects.
pub(super) fn postgres_url(value: &str) -> Result<super::SecretUrl, String> {
    if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) {
        return Err(
            "expected a PostgreSQL URL such as postgres://dataport:PASSWORD@db.example.com:5432/dataport"
                .to_owned(),
        );
    }
    Ok(super::SecretUrl(value.to_owned()))
}

/// An S3 location, `s3://BUCKET` or `s3://BUCKET/PREFIX`; the store checks
/// the rest when it opens.
pub(super) fn s3_url(value: &str) -> Result<String, String> {
    match value.strip_prefix("s3://") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(value.to_owned()),
        _ => Err("expected an S3 location such as s3://my-bucket/dataport".to_owned()),
    }
}

/// `value` with the password of a URL's user (`scheme://user:PASSWORD@host`)
/// and any `password=` parameter replaced by `***`.
pub(crate) fn without_password(value: &str) -> String {
    let mut shown = value.to_owned();
    if let Some(start) = shown.find("://").map(|i| i + 3) {
        let authority_end = shown[start..].find('/').map_or(shown.len(), |i| start + i);
        if let Some(at) = shown[start..authority_end].rfind('@').map(|i| start + i)
            && let Some(colon) = shown[start..at].find(':').map(|i| start + i)
        {
            shown.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(at) = shown.find("password=").map(|i| i + "password=".len()) {
        let end = shown[at..].find(['&', ' ']).map_or(shown.len(), |i| at + i);
        shown.replace_range(at..end, "***");
    }
    shown
}

/// A share, from 0 to 1.
pub(super) fn ratio(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("expected a number from 0 to 1, such as 0.1".to_owned()),
    }
}

/// Comma-separated origins (`scheme://host[:port]`), or `*`; empty for none.
pub(super) fn origins(value: &str) -> Result<Vec<http::HeaderValue>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let scheme_host = origin.split_once("://").is_some_and(|(s, h)| !s.is_empty() && !h.is_empty());
            if origin != "*" && (!scheme_host || origin.ends_with('/')) {
                return Err(format!("{origin:?} is not an origin like https://app.example.com (or *)"));
            }
            http::HeaderValue::from_str(origin).map_err(|_| format!("{origin:?} is not a header value"))
        })
        .collect()
}

pub(super) fn positive(value: &str) -> Result<usize, String> {
    value.parse().ok().filter(|&n| n >= 1).ok_or_else(|| "expected a whole number of at least 1".to_owned())
}

pub(super) fn symbol(value: &str) -> Result<Option<String>, String> {
    dataport_core::market::bars::symbol(value).map(Some).map_err(|e| e.to_string())
}

/// One of a few names, each standing for a value.
pub(super) fn one_of<T: Copy>(value: &str, choices: &[(&str, T)]) -> Result<T, String> {
    if let Some(&(_, chosen)) = choices.iter().find(|(name, _)| *name == value) {
        return Ok(chosen);
    }
    let names: Vec<String> = choices.iter().map(|(name, _)| format!("`{name}`")).collect();
    Err(match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("expected {} or {last}", rest.join(", ")),
        _ => format!("expected {}", names.concat()),
    })
}

/// A size of at least `min` bytes (`min_text` says it to people): plain
/// bytes (`67108864`) or a whole number of KiB, MiB or GiB (`64MiB`,
/// `64 MiB`).
pub(super) fn size(value: &str, min: usize, min_text: &str) -> Result<usize, String> {
    let trimmed = value.trim();
    let digits = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let scale: Option<usize> = match unit.trim() {
        "" => Some(1),
        "KiB" => Some(1 << 10),
        "MiB" => Some(1 << 20),
        "GiB" => Some(1 << 30),
        _ => None,
    };
    scale.and_then(|scale| number.parse::<usize>().ok()?.checked_mul(scale)).filter(|&n| n >= min).ok_or_else(
        || format!("expected a size of at least {min_text}: bytes, or a number with KiB, MiB or GiB"),
    )
}

/// `auto` (a quarter of the memory the process may use: the machine's, or
/// its cgroup's limit when lower), or a size of at least 1 MiB.
pub(super) fn inflight_bytes(value: &str) -> Result<usize, String> {
    if value.trim() == "auto" {
        return Ok(usable_memory().map_or(1 << 30, |bytes| bytes / 4));
    }
    size(value, 1 << 20, "1 MiB").map_err(|e| format!("{e}, or auto"))
}

/// The memory this process may use: the machine's (`/proc/meminfo`), or
/// its cgroup's limit (`memory.max`, cgroup v2) when that is lower.
fn usable_memory() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: usize = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    let machine = kib * 1024;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    Some(cgroup.map_or(machine, |limit| limit.min(machine)))
}

/// Parses `10`, `2.5`, `10s`, `500ms`, `30m` or `2h` (a bare number is
/// seconds).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = value.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (value, 1.0)
    };
    let expected = "expected a duration such as 10, 2.5, 10s, 500ms, 30m or 2h";
    let n: f64 = number.trim().parse().map_err(|_| expected.to_owned())?;
    Duration::try_from_secs_f64(n * scale).map_err(|_| format!("{expected}, not negative or out of range"))
}

/// A duration, or `never`.
pub(super) fn duration_or_never(value: &str) -> Result<Option<Duration>, String> {
    match value {
        "never" => Ok(None),
        _ => parse_duration(value).map(Some).map_err(|e| format!("{e}, or never")),
    }
}

/// A whole number from 1 to `u32::MAX`.
pub(super) fn positive_u32(value: &str) -> Result<u32, String> {
    value
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("expected a whole number from 1 to {}", u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_and_milliseconds() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration_or_never("never"), Ok(None));
        assert_eq!(duration_or_never("1h"), Ok(Some(Duration::from_secs(3600))));
        assert!(duration_or_never("nope").unwrap_err().ends_with("or never"));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn passwords_in_urls_are_never_shown() {
        for (url, shown) in [
            ("postgres://dp:s3cret@db:5432/bars", "postgres://dp:***@db:5432/bars"),
            ("postgres://dp:p@ss:w@rd@db/bars", "postgres://dp:***@db/bars"),
            (
                "postgres://dp@db/bars?password=s3cret&sslmode=disable",
                "postgres://dp@db/bars?password=***&sslmode=disable",
            ),
            ("postgres://db/bars", "postgres://db/bars"),
        ] {
            assert_eq!(without_password(url), shown);
            let secret = postgres_url(url).unwrap();
            assert_eq!((secret.to_string(), format!("{secret:?}")), (shown.to_owned(), format!("{shown:?}")));
            assert_eq!(secret.expose(), url);
        }
        assert!(postgres_url("mysql://db").unwrap_err().contains("postgres://"));
    }

    #[test]
    fn origins_are_scheme_and_host_or_a_star() {
        let ok = origins(" https://app.example.com, http://localhost:8080 ,").unwrap();
        assert_eq!(ok, ["https://app.example.com", "http://localhost:8080"]);
        assert_eq!(origins("*").unwrap(), ["*"]);
        assert!(origins("").unwrap().is_empty());
        for bad in ["app.example.com", "https://app.example.com/", "https://"] {
            assert!(origins(bad).unwrap_err().contains("is not an origin"), "{bad}");
        }
    }

    #[test]
    fn otlp_endpoints_are_http_or_https_urls_without_a_path() {
        assert_eq!(otlp_endpoint("http://127.0.0.1:4317/").unwrap(), "http://127.0.0.1:4317");
        assert_eq!(otlp_endpoint("https://otel.example.com").unwrap(), "https://otel.example.com");
        for bad in ["127.0.0.1:4317", "grpc://x:4317", "http://x:4317/v1/traces", "http://", ""] {
            assert!(otlp_endpoint(bad).unwrap_err().contains("collector's URL"), "{bad}");
        }
        assert_eq!(ratio("0.25"), Ok(0.25));
        assert!(ratio("1.5").is_err() && ratio("-0").is_ok() && ratio("NaN").is_err());
    }

    #[test]
    fn inflight_bytes_is_a_size_or_a_share_of_memory() {
        assert_eq!(inflight_bytes("256MiB"), Ok(256 << 20));
        assert!(inflight_bytes("1KiB").unwrap_err().ends_with("or auto"));
        let auto = inflight_bytes("auto").unwrap();
        assert!(auto >= 16 << 20 && auto < usable_memory().unwrap(), "{auto}");
    }

    #[test]
    fn one_of_lists_every_choice_when_refusing() {
        let two = [("text", 1), ("json", 2)];
        assert_eq!(one_of("json", &two), Ok(2));
        assert_eq!(one_of("JSON", &two), Err("expected `text` or `json`".to_owned()));
        let three = [("none", 0), ("gzip", 1), ("zstd", 2)];
        assert_eq!(one_of("br", &three), Err("expected `none`, `gzip` or `zstd`".to_owned()));
        assert_eq!(one_of("b", &[("a", 0)]), Err("expected `a`".to_owned()));
    }
}
