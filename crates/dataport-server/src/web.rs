//! gRPC-Web for browsers: tonic-web turns a browser's call (HTTP/1.1 or
//! HTTP/2, `application/grpc-web`) into a gRPC call; CORS lets the pages of
//! the configured origins make it. No origin is allowed until configured.

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The request headers a gRPC-Web client sends across origins.
const ALLOWED: [&str; 6] =
    ["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout", "authorization", "grpc-accept-encoding"];
/// The response headers a page may read: the call's status.
const EXPOSED: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// CORS for `origins` (`*` for any), or none when the list is empty.
pub fn cors(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = match origins.iter().any(|o| o == "*") {
        true => AllowOrigin::any(),
        false => AllowOrigin::list(origins.iter().cloned()),
    };
    let headers =
        |names: &[&'static str]| names.iter().map(|n| HeaderName::from_static(n)).collect::<Vec<_>>();
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::POST])
            .allow_headers(headers(&ALLOWED))
            .expose_headers(headers(&EXPOSED))
            .max_age(std::time::Duration::from_secs(24 * 60 * 60)),
    )
}
