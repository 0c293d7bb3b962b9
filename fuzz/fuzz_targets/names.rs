//! File names and ByteStream resource names.
//!
//! `validate_name` accepts exactly what its rule says (1 to 255 bytes, not
//! `.` or `..`, no `/`, `\`, NUL or control character), and a name it
//! accepts is one path component that, joined to a directory, stays in it.
//! The ByteStream service parses `uploads/{upload_id}/files/{name}` (with an
//! optional `/sha256/{64 hex digits}`) for QueryWriteStatus and
//! `files/{name}` for Read: a name of that form whose parts are valid gets
//! as far as the (empty) store, which answers NOT_FOUND; any other is
//! INVALID_ARGUMENT from the parser, naming `resource_name`.
#![no_main]

use std::cell::RefCell;
use std::path::{Component, Path};

use dataport_core::files::{MAX_NAME_LEN, Sha256Digest, stored_name, validate_name};
use dataport_server::fuzzing::ByteStreamProbe;
use libfuzzer_sys::fuzz_target;
use tonic::Code;

/// An input is its fields separated by 0xFF bytes (never part of UTF-8,
/// so the corpus can be written by hand): `name`, `id`, `digest`, `raw`.
#[derive(Debug)]
struct Input {
    name: String,
    id: String,
    /// Appended as `/sha256/{digest}` when present.
    digest: Option<String>,
    /// Tried as a whole resource name too.
    raw: String,
}

impl Input {
    fn from(data: &[u8]) -> Input {
        let mut fields = data.split(|&b| b == 0xFF).map(|f| String::from_utf8_lossy(f).into_owned());
        let mut next = || fields.next();
        let (name, id, digest, raw) = (next(), next(), next(), next());
        Input {
            name: name.unwrap_or_default(),
            id: id.unwrap_or_default(),
            digest,
            raw: raw.unwrap_or_default(),
        }
    }
}

thread_local! {
    /// The service, over a store in a scratch directory under the
    /// temporary directory (the runner points TMPDIR into target/).
    static PROBE: RefCell<ByteStreamProbe> = RefCell::new({
        let dir = tempfile::Builder::new().prefix("dataport-fuzz-names-").tempdir().expect("a scratch directory");
        ByteStreamProbe::new(&dir.keep()).expect("a file store in the scratch directory")
    });
}

/// The rule, written out again.
fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && !name.chars().any(|c| matches!(c, '/' | '\\' | '\0') || c.is_control())
}

fn check_name(name: &str) {
    let result = validate_name(name);
    assert_eq!(result.is_ok(), valid(name), "validate_name({name:?}) = {result:?}");
    match result {
        Ok(()) => {
            let components: Vec<Component> = Path::new(name).components().collect();
            assert_eq!(components, [Component::Normal(name.as_ref())], "{name:?} is not one path component");
            let dir = Path::new("/srv/dataport/files");
            assert_eq!(dir.join(name).parent(), Some(dir), "{name:?} joined leaves the directory");
        }
        Err(e) => assert!(e.to_string().starts_with("file name"), "{e}"),
    }
}

/// The upload id a QueryWriteStatus of `resource` reaches the store with.
fn upload_id(resource: &str) -> Option<&str> {
    let parts: Vec<&str> = resource.split('/').collect();
    let (id, name) = match parts.as_slice() {
        ["uploads", id, "files", name] => (*id, *name),
        ["uploads", id, "files", name, "sha256", digest] if digest.parse::<Sha256Digest>().is_ok() => {
            (*id, *name)
        }
        _ => return None,
    };
    (valid(id) && valid(name)).then_some(id)
}

fn read_name(resource: &str) -> Option<&str> {
    let name = resource.strip_prefix("files/")?;
    valid(name).then_some(name)
}

fuzz_target!(|data: &[u8]| {
    let input = Input::from(data);
    check_name(&input.name);
    check_name(&input.id);
    check_name(&input.raw);
    let joined = format!("{}{}", input.name, input.id);
    assert_eq!(stored_name(&input.name, &input.id).ok(), valid(&joined).then_some(joined));

    let mut upload = format!("uploads/{}/files/{}", input.id, input.name);
    if let Some(digest) = &input.digest {
        upload = format!("{upload}/sha256/{digest}");
    }
    let read = format!("files/{}", input.name);
    PROBE.with_borrow_mut(|probe| {
        for resource in [&upload, &input.raw] {
            let status = probe.query_write_status(resource);
            match upload_id(resource) {
                Some(id) => {
                    assert_eq!(status.code(), Code::NotFound, "QueryWriteStatus {resource:?}: {status:?}");
                    assert!(status.message().contains(&format!("{id:?}")), "{resource:?}: {status:?}");
                }
                None => refused(resource, &status),
            }
        }
        for resource in [&read, &input.raw] {
            let status = probe.read(resource);
            match read_name(resource) {
                Some(_) => assert_eq!(status.code(), Code::NotFound, "Read {resource:?}: {status:?}"),
                None => refused(resource, &status),
            }
        }
    });
});

/// Refused by the parser, before the store.
fn refused(resource: &str, status: &tonic::Status) {
    assert_eq!(status.code(), Code::InvalidArgument, "{resource:?}: {status:?}");
    assert!(status.message().starts_with("resource_name "), "{resource:?}: {status:?}");
}
