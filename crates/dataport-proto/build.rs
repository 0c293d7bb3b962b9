//! Compiles every .proto under `proto/` with protox (no system protoc) and
//! generates prost messages and tonic clients and servers from the result.

use std::path::{Path, PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let compat = root.join("compat");
    println!("cargo:rerun-if-changed={}", root.display());

    // Compat files are named as the seed clients name them ("helloworld.proto"),
    // so that reflection serves the same file names their stubs were built from;
    // versioned files, and the public Google and gRPC APIs we serve, are named
    // by their package path ("dataport/position/v1/...", "google/bytestream/...",
    // "grpc/health/v1/health.proto").
    let mut files = Vec::new();
    collect(&compat, &compat, &mut files)?;
    collect(&root.join("dataport"), &root, &mut files)?;
    collect(&root.join("google"), &root, &mut files)?;
    collect(&root.join("grpc"), &root, &mut files)?;
    files.sort();

    let fds = protox::compile(&files, [&compat, &root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptor.bin"), fds.encode_to_vec())?;
    std::fs::write(out.join("methods.rs"), methods(&fds))?;

    // File data is `bytes::Bytes`: a received chunk is a slice of the buffer
    // tonic decoded it from, not a copy.
    let bytes = [
        ".UploadRequest.chunk_data",
        ".FileResponse.chunk_data",
        ".FileTransfer.Chunk.data",
        ".google.bytestream",
        ".dataport.files.v1",
    ];
    bytes
        .iter()
        .fold(tonic_prost_build::configure(), |config, path| config.bytes(path))
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}

/// A constant for the path of every method, `/package.Service/Method`, in a
/// module per package segment and per service: `pb::outliers::DETECT`.
fn methods(fds: &prost_types::FileDescriptorSet) -> String {
    // (module path, full name, (constant, path) of each method)
    type Service = (Vec<String>, String, Vec<(String, String)>);
    let mut services: Vec<Service> = Vec::new();
    for file in &fds.file {
        let package = file.package();
        for service in &file.service {
            let full = if package.is_empty() {
                service.name().to_owned()
            } else {
                format!("{package}.{}", service.name())
            };
            let mut modules: Vec<String> = package.split('.').filter(|s| !s.is_empty()).map(snake).collect();
            modules.push(snake(service.name()));
            let methods = service
                .method
                .iter()
                .map(|m| (snake(m.name()).to_uppercase(), format!("/{full}/{}", m.name())))
                .collect();
            services.push((modules, full, methods));
        }
    }
    services.sort();
    let mut out = String::new();
    let mut open: Vec<String> = Vec::new();
    for (modules, full, methods) in services {
        let shared = open.iter().zip(&modules).take_while(|(a, b)| a == b).count();
        for _ in shared..open.len() {
            out.push_str("}\n");
        }
        open.truncate(shared);
        for (i, module) in modules.iter().enumerate().skip(shared) {
            if i + 1 == modules.len() {
                out.push_str(&format!("/// The methods of `{full}`.\n"));
            }
            out.push_str(&format!("pub mod {module} {{\n"));
            open.push(module.clone());
        }
        for (name, path) in methods {
            out.push_str(&format!("pub const {name}: &str = {path:?};\n"));
        }
    }
    for _ in open {
        out.push_str("}\n");
    }
    out
}

/// `snake_case` of a protobuf name, as prost names modules: `posXYZ` is
/// `pos_xyz`, `GetMACDGraph` is `get_macd_graph`.
fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Pushes the path of every .proto file below `dir`, relative to `base`.
fn collect(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            collect(&path, base, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let rel = path.strip_prefix(base).map_err(std::io::Error::other)?;
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}
