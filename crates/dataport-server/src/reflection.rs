//! `grpc.reflection.v1` and `v1alpha`: what grpcurl, grpcui and Postman ask
//! to call the server without .proto files.
//!
//! The catalog is tonic-reflection's generated wire types over an index of
//! our own, because tonic-reflection 0.14 ends the whole stream when one
//! lookup fails (an unknown symbol is NOT_FOUND for the call) and ends it OK,
//! unanswered, on a request that does not decode. The protocol answers a
//! failed lookup in the stream (`error_response`) and goes on reading; a
//! request that does not decode fails the call as any RPC's would.
//!
//! Files are served as the descriptor sets hold them, each alone (a client
//! asks for the imports it lacks by name). Our protos declare no extensions,
//! so every message has none, and no extension is found.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};
use tonic::{Code, Request, Response, Status, Streaming};

/// Every file the server can describe, and where each symbol is declared.
#[derive(Debug, Default)]
pub struct Catalog {
    services: Vec<String>,
    /// File name -> the encoded `FileDescriptorProto`.
    files: HashMap<String, Vec<u8>>,
    /// Fully qualified symbol (message, enum, service, method) -> its file.
    symbols: HashMap<String, String>,
    messages: HashSet<String>,
    /// Every method of every file, served or not.
    methods: Vec<Method>,
}

/// A method, as the metrics label it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method {
    /// Fully qualified: `helloworld.Greeter`.
    pub service: String,
    pub name: String,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

/// A request, whichever version asked it.
enum Ask {
    FileByFilename(String),
    FileContainingSymbol(String),
    FileContainingExtension { containing_type: String, number: i32 },
    AllExtensionNumbersOfType(String),
    ListServices,
}

/// An answer, for either version to encode.
enum Answer {
    Files(Vec<Vec<u8>>),
    ExtensionNumbers { base_type_name: String },
    Services(Vec<String>),
    Error { code: Code, message: String },
}

impl Catalog {
    /// Indexes the files of encoded `FileDescriptorSet`s (the first file of a
    /// name wins), listing `services` as served.
    pub fn new<'a>(
        sets: impl IntoIterator<Item = &'a [u8]>,
        services: impl IntoIterator<Item = String>,
    ) -> Result<Catalog, prost::DecodeError> {
        let mut catalog = Catalog { services: services.into_iter().collect(), ..Catalog::default() };
        catalog.services.sort();
        for set in sets {
            for file in FileDescriptorSet::decode(set)?.file {
                catalog.add(file);
            }
        }
        Ok(catalog)
    }

    /// The methods of the services listed as served.
    pub fn methods(&self) -> impl Iterator<Item = &Method> {
        self.methods.iter().filter(|m| self.services.binary_search(&m.service).is_ok())
    }

    fn add(&mut self, file: FileDescriptorProto) {
        let name = file.name().to_owned();
        if self.files.contains_key(&name) {
            return;
        }
        let package = file.package();
        let mut declared = Vec::new();
        for message in &file.message_type {
            self.add_message(package, message, &mut declared);
        }
        for enumeration in &file.enum_type {
            declared.push(qualified(package, enumeration.name()));
        }
        for service in &file.service {
            let service_name = qualified(package, service.name());
            for method in &service.method {
                declared.push(format!("{service_name}.{}", method.name()));
                self.methods.push(Method {
                    service: service_name.clone(),
                    name: method.name().to_owned(),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                });
            }
            declared.push(service_name);
        }
        for symbol in declared {
            self.symbols.entry(symbol).or_insert_with(|| name.clone());
        }
        self.files.insert(name, file.encode_to_vec());
    }

    fn add_message(&mut self, scope: &str, message: &DescriptorProto, declared: &mut Vec<String>) {
        let full = qualified(scope, message.name());
        for nested in &message.nested_type {
            self.add_message(&full, nested, declared);
        }
        for enumeration in &message.enum_type {
            declared.push(qualified(&full, enumeration.name()));
        }
        self.messages.insert(full.clone());
        declared.push(full);
    }

    fn answer(&self, ask: Ask) -> Answer {
        let not_found = |message: String| Answer::Error { code: Code::NotFound, message };
        match ask {
            Ask::ListServices => Answer::Services(self.services.clone()),
            Ask::FileByFilename(name) => match self.files.get(&name) {
                Some(file) => Answer::Files(vec![file.clone()]),
                None => not_found(format!("no file {name:?} is served here")),
            },
            Ask::FileContainingSymbol(symbol) => {
                match self.symbols.get(symbol.trim_start_matches('.')).and_then(|file| self.files.get(file)) {
                    Some(file) => Answer::Files(vec![file.clone()]),
                    None => not_found(format!("symbol {symbol:?} is not declared in any file served here")),
                }
            }
            Ask::FileContainingExtension { containing_type, number } => not_found(format!(
                "no extension {number} of {containing_type:?}: the served files declare none"
            )),
            Ask::AllExtensionNumbersOfType(name) => {
                let name = name.trim_start_matches('.').to_owned();
                if self.messages.contains(&name) {
                    Answer::ExtensionNumbers { base_type_name: name }
                } else {
                    not_found(format!("message type {name:?} is not declared in any file served here"))
                }
            }
        }
    }
}

fn qualified(scope: &str, name: &str) -> String {
    if scope.is_empty() { name.to_owned() } else { format!("{scope}.{name}") }
}

