//! [`LocalReader`]: a file read in chunks, with direct I/O when it is large.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::direct::{self, DirectReader};

/// A file opened for reading, in chunks or as any [`Read`]. A large file is
/// read with direct I/O (`O_DIRECT`) where the file system allows it,
/// and through the page cache from the first read it refuses on. The
/// store reads its stored files this way, the CLI the files it uploads.
#[derive(Debug)]
pub struct LocalReader {
    file: File,
    direct: Option<DirectReader>,
}

impl LocalReader {
    /// Files at least this large are read with direct I/O.
    pub const DIRECT_MIN: u64 = direct::READ_MIN;

    /// Reads `file` (at `path`, `size` bytes long), with direct I/O if it is
    /// large and the file system allows.
    pub fn new(file: File, path: &Path, size: u64) -> LocalReader {
        let direct = if size >= Self::DIRECT_MIN { DirectReader::open(path) } else { None };
        LocalReader { file, direct }
    }

    /// Reads up to `max` bytes into a new vector, fewer only at the end of
    /// the file. Unlike `read` into a buffer, nothing is zeroed first (a
    /// download that zeroed each 1 MiB chunk before reading into it spent a
    /// ninth of its server CPU time doing so), and a large file's aligned
    /// chunks go from the disk straight into the vector.
    pub fn read_chunk(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if let Some(chunk) = self.try_direct(|direct| direct.read_chunk(max))? {
            return Ok(chunk);
        }
        // `File` reads into the spare capacity without zeroing it.
        let mut chunk = Vec::with_capacity(max);
        (&mut self.file).take(max as u64).read_to_end(&mut chunk)?;
        Ok(chunk)
    }

    /// `read` with the direct reader, if there is one; `None` if there is
    /// none, or if the file system refused the read for its alignment: the
    /// reader then goes on through the cache from the same position.
    fn try_direct<T>(
        &mut self,
        read: impl FnOnce(&mut DirectReader) -> io::Result<T>,
    ) -> io::Result<Option<T>> {
        let Some(direct) = &mut self.direct else { return Ok(None) };
        match read(direct) {
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                self.file.seek(SeekFrom::Start(direct.position()))?;
                self.direct = None;
                Ok(None)
            }
            done => done.map(Some),
        }
    }
}

impl Read for LocalReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.try_direct(|direct| direct.read(buf))? {
            Some(n) => Ok(n),
            None => self.file.read(buf),
        }
    }
}

impl Seek for LocalReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match &mut self.direct {
            Some(direct) => direct.seek(pos),
            None => self.file.seek(pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::direct::tests::direct_temp_file;

    /// A file of `len` bytes that differ at every offset, and its bytes;
    /// `direct`: one that takes direct I/O.
    fn large(len: usize, direct: bool) -> (tempfile::NamedTempFile, Vec<u8>) {
        let mut file = if direct { direct_temp_file() } else { tempfile::NamedTempFile::new().unwrap() };
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect();
        file.write_all(&data).unwrap();
        (file, data)
    }

    fn open(file: &tempfile::NamedTempFile) -> LocalReader {
        let size = file.as_file().metadata().unwrap().len();
        LocalReader::new(File::open(file.path()).unwrap(), file.path(), size)
    }

    /// Reads every chunk of `max` bytes, checking that only the last is short.
    fn read_chunks(reader: &mut LocalReader, max: usize) -> Vec<u8> {
        let mut read = Vec::new();
        loop {
            let chunk = reader.read_chunk(max).unwrap();
            if chunk.is_empty() {
                return read;
            }
            assert!(chunk.len() == max || reader.read_chunk(max).unwrap().is_empty(), "a short chunk midway");
            read.extend_from_slice(&chunk);
        }
    }

    /// Reads, seeks and chunks at every kind of offset; `reader` holds `data`.
    fn reads_back(reader: &mut LocalReader, data: &[u8]) {
        assert!(read_chunks(reader, 1 << 20) == data, "chunks of 1 MiB");
        let mut buf = vec![0; 5_000];
        for start in [0, 1, 4095, 4096, (2 << 20) - 7, data.len() as u64 - 5_000] {
            assert_eq!(reader.seek(SeekFrom::Start(start)).unwrap(), start);
            reader.read_exact(&mut buf).unwrap();
            assert!(buf == data[start as usize..start as usize + 5_000], "at {start}");
            let at = start as usize + 5_000;
            let chunk = reader.read_chunk(8192).unwrap();
            assert!(chunk == data[at..(at + 8192).min(data.len())], "a chunk after {start}");
        }
        assert_eq!(reader.seek(SeekFrom::End(-1)).unwrap(), data.len() as u64 - 1);
        assert_eq!(reader.read(&mut buf).unwrap(), 1);
        assert_eq!(reader.read(&mut buf).unwrap(), 0);
        assert!(reader.seek(SeekFrom::Current(-(data.len() as i64) - 1)).is_err());
    }

    #[test]
    fn a_large_file_is_read_with_direct_io_where_the_file_system_takes_it() {
        let (file, data) = large(LocalReader::DIRECT_MIN as usize + (1 << 20) + 4096 + 77, true);
        let mut reader = open(&file);
        assert!(reader.direct.is_some(), "a large file opens for direct I/O");
        reads_back(&mut reader, &data);
        assert!(reader.direct.is_some(), "every read went direct, none fell back to the cache");
    }

    #[test]
    fn a_small_file_is_read_through_the_cache() {
        let (file, data) = large(LocalReader::DIRECT_MIN as usize - 1, false);
        let mut reader = open(&file);
        assert!(reader.direct.is_none());
        reads_back(&mut reader, &data);
    }

    #[test]
    fn a_large_file_reads_the_same_through_the_cache() {
        // What a file system without direct I/O gets: `direct::open` fails.
        let (file, data) = large(LocalReader::DIRECT_MIN as usize + 3 * 4096 + 123, false);
        let mut reader = open(&file);
        reader.direct = None;
        reads_back(&mut reader, &data);
    }

    #[test]
    fn a_direct_read_refused_midway_goes_on_through_the_cache() {
        // Memory off the alignment the file system asks is refused with
        // EINVAL, as a file system with a larger alignment than ours would
        // refuse our reads: the reader carries on from the same position.
        let (file, data) = large(LocalReader::DIRECT_MIN as usize + 4096 + 5, true);
        let mut reader = open(&file);
        let mut buf = vec![0; 100];
        reader.read_exact(&mut buf).unwrap();
        assert!(reader.direct.is_some(), "direct so far");
        reader.seek(SeekFrom::Start(3 << 20)).unwrap();
        reader.direct.as_mut().unwrap().misalign();
        reader.read_exact(&mut buf).unwrap();
        assert!(reader.direct.is_none(), "the refused read switched to the cache");
        assert!(buf == data[3 << 20..(3 << 20) + 100]);

        let mut reader = open(&file);
        reader.seek(SeekFrom::Start(5 << 20)).unwrap();
        reader.direct.as_mut().unwrap().misalign();
        // Not a multiple of the alignment, so it goes through the reader's buffer.
        let chunk = reader.read_chunk(1000).unwrap();
        assert!(reader.direct.is_none(), "the refused chunk switched to the cache");
        assert!(chunk == data[5 << 20..(5 << 20) + 1000]);
        assert!(read_chunks(&mut reader, 1 << 20) == data[(5 << 20) + 1000..]);
    }
}
