//! Who is calling, and whether they may: tokens with scopes from the
//! `auth_tokens` file, and mutual-TLS clients matched by their
//! certificate's name, checked once per call by [`crate::stack`] before any
//! service sees it.
//!
//! Every method needs a scope `AREA:ACCESS` ([`need`]): `write` for the
//! methods that change stored state, `read` for the rest; health is open to
//! all, reflection to any known caller unless `reflection_public`. The file
//! holds only each secret's sha256; a presented secret is hashed and
//! compared with every entry in constant time. The file is read again when
//! it changes or on SIGHUP (a file that does not load leaves the one loaded
//! before in use).
//!
//! ```toml
//! [[token]]
//! name = "collector"          # who, as call lines show it
//! sha256 = "<hex sha256 of the secret>"
//! scopes = ["outliers:read", "market:read"]
//!
//! [[client]]                  # a mutual-TLS client, by its certificate's name
//! name = "ingest.example.com"
//! scopes = ["files:write"]
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use http::HeaderName;
use sha2::{Digest, Sha256};
use tonic::Status;

use crate::tls::Peer;
use crate::watch::Watched;

/// A family of RPCs, as scopes name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Greeter,
    Route,
    Position,
    Market,
    Outliers,
    Files,
}

impl Area {
    const ALL: [Area; 6] =
        [Area::Greeter, Area::Route, Area::Position, Area::Market, Area::Outliers, Area::Files];

    fn name(self) -> &'static str {
        match self {
            Area::Greeter => "greeter",
            Area::Route => "route",
            Area::Position => "position",
            Area::Market => "market",
            Area::Outliers => "outliers",
            Area::Files => "files",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Reading, or changing stored state (which includes reading).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// What a method asks of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health.
    Open,
    /// Any known caller: reflection (unless `reflection_public`).
    Known,
    Scope(Area, Access),
}

use Access::{Read, Write};
use Area::{Files, Greeter, Market, Outliers, Position, Route};

/// Every method served, with what it asks: `write` for those that change
/// stored state (QueryWriteStatus belongs to a resumable upload, so only its
/// writer may ask), `read` for the rest. A test fails for a served method
/// missing here; a method not served needs only a known caller, who then
/// hears UNIMPLEMENTED.
const METHODS: &[(&str, Area, Access)] = &[
    ("/helloworld.Greeter/SayHello", Greeter, Read),
    ("/helloworld.Greeter/SayHelloAgain", Greeter, Read),
    ("/routeguide.RouteGuide/GetFeature", Route, Read),
    ("/routeguide.RouteGuide/ListFeatures", Route, Read),
    ("/routeguide.RouteGuide/RecordRoute", Route, Read),
    ("/routeguide.RouteGuide/RouteChat", Route, Read),
    ("/posXYZ.PositionService/PositionReq", Position, Read),
    ("/posXYZ.PositionService/PositionPub", Position, Write),
    ("/dataport.position.v1.PositionService/Publish", Position, Write),
    ("/dataport.position.v1.PositionService/Get", Position, Read),
    ("/dataport.position.v1.PositionService/Watch", Position, Read),
    ("/idc.Indicator/GetMACD", Market, Read),
    ("/idc.IndicatorGraph/GetMACDGraph", Market, Read),
    ("/dataport.market.v1.MarketService/ImportBars", Market, Write),
    ("/dataport.market.v1.MarketService/ListSymbols", Market, Read),
    ("/dataport.market.v1.MarketService/GetBars", Market, Read),
    ("/dataport.market.v1.MarketService/ComputeIndicators", Market, Read),
    ("/dataport.market.v1.MarketService/RenderChart", Market, Read),
    ("/dataport.market.v1.MarketService/DeleteSymbol", Market, Write),
    ("/pb.Outliers/Detect", Outliers, Read),
    ("/dataport.outliers.v1.OutliersService/Detect", Outliers, Read),
    ("/dataport.outliers.v1.OutliersService/DetectStream", Outliers, Read),
    ("/FileSrv/UploadFile", Files, Write),
    ("/FileSrv/DownloadFile", Files, Read),
    ("/FileTransfer.FileService/Upload", Files, Write),
    ("/dataport.files.v1.FilesService/Upload", Files, Write),
    ("/dataport.files.v1.FilesService/Download", Files, Read),
    ("/dataport.files.v1.FilesService/List", Files, Read),
    ("/dataport.files.v1.FilesService/Stat", Files, Read),
    ("/dataport.files.v1.FilesService/Delete", Files, Write),
    ("/google.bytestream.ByteStream/Read", Files, Read),
    ("/google.bytestream.ByteStream/Write", Files, Write),
    ("/google.bytestream.ByteStream/QueryWriteStatus", Files, Write),
];

/// What the method at `path` (`/package.Service/Method`) needs; `None` for
/// a method this server does not serve.
pub fn need(path: &str) -> Option<Need> {
    if path.starts_with("/grpc.health.v1.Health/") {
        return Some(Need::Open);
    }
    if path.starts_with("/grpc.reflection.") {
        return Some(Need::Known);
    }
    let (_, area, access) = METHODS.iter().find(|(method, _, _)| *method == path)?;
    Some(Need::Scope(*area, *access))
}

/// The areas a caller may read and may write, one bit an area.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scopes {
    read: u8,
    write: u8,
}

