//! The router: every call goes to the service its path names
//! (`/package.Service/Method`), found in one table built at start.
//!
//! tonic's `Routes` would do the same through an axum router, which matches
//! each path against a pattern per service, captures the rest of the path,
//! and boxes the request body on the way in and the response body on the way
//! out. Here the service name is compared with each entry (almost always
//! decided by its length), the body goes through as it came, and a service
//! answers its own methods, unknown ones included, as its generated code does.
//!
//! Every service routed here is ready at once (tonic's generated servers and
//! the wrappers of this crate are), so a call is made without waiting on
//! `poll_ready`, through a shared reference to the table.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tonic::server::NamedService;

/// What a routed service answers.
pub type Routed = BoxFuture<'static, Result<http::Response<tonic::body::Body>, Infallible>>;

/// Every service, by name; see the module docs.
pub struct Router<B> {
    services: Arc<[Entry<B>]>,
}

/// A service and its name.
type Entry<B> = (&'static str, Box<dyn Handler<B>>);

/// A service the router holds (any tower service answering a [`Routed`]
/// future, as tonic's generated servers do), called through a shared
/// reference.
pub trait Handler<B>: Send + Sync {
    fn serve(&self, request: http::Request<B>) -> Routed;
}

impl<S, B> Handler<B> for S
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
            Future = Routed,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    fn serve(&self, request: http::Request<B>) -> Routed {
        // Generated servers clone their shared part per call anyway.
        tower::Service::call(&mut self.clone(), request)
    }
}

/// Collects the services of a [`Router`].
pub struct RouterBuilder<B> {
    services: Vec<Entry<B>>,
}

impl<B: 'static> RouterBuilder<B> {
    /// Routes every method of `S::NAME` to `service`.
    pub fn add<S: Handler<B> + NamedService + 'static>(&mut self, service: S) -> &mut Self {
        assert!(self.services.iter().all(|(name, _)| *name != S::NAME), "{} is routed twice", S::NAME);
        self.services.push((S::NAME, Box::new(service)));
        self
    }

    pub fn build(self) -> Router<B> {
        Router { services: self.services.into() }
    }
}

/// The service name of a gRPC path: `package.Service` of
/// `/package.Service/Method`.
fn service_of(path: &str) -> Option<&str> {
    let (service, _method) = path.strip_prefix('/')?.split_once('/')?;
    Some(service)
}

impl<B> Router<B> {
    pub fn builder() -> RouterBuilder<B> {
        RouterBuilder { services: Vec::new() }
    }

    /// Hands `request` to the service its path names.
    pub fn route(&self, request: http::Request<B>) -> Routed {
        let found = service_of(request.uri().path())
            .and_then(|name| self.services.iter().find(|(served, _)| *served == name));
        match found {
            Some((_, service)) => service.serve(request),
            None => {
                let status = match service_of(request.uri().path()) {
                    Some(name) => tonic::Status::unimplemented(format!("unknown service {name}")),
                    None => tonic::Status::unimplemented(format!(
                        "{:?} is not a gRPC method path (/package.Service/Method)",
                        request.uri().path()
                    )),
                };
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

impl<B> Clone for Router<B> {
    fn clone(&self) -> Self {
        Router { services: Arc::clone(&self.services) }
    }
}

impl<B> fmt::Debug for Router<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.services.iter().map(|(name, _)| name)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Body = http_body_util::Empty<prost::bytes::Bytes>;

    async fn code_of(router: &Router<Body>, path: &str) -> (tonic::Code, String) {
        let request = http::Request::builder().uri(path).body(Body::default()).unwrap();
        let response = router.route(request).await.unwrap();
        let status = tonic::Status::from_header_map(response.headers()).expect("a trailers-only status");
        (status.code(), status.message().to_owned())
    }

    fn router() -> Router<Body> {
        let mut builder = Router::builder();
        builder.add(crate::greeter::compat::greeter(1 << 20));
        builder.build()
    }

    #[test]
    fn a_path_names_its_service() {
        assert_eq!(service_of("/helloworld.Greeter/SayHello"), Some("helloworld.Greeter"));
        assert_eq!(service_of("/helloworld.Greeter"), None);
        assert_eq!(service_of("helloworld.Greeter/SayHello"), None);
    }

    #[tokio::test]
    async fn an_unknown_service_is_unimplemented_naming_it() {
        let router = router();
        assert_eq!(
            code_of(&router, "/helloworld.Gretter/SayHello").await,
            (tonic::Code::Unimplemented, "unknown service helloworld.Gretter".to_owned())
        );
        let (code, message) = code_of(&router, "/nothing").await;
        assert_eq!(code, tonic::Code::Unimplemented);
        assert!(message.contains("\"/nothing\""), "{message}");
    }

    #[tokio::test]
    async fn an_unknown_method_of_a_known_service_is_left_to_the_service() {
        let router = router();
        assert_eq!(code_of(&router, "/helloworld.Greeter/SayBye").await.0, tonic::Code::Unimplemented);
    }

    #[test]
    #[should_panic(expected = "helloworld.Greeter is routed twice")]
    fn a_service_cannot_be_routed_twice() {
        let mut builder = Router::<Body>::builder();
        builder.add(crate::greeter::compat::greeter(1 << 20)).add(crate::greeter::compat::greeter(1 << 20));
    }
}
