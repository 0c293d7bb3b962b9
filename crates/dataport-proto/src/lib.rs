//! Generated code for every wire contract Dataport serves: the frozen seed
//! contracts under `proto/compat/` and the versioned `dataport.<area>.v1` APIs
//! under `proto/dataport/`. This crate holds no hand-written logic; it must
//! never depend on another Dataport crate.

#![allow(clippy::all, clippy::too_many_lines, missing_debug_implementations)]

/// The encoded `FileDescriptorSet` of every contract and its imports, for the
/// reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// The path of every method served, as gRPC calls it: a module per package
/// segment and per service, a constant per method
/// (`methods::pb::outliers::DETECT` is `"/pb.Outliers/Detect"`).
pub mod methods {
    include!(concat!(env!("OUT_DIR"), "/methods.rs"));
}

/// `helloworld.Greeter` (seed contract).
pub mod helloworld {
    include!(concat!(env!("OUT_DIR"), "/helloworld.rs"));
}

/// `routeguide.RouteGuide` (seed contract).
pub mod routeguide {
    include!(concat!(env!("OUT_DIR"), "/routeguide.rs"));
}

/// `posXYZ.PositionService` (seed contract).
pub mod pos_xyz {
    include!(concat!(env!("OUT_DIR"), "/pos_xyz.rs"));
}

/// `idc.Indicator` and `idc.IndicatorGraph` (seed contracts).
pub mod idc {
    include!(concat!(env!("OUT_DIR"), "/idc.rs"));
}

/// `pb.Outliers` (seed contract).
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/pb.rs"));
}

/// `FileSrv` (seed contract, declared with no package).
pub mod file_srv {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// `FileTransfer.FileService` (seed contract).
pub mod file_transfer {
    include!(concat!(env!("OUT_DIR"), "/file_transfer.rs"));
}

/// Public Google APIs served as published: `google.bytestream.ByteStream`.
pub mod google {
    pub mod bytestream {
        include!(concat!(env!("OUT_DIR"), "/google.bytestream.rs"));
    }
}

/// gRPC's own APIs served as published: `grpc.health.v1.Health`.
pub mod grpc {
    pub mod health {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.rs"));
        }
    }
}

/// The versioned `dataport.<area>.v1` APIs.
pub mod dataport {
    pub mod files {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/dataport.files.v1.rs"));
        }
    }
    pub mod market {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/dataport.market.v1.rs"));
        }
    }
    pub mod outliers {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/dataport.outliers.v1.rs"));
        }
    }
    pub mod position {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/dataport.position.v1.rs"));
        }
    }
}