impl Scopes {
    /// Parses `AREA:ACCESS` scopes (`*` for every area).
    pub fn parse<S: AsRef<str>>(scopes: &[S]) -> Result<Scopes, String> {
        let mut out = Scopes::default();
        for scope in scopes {
            let scope = scope.as_ref();
            let bad = || {
                format!(
                    "scope {scope:?} is not AREA:ACCESS, AREA one of greeter, route, position, market, outliers, files or *, ACCESS read or write"
                )
            };
            let (area, access) = scope.split_once(':').ok_or_else(bad)?;
            let bits = match area {
                "*" => Area::ALL.iter().fold(0, |bits, a| bits | a.bit()),
                name => Area::ALL.iter().find(|a| a.name() == name).ok_or_else(bad)?.bit(),
            };
            match access {
                "read" => out.read |= bits,
                "write" => {
                    out.read |= bits;
                    out.write |= bits;
                }
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }

    fn allow(self, area: Area, access: Access) -> bool {
        let bits = match access {
            Access::Read => self.read,
            Access::Write => self.write,
        };
        bits & area.bit() != 0
    }
}

/// Who made a call, as its call line names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller(pub Arc<str>);

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug)]
struct Token {
    name: Arc<str>,
    sha256: [u8; 32],
    scopes: Scopes,
}

/// The entries of one token file.
#[derive(Debug, Default)]
struct Entries {
    tokens: Vec<Token>,
    clients: HashMap<String, (Arc<str>, Scopes)>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<TokenEntry>,
    #[serde(default)]
    client: Vec<ClientEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    sha256: String,
    scopes: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    name: String,
    scopes: Vec<String>,
}

