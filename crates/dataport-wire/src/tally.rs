//! [`Tally`]: how many gRPC messages a body's data holds, counted as the
//! data passes, for the metrics (`grpc_server_msg_received_total` and
//! `grpc_server_msg_sent_total`).

/// Counts the messages whose prefix has passed, across data frames cut
/// anywhere (a prefix may straddle two frames). It reads the five prefix
/// bytes of each message and skips its body: a 1 GiB upload costs a few
/// instructions a frame. It judges nothing: the reader of the messages
/// refuses what is wrong with them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    count: u64,
    /// Bytes of the current message's body still to come.
    left: u64,
    /// Bytes of the next prefix seen so far.
    have: usize,
    prefix: [u8; 5],
}

impl Tally {
    /// Counts what `data`, the next bytes of the body, holds.
    pub fn see(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.left > 0 {
                let skip = usize::try_from(self.left).unwrap_or(usize::MAX).min(data.len());
                self.left -= skip as u64;
                data = &data[skip..];
                continue;
            }
            let take = (5 - self.have).min(data.len());
            self.prefix[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if self.have == 5 {
                let [_, a, b, c, d] = self.prefix;
                self.left = u64::from(u32::from_be_bytes([a, b, c, d]));
                self.have = 0;
                self.count += 1;
            }
        }
    }

    /// The messages begun so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::Tally;

    fn message(len: usize) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
        m.resize(5 + len, 7);
        m
    }

    #[test]
    fn messages_are_counted_however_the_frames_cut_them() {
        let body: Vec<u8> = [message(3), message(0), message(300), message(1)].concat();
        for cut in 1..=body.len() {
            let mut tally = Tally::default();
            for frame in body.chunks(cut) {
                tally.see(frame);
            }
            assert_eq!(tally.count(), 4, "frames of {cut} bytes");
        }
    }

    #[test]
    fn a_message_is_counted_once_its_prefix_has_passed() {
        let mut tally = Tally::default();
        tally.see(&message(10)[..4]);
        assert_eq!(tally.count(), 0);
        tally.see(&[10]);
        assert_eq!(tally.count(), 1);
        tally.see(&[0; 10]);
        tally.see(&[]);
        assert_eq!(tally.count(), 1);
    }
}
