//! Fuzzes what the daemon does with every line a client sends: framing, then parsing.
//!
//! Properties checked on every input:
//! - nothing panics (framing or parsing), whatever the bytes;
//! - the framer never returns a line longer than the cap;
//! - a parsed request re-serialized by the client encoder parses back to the same request;
//! - every error carries a non-empty human message, and an `id` only when the line was JSON
//!   that held one.
#![no_main]

use hardmute_ipc::framing::{LineError, LineReader};
use hardmute_ipc::{parse_request, ErrorKind};
use libfuzzer_sys::fuzz_target;

/// A small cap so the fuzzer reaches the too-large path without megabyte inputs.
const FUZZ_CAP: usize = 256;

fuzz_target!(|data: &[u8]| {
    // The whole input as one line, as the daemon sees a line within the cap.
    check_line(data);

    // The input as a stream, split into lines by the daemon's framer.
    let mut reader = LineReader::new(data, FUZZ_CAP);
    loop {
        match reader.read_line() {
            Ok(Some(line)) => {
                assert!(line.len() <= FUZZ_CAP);
                let line = line.to_vec();
                check_line(&line);
            }
            Ok(None) => break,
            Err(LineError::TooLarge) => continue,
            Err(LineError::Truncated(n)) => {
                assert!(n > 0 && n <= FUZZ_CAP);
                break;
            }
            Err(LineError::Io(e)) => panic!("reading a slice cannot fail: {e}"),
        }
    }
});

fn check_line(line: &[u8]) {
    match parse_request(line) {
        Ok(request) => {
            let encoded = request.to_line();
            let again = parse_request(encoded.trim_end_matches('\n').as_bytes())
                .unwrap_or_else(|e| panic!("re-encoded request does not parse: {e:?}\n{encoded}"));
            assert_eq!(again, request);
        }
        Err(e) => {
            assert!(!e.error.message.is_empty());
            if matches!(e.error.kind, ErrorKind::BadJson | ErrorKind::TooLarge) {
                assert_eq!(e.id, None);
            }
        }
    }
}