impl Entries {
    fn read(path: &Path) -> Result<Entries, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("auth_tokens {}: {e}", path.display()))?;
        Entries::parse(&text).map_err(|e| format!("auth_tokens {}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<Entries, String> {
        let file: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let mut entries = Entries::default();
        for (i, t) in file.token.into_iter().enumerate() {
            let at = |what: String| format!("[[token]] {} ({:?}): {what}", i + 1, t.name);
            let sha256 = hex32(&t.sha256).ok_or_else(|| {
                at(format!("sha256 {:?} is not 64 hex digits (`dataport token new` prints one)", t.sha256))
            })?;
            if entries.tokens.iter().any(|other| other.sha256 == sha256) {
                return Err(at("the same secret as an earlier token".to_owned()));
            }
            let scopes = Scopes::parse(&t.scopes).map_err(at)?;
            entries.tokens.push(Token { name: Arc::from(t.name), sha256, scopes });
        }
        for (i, c) in file.client.into_iter().enumerate() {
            let scopes =
                Scopes::parse(&c.scopes).map_err(|e| format!("[[client]] {} ({:?}): {e}", i + 1, c.name))?;
            let name: Arc<str> = Arc::from(c.name.as_str());
            entries.clients.insert(c.name, (name, scopes));
        }
        Ok(entries)
    }

    /// The token whose secret is `secret`, and its place, looked for in
    /// constant time: every entry is compared, whatever matches.
    fn token(&self, secret: &[u8]) -> Option<(usize, &Token)> {
        let digest: [u8; 32] = Sha256::digest(secret).into();
        let mut found = None;
        for (index, token) in self.tokens.iter().enumerate() {
            found = if equal(&token.sha256, &digest) { Some((index, token)) } else { found };
        }
        found
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim().as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// The hex sha256 of a secret, as the token file holds it.
pub fn secret_sha256(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The callers a server knows, from its token file.
#[derive(Debug)]
pub struct Auth {
    path: PathBuf,
    entries: RwLock<Arc<Entries>>,
    /// The number of the entries in use, new on every load and reload
    /// ([`next_generation`]), so each thread knows when its copy of
    /// `entries` is stale without touching the lock (see [`Auth::with_entries`]).
    generation: AtomicU64,
    reflection_public: bool,
    watched: Mutex<Option<Watched>>,
}

thread_local! {
    /// The entries this thread last read, and their generation: a call
    /// reads them with no shared write, where the lock and an `Arc` clone
    /// would each bounce a cache line between cores.
    static ENTRIES: RefCell<Option<ThreadCopy>> = const { RefCell::new(None) };
}

/// A number never given before, for entries loaded (by any `Auth`): a
/// thread's copy is of the entries in use exactly when its number is the
/// auth's. (Keyed by the auth's address, a copy outlived its auth: a new
/// one made at the same address answered from the old file, as the fuzz
/// target `tokens_config` found.)
fn next_generation() -> u64 {
    static GENERATIONS: AtomicU64 = AtomicU64::new(1);
    GENERATIONS.fetch_add(1, Ordering::Relaxed)
}

/// A thread's copy of the entries in use (see [`ENTRIES`]).
struct ThreadCopy {
    generation: u64,
    entries: Arc<Entries>,
    recent: Recent,
}

/// How many secrets a thread remembers (see [`Recent`]).
const RECENT: usize = 4;

/// The secrets this thread last found among the entries, and the token
/// each is: a client sends the same one on every call, and a secret
/// remembered skips its sha256. Compared in constant time, every one of
/// them; only known secrets are remembered, and a reload forgets them all.
#[derive(Default)]
struct Recent {
    seen: Vec<(Box<[u8]>, usize)>,
    /// The one to replace next once full.
    next: usize,
}

impl Recent {
    fn token<'e>(&mut self, entries: &'e Entries, secret: &[u8]) -> Option<&'e Token> {
        let mut found = None;
        for (known, index) in &self.seen {
            found = if equal(known, secret) { Some(*index) } else { found };
        }
        if let Some(index) = found {
            return entries.tokens.get(index);
        }
        let (index, token) = entries.token(secret)?;
        let remembered = (Box::from(secret), index);
        if self.seen.len() < RECENT {
            self.seen.push(remembered);
        } else {
            self.seen[self.next] = remembered;
            self.next = (self.next + 1) % RECENT;
        }
        Some(token)
    }
}

/// Whether `a` and `b` are the same bytes, in a time that depends on their
/// lengths only.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const AUTHORIZATION: HeaderName = http::header::AUTHORIZATION;

impl Auth {
    /// Reads the token file; an error here refuses to start.
    pub fn load(path: PathBuf, reflection_public: bool) -> Result<Arc<Auth>, String> {
        let watched = Watched::new(vec![path.clone()]);
        let entries = RwLock::new(Arc::new(Entries::read(&path)?));
        let generation = AtomicU64::new(next_generation());
        Ok(Arc::new(Auth {
            path,
            entries,
            generation,
            reflection_public,
            watched: Mutex::new(Some(watched)),
        }))
    }

    /// Reads the file again; keeps the entries in use if it does not load.
    pub fn reload(&self) -> Result<(), String> {
        let entries = Entries::read(&self.path)?;
        let mut in_use = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        *in_use = Arc::new(entries);
        self.generation.store(next_generation(), Ordering::Release);
        Ok(())
    }

    /// Runs `f` over the entries in use, read through this thread's copy,
    /// and the secrets this thread remembers of them.
    fn with_entries<T>(&self, f: impl FnOnce(&Entries, &mut Recent) -> T) -> T {
        let generation = self.generation.load(Ordering::Acquire);
        ENTRIES.with_borrow_mut(|cached| {
            let copy = match cached {
                Some(copy) if copy.generation == generation => copy,
                _ => {
                    let entries = Arc::clone(&self.entries.read().unwrap_or_else(PoisonError::into_inner));
                    cached.insert(ThreadCopy { generation, entries, recent: Recent::default() })
                }
            };
            f(&copy.entries, &mut copy.recent)
        })
    }

    /// Reloads when the file changes or on SIGHUP.
    pub fn watch(self: &Arc<Self>) {
        let watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(watched) = watched {
            let auth = Arc::clone(self);
            watched.spawn("auth_tokens", move || auth.reload());
        }
    }

    /// Who is calling `request`, if known, and whether they may call a
    /// method that needs `need` ([`need`] of its path): UNAUTHENTICATED for
    /// no or an unknown token, PERMISSION_DENIED naming the scope a known
    /// caller lacks.
    pub fn check(
        &self,
        request: &http::request::Parts,
        peer: Option<&Peer>,
        need: Option<Need>,
    ) -> (Option<Caller>, Result<(), Status>) {
        match self.with_entries(|entries, recent| self.identify(request, peer, need, entries, recent)) {
            Ok((caller, allowed)) => (caller, allowed),
            Err(status) => (None, Err(status)),
        }
    }

    /// The caller (none for a method open to all: the call line then names
    /// its certificate, or anonymous), and whether they may call; an error
    /// when unknown.
    fn identify(
        &self,
        request: &http::request::Parts,
        peer: Option<&Peer>,
        need: Option<Need>,
        entries: &Entries,
        recent: &mut Recent,
    ) -> Result<(Option<Caller>, Result<(), Status>), Status> {
        let path = request.uri.path();
        // A method not served needs a known caller, who then hears UNIMPLEMENTED.
        // Open to all, the call still names a known token's holder.
        let open = |recent: &mut Recent| {
            let secret = request.headers.get(AUTHORIZATION).and_then(|v| bearer(v.as_bytes()));
            let token = secret.and_then(|secret| recent.token(entries, secret));
            Ok((token.map(|token| Caller(Arc::clone(&token.name))), Ok(())))
        };
        let need = match need.unwrap_or(Need::Known) {
            Need::Open => return open(recent),
            Need::Known if self.reflection_public && path.starts_with("/grpc.reflection.") => {
                return open(recent);
            }
            need => need,
        };
        let (name, scopes) = match request.headers.get(AUTHORIZATION) {
            Some(value) => {
                let secret = bearer(value.as_bytes()).ok_or_else(|| {
                    Status::unauthenticated("the authorization header is not `Bearer SECRET`")
                })?;
                let token = recent
                    .token(entries, secret)
                    .ok_or_else(|| Status::unauthenticated("the token is not known to this server"))?;
                (Arc::clone(&token.name), token.scopes)
            }
            None => match peer.and_then(|p| p.certificate_name.as_deref()) {
                Some(certificate) => {
                    let (name, scopes) = entries.clients.get(certificate).ok_or_else(|| {
                        Status::unauthenticated(format!(
                            "the client certificate {certificate:?} has no [[client]] entry in auth_tokens, and no token was sent"
                        ))
                    })?;
                    (Arc::clone(name), *scopes)
                }
                None => {
                    return Err(Status::unauthenticated(
                        "this server needs a token: send the metadata `authorization: Bearer SECRET`",
                    ));
                }
            },
        };
        let allowed = match need {
            Need::Scope(area, access) if !scopes.allow(area, access) => {
                let access = match access {
                    Access::Read => "read",
                    Access::Write => "write",
                };
                Err(Status::permission_denied(format!(
                    "{name} may not call {path}: it needs the scope {}:{access}",
                    area.name()
                )))
            }
            _ => Ok(()),
        };
        Ok((Some(Caller(name)), allowed))
    }
}

/// The secret of an `authorization: Bearer SECRET` value.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, secret) = value.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ") && !secret.is_empty()).then_some(secret)
}

#[cfg(test)]
mod tests;