/// Implements one version's service over the catalog: the two versions'
/// messages are the same on the wire, but distinct generated types.
macro_rules! reflection_service {
    ($name:ident, $version:ident) => {
        /// See the module docs.
        #[derive(Clone, Debug)]
        pub struct $name(pub Arc<Catalog>);

        impl $name {
            pub fn server(
                catalog: Arc<Catalog>,
            ) -> tonic_reflection::pb::$version::server_reflection_server::ServerReflectionServer<$name> {
                tonic_reflection::pb::$version::server_reflection_server::ServerReflectionServer::new($name(
                    catalog,
                ))
            }
        }

        #[tonic::async_trait]
        impl tonic_reflection::pb::$version::server_reflection_server::ServerReflection for $name {
            type ServerReflectionInfoStream =
                BoxStream<'static, Result<tonic_reflection::pb::$version::ServerReflectionResponse, Status>>;

            async fn server_reflection_info(
                &self,
                request: Request<Streaming<tonic_reflection::pb::$version::ServerReflectionRequest>>,
            ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
                use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
                use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
                use tonic_reflection::pb::$version::{
                    ErrorResponse, ExtensionNumberResponse, FileDescriptorResponse, ListServiceResponse,
                    ServerReflectionResponse, ServiceResponse,
                };
                let catalog = Arc::clone(&self.0);
                // A request that does not decode ends the call with tonic's
                // status; after it, nothing more is read.
                let answers = request.into_inner().scan(false, move |failed, request| {
                    if *failed {
                        return std::future::ready(None);
                    }
                    let request = match request {
                        Ok(request) => request,
                        Err(status) => {
                            *failed = true;
                            return std::future::ready(Some(Err(status)));
                        }
                    };
                    let answer = match request.message_request.clone() {
                        None => Answer::Error {
                            code: Code::InvalidArgument,
                            message: "message_request is empty; ask for a file, a symbol or the services"
                                .into(),
                        },
                        Some(MessageRequest::FileByFilename(name)) => {
                            catalog.answer(Ask::FileByFilename(name))
                        }
                        Some(MessageRequest::FileContainingSymbol(symbol)) => {
                            catalog.answer(Ask::FileContainingSymbol(symbol))
                        }
                        Some(MessageRequest::FileContainingExtension(extension)) => {
                            catalog.answer(Ask::FileContainingExtension {
                                containing_type: extension.containing_type,
                                number: extension.extension_number,
                            })
                        }
                        Some(MessageRequest::AllExtensionNumbersOfType(name)) => {
                            catalog.answer(Ask::AllExtensionNumbersOfType(name))
                        }
                        Some(MessageRequest::ListServices(_)) => catalog.answer(Ask::ListServices),
                    };
                    let message_response = match answer {
                        Answer::Files(file_descriptor_proto) => {
                            MessageResponse::FileDescriptorResponse(FileDescriptorResponse {
                                file_descriptor_proto,
                            })
                        }
                        Answer::ExtensionNumbers { base_type_name } => {
                            MessageResponse::AllExtensionNumbersResponse(ExtensionNumberResponse {
                                base_type_name,
                                extension_number: Vec::new(),
                            })
                        }
                        Answer::Services(names) => {
                            MessageResponse::ListServicesResponse(ListServiceResponse {
                                service: names.into_iter().map(|name| ServiceResponse { name }).collect(),
                            })
                        }
                        Answer::Error { code, message } => MessageResponse::ErrorResponse(ErrorResponse {
                            error_code: code as i32,
                            error_message: message,
                        }),
                    };
                    std::future::ready(Some(Ok(ServerReflectionResponse {
                        valid_host: request.host.clone(),
                        original_request: Some(request),
                        message_response: Some(message_response),
                    })))
                });
                Ok(Response::new(answers.boxed()))
            }
        }
    };
}

reflection_service!(ReflectionV1, v1);
reflection_service!(ReflectionV1Alpha, v1alpha);

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::new([dataport_proto::FILE_DESCRIPTOR_SET], ["helloworld.Greeter".to_owned()])
            .expect("compiled in")
    }

    fn file_name(answer: Answer) -> String {
        match answer {
            Answer::Files(files) => {
                FileDescriptorProto::decode(files[0].as_slice()).expect("a file").name().to_owned()
            }
            _ => panic!("not a file"),
        }
    }

    #[test]
    fn symbols_of_every_kind_resolve_to_their_file() {
        let c = catalog();
        for (symbol, file) in [
            ("helloworld.Greeter", "helloworld.proto"),
            ("helloworld.Greeter.SayHello", "helloworld.proto"),
            (".helloworld.HelloRequest", "helloworld.proto"),
            ("dataport.files.v1.UploadRequest", "dataport/files/v1/files.proto"),
            ("grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"),
            ("google.protobuf.Timestamp", "google/protobuf/timestamp.proto"),
        ] {
            assert_eq!(file_name(c.answer(Ask::FileContainingSymbol(symbol.into()))), file, "{symbol}");
        }
        assert_eq!(file_name(c.answer(Ask::FileByFilename("helloworld.proto".into()))), "helloworld.proto");
    }

    #[test]
    fn failed_lookups_are_answers_naming_what_was_asked() {
        let c = catalog();
        for ask in [
            Ask::FileContainingSymbol("no.Such".into()),
            Ask::FileByFilename("no.proto".into()),
            Ask::AllExtensionNumbersOfType("no.Such".into()),
            Ask::FileContainingExtension { containing_type: "helloworld.HelloRequest".into(), number: 7 },
        ] {
            match c.answer(ask) {
                Answer::Error { code, message } => {
                    assert_eq!(code, Code::NotFound);
                    assert!(message.contains("no.") || message.contains("extension 7"), "{message}");
                }
                _ => panic!("should not be found"),
            }
        }
        match c.answer(Ask::AllExtensionNumbersOfType(".helloworld.HelloRequest".into())) {
            Answer::ExtensionNumbers { base_type_name } => {
                assert_eq!(base_type_name, "helloworld.HelloRequest")
            }
            _ => panic!("a known message has (no) extension numbers"),
        }
    }
}
