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
    count: u32,
    /// Bytes of the current message's body still to come.
    left: u32,
    /// Bytes of the next prefix seen so far (0 to 4; the fifth completes it).
    have: u8,
    /// The length bytes of the next prefix seen so far (its flag is not kept).
    length: [u8; 4],
}

impl Tally {
    /// Counts what `data`, the next bytes of the body, holds.
    pub fn see(&mut self, mut data: &[u8]) {
        loop {
            let skip = usize::try_from(self.left).unwrap_or(usize::MAX).min(data.len());
            self.left -= skip as u32;
            data = &data[skip..];
            match data {
                [] => return,
                // The common case: a whole prefix in this frame.
                [_, a, b, c, d, rest @ ..] if self.have == 0 => {
                    self.begin(u32::from_be_bytes([*a, *b, *c, *d]));
                    data = rest;
                }
                // A prefix cut between frames, a byte at a time; the flag
                // byte (the first) is not kept.
                [byte, rest @ ..] => {
                    if self.have > 0 {
                        self.length[usize::from(self.have - 1)] = *byte;
                    }
                    if self.have == 4 {
                        self.begin(u32::from_be_bytes(self.length));
                    } else {
                        self.have += 1;
                    }
                    data = rest;
                }
            }
        }
    }

    fn begin(&mut self, length: u32) {
        self.left = length;
        self.have = 0;
        self.count = self.count.saturating_add(1);
    }

    /// The messages begun so far.
    pub fn count(&self) -> u64 {
        u64::from(self.count)
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
