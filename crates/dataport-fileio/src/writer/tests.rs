use tempfile::NamedTempFile;

use super::*;
use crate::direct::tests::direct_temp_file;

/// Bytes that differ at every offset, so a block written in the wrong
/// place shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
}

fn sha(data: &[u8]) -> Sha256Digest {
    Sha256Digest(Sha256::digest(data).into())
}

/// A writer of an empty file that takes direct I/O, and the file.
fn direct_writer(sync_every: u64) -> (NamedTempFile, DurableWriter) {
    let temp = direct_temp_file();
    let writer = DurableWriter::new(temp.reopen().unwrap(), temp.path().to_owned(), sync_every);
    (temp, writer)
}

/// Writes `data` in unaligned pieces, some larger than a block, some of one
/// byte.
fn write_in_pieces(writer: &mut DurableWriter, data: &[u8]) {
    let mut rest = data;
    for size in [1, 4095, 3 * BLOCK / 2, 7, BLOCK + 1].into_iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, after) = rest.split_at(size.min(rest.len()));
        writer.write(piece).unwrap();
        rest = after;
    }
}

/// Finishes and syncs `writer`, and checks the digest, the sizes and the
/// file it wrote.
fn finish_and_check(mut writer: DurableWriter, path: &Path, data: &[u8]) {
    let digest = writer.finish().unwrap();
    assert_eq!(writer.sync().unwrap(), data.len() as u64);
    assert_eq!((writer.written(), writer.durable()), (data.len() as u64, data.len() as u64));
    drop(writer);
    assert_eq!(digest, sha(data));
    assert!(std::fs::read(path).unwrap() == data, "the file differs from what was written");
}

#[test]
fn pieces_of_any_size_make_the_file_and_its_sha256_with_direct_io() {
    let (temp, mut writer) = direct_writer(1 << 20);
    let data = pattern(3 * BLOCK + 12_345);
    write_in_pieces(&mut writer, &data);
    writer.drain().unwrap();
    let disk = writer.disk.as_ref().expect("the disk is back once the pipeline is drained");
    assert!(disk.direct.is_some(), "a descriptor for direct I/O");
    assert!(!disk.cached_only.load(Ordering::Relaxed), "no direct write was refused");
    finish_and_check(writer, temp.path(), &data);
}

#[test]
fn without_direct_io_every_block_goes_through_the_cache() {
    // What a file system without direct I/O gives: `direct::open` fails.
    let temp = NamedTempFile::new().unwrap();
    let mut writer = DurableWriter::new(temp.reopen().unwrap(), temp.path().to_owned(), 1 << 20);
    let file = writer.file().try_clone().unwrap();
    writer.disk = Some(Disk { file, direct: None, cached_only: AtomicBool::new(false) });
    let data = pattern(3 * BLOCK + 12_345);
    write_in_pieces(&mut writer, &data);
    writer.drain().unwrap();
    assert!(writer.disk.as_ref().is_some_and(|disk| disk.direct.is_none()), "the cache only");
    finish_and_check(writer, temp.path(), &data);
}

#[test]
fn a_direct_write_refused_goes_through_the_cache_and_so_do_the_next() {
    // Memory off the alignment the file system asks is refused with EINVAL,
    // as a file system with a larger alignment than ours would refuse a
    // block: that block, and every one after, is written through the cache.
    let temp = direct_temp_file();
    let disk = Disk::open(temp.as_file(), temp.path()).unwrap();
    assert!(disk.direct.is_some(), "a descriptor for direct I/O");
    let data = pattern(2 * BLOCK);
    let mut first = Block::new();
    first.reset(0);
    first.base = Some(first.base.expect("aligned memory") + 1);
    assert_eq!(first.push(&data), BLOCK);
    assert!(!first.direct_range().is_empty(), "the block would go direct");
    disk.write(&first).unwrap();
    assert!(disk.cached_only.load(Ordering::Relaxed), "the refusal switched to the cache");
    let mut second = Block::new();
    second.reset(BLOCK as u64);
    assert_eq!(second.push(&data[BLOCK..]), BLOCK);
    disk.write(&second).unwrap();
    assert!(std::fs::read(temp.path()).unwrap() == data);
}

#[test]
fn a_sync_midway_makes_that_much_durable_and_writing_goes_on() {
    let (temp, mut writer) = direct_writer(u64::MAX);
    let data = pattern(BLOCK + 5000);
    writer.write(&data[..1000]).unwrap();
    assert_eq!(writer.sync().unwrap(), 1000);
    assert_eq!(writer.durable(), 1000);
    writer.write(&data[1000..]).unwrap();
    finish_and_check(writer, temp.path(), &data);
}

#[test]
fn a_resumed_writer_hashes_what_the_file_holds_and_goes_on() {
    let (temp, mut writer) = direct_writer(u64::MAX);
    let data = pattern(BLOCK + 3 * BLOCK / 2 + 77);
    let cut = BLOCK + 5;
    writer.write(&data[..cut]).unwrap();
    assert_eq!(writer.sync().unwrap(), cut as u64);
    drop(writer);
    let durable = Arc::new(AtomicU64::new(0));
    let mut writer =
        DurableWriter::resume(temp.reopen().unwrap(), temp.path().to_owned(), 1 << 20, Arc::clone(&durable))
            .unwrap();
    assert_eq!((writer.written(), durable.load(Ordering::Acquire)), (cut as u64, cut as u64));
    writer.write(&data[cut..]).unwrap();
    finish_and_check(writer, temp.path(), &data);
    assert_eq!(durable.load(Ordering::Acquire), data.len() as u64, "shared with the caller");
}

#[test]
fn a_flush_waits_until_every_byte_below_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = File::create(dir.path().join("f")).unwrap();
    let durable = Arc::new(AtomicU64::new(0));
    let failure = Arc::new(Mutex::new(None));
    let flusher = Flusher::spawn(&file, Arc::clone(&durable), failure);
    let mut written = Written { prefix: 0, mark: 0, sync_every: 10, beyond: BTreeMap::new(), flusher };
    // Written out of turn: nothing below 8 is missing only after 0..4 comes.
    written.add(4..8, &file).unwrap();
    written.add(8..12, &file).unwrap();
    assert_eq!((written.prefix, written.mark), (0, 0));
    written.add(0..4, &file).unwrap();
    assert_eq!((written.prefix, written.mark), (12, 12));
    written.add(16..30, &file).unwrap();
    written.add(12..16, &file).unwrap();
    assert_eq!((written.prefix, written.mark), (30, 30));
    assert!(written.beyond.is_empty());
    written.flusher.finish();
    assert_eq!(durable.load(Ordering::Acquire), 30);
}
