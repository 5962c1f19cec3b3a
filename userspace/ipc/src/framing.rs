//! Newline framing with a hard cap on line length.
//!
//! A line longer than the cap is refused as soon as the cap is crossed: the reader keeps at most
//! `cap` bytes of it, reports [`LineError::TooLarge`] at once (so the daemon can answer before
//! the rest arrives), and silently drops the rest of that line on the next call. Memory per
//! connection is therefore bounded by the cap plus the BufReader's buffer, whatever the peer sends.

use std::io::{self, BufRead, BufReader, Read};

#[derive(Debug)]
pub enum LineError {
    /// The line crossed the cap. The rest of it is skipped by the next `read_line`.
    TooLarge,
    /// The stream ended in the middle of a line (holds the bytes received of it).
    Truncated(usize),
    Io(io::Error),
}

impl From<io::Error> for LineError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

pub struct LineReader<R> {
    inner: BufReader<R>,
    line: Vec<u8>,
    cap: usize,
    /// Inside an oversized line: drop bytes up to the next newline.
    discarding: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, cap: usize) -> Self {
        Self {
            inner: BufReader::with_capacity(8 * 1024, inner),
            line: Vec::new(),
            cap,
            discarding: false,
        }
    }

    pub fn get_ref(&self) -> &R {
        self.inner.get_ref()
    }

    /// Reads the next line, without its `\n` (and without a `\r` before it).
    /// `Ok(None)` = the stream ended cleanly between lines.
    pub fn read_line(&mut self) -> Result<Option<&[u8]>, LineError> {
        self.line.clear();
        loop {
            let available = match self.inner.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if available.is_empty() {
                let partial = self.line.len();
                self.line.clear();
                if self.discarding || partial == 0 {
                    self.discarding = false;
                    return Ok(None);
                }
                return Err(LineError::Truncated(partial));
            }
            let newline = available.iter().position(|&b| b == b'\n');
            if self.discarding {
                match newline {
                    Some(i) => {
                        self.inner.consume(i + 1);
                        self.discarding = false;
                    }
                    None => {
                        let n = available.len();
                        self.inner.consume(n);
                    }
                }
                continue;
            }
            let take = newline.unwrap_or(available.len());
            if self.line.len() + take > self.cap {
                // Refuse now; keep nothing more of this line.
                let consumed = newline.map_or(take, |i| i + 1);
                self.inner.consume(consumed);
                self.line.clear();
                self.discarding = newline.is_none();
                return Err(LineError::TooLarge);
            }
            self.line.extend_from_slice(&available[..take]);
            match newline {
                Some(i) => {
                    self.inner.consume(i + 1);
                    if self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    return Ok(Some(&self.line));
                }
                None => self.inner.consume(take),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds the bytes in small pieces, as a socket may.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn lines(input: &[u8], cap: usize, chunk: usize) -> Vec<Result<Vec<u8>, String>> {
        let mut reader = LineReader::new(Trickle(input, chunk), cap);
        let mut out = Vec::new();
        loop {
            match reader.read_line() {
                Ok(Some(line)) => out.push(Ok(line.to_vec())),
                Ok(None) => return out,
                Err(LineError::TooLarge) => out.push(Err("too_large".into())),
                Err(LineError::Truncated(n)) => out.push(Err(format!("truncated {n}"))),
                Err(LineError::Io(e)) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn splits_lines_and_reports_truncation() {
        for chunk in [1, 3, 7, 4096] {
            let got = lines(b"ab\r\n\ncd\nefg", 16, chunk);
            assert_eq!(
                got,
                vec![
                    Ok(b"ab".to_vec()),
                    Ok(vec![]),
                    Ok(b"cd".to_vec()),
                    Err("truncated 3".into())
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn oversized_line_is_refused_and_the_next_line_still_reads() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\nok\n");
        for chunk in [1, 1000, 65536] {
            let got = lines(&input, 64, chunk);
            assert_eq!(
                got,
                vec![Err("too_large".into()), Ok(b"ok".to_vec())],
                "chunk {chunk}"
            );
        }
        // Exactly at the cap is fine; one more byte is not.
        assert_eq!(lines(b"12345678\n", 8, 3), vec![Ok(b"12345678".to_vec())]);
        assert_eq!(
            lines(b"123456789\nz\n", 8, 3),
            vec![Err("too_large".into()), Ok(b"z".to_vec())]
        );
    }

    #[test]
    fn buffer_never_grows_past_the_cap() {
        let input = vec![b'y'; 1 << 20];
        let mut reader = LineReader::new(Trickle(&input, 4096), 1024);
        assert!(matches!(reader.read_line(), Err(LineError::TooLarge)));
        assert!(
            reader.line.capacity() <= 2 * 1024,
            "kept {} bytes",
            reader.line.capacity()
        );
        assert!(matches!(reader.read_line(), Ok(None)));
    }
}
