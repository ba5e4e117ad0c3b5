//! The decision log's writer: lines are serialized on the world's thread and handed over in
//! large chunks to a second thread that hashes them (sha256, the run's
//! `decision_log_sha256`) and writes them out, in order. A replay spends about a tenth of its
//! time hashing and writing its log; on a machine with a second core that now runs beside the
//! engine instead of after each decision. The bytes written and hashed are the same as when one
//! thread did it all.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Bytes gathered before a chunk is handed to the writer.
const CHUNK: usize = 1 << 20;

/// Chunks in flight at once: the world runs at most this far ahead of the writer.
const IN_FLIGHT: usize = 4;

/// The world's end of the log: serializes lines into the current chunk.
pub(crate) struct DecisionLog<'scope> {
    chunk: Vec<u8>,
    /// Full chunks go to the writer,
    tx: Option<SyncSender<Vec<u8>>>,
    /// and come back empty to be filled again.
    spare: Receiver<Vec<u8>>,
    writer: Option<ScopedJoinHandle<'scope, std::io::Result<String>>>,
    /// Lines written.
    pub(crate) lines: u64,
}

impl<'scope> DecisionLog<'scope> {
    /// Starts the writer thread in `scope`, writing to `out`.
    pub(crate) fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        out: &'env mut (dyn Write + Send),
    ) -> Self {
        let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        let writer = scope.spawn(move || {
            let mut hash = Sha256::new();
            for mut chunk in rx {
                hash.update(&chunk);
                out.write_all(&chunk)?;
                chunk.clear();
                // The world may have stopped taking spares back; a chunk is only memory.
                let _ = spare_tx.try_send(chunk);
            }
            out.flush()?;
            Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
        });
        DecisionLog {
            chunk: Vec::with_capacity(CHUNK + 4096),
            tx: Some(tx),
            spare,
            writer: Some(writer),
            lines: 0,
        }
    }

    /// Appends one line: `line` as compact JSON and a newline.
    pub(crate) fn write(&mut self, line: &impl Serialize) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.chunk, line).map_err(std::io::Error::other)?;
        self.chunk.push(b'\n');
        self.lines += 1;
        if self.chunk.len() >= CHUNK {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Hands the current chunk to the writer and starts another.
    fn hand_over(&mut self) -> std::io::Result<()> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK + 4096));
        let full = std::mem::replace(&mut self.chunk, next);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(full).is_ok());
        if sent {
            Ok(())
        } else {
            // The writer stopped on an error: that error is the one to report.
            Err(self
                .finish()
                .err()
                .unwrap_or_else(|| std::io::Error::other("the decision log writer stopped")))
        }
    }

    /// Writes what is left, waits for the writer, and returns the log's sha256 (hex).
    pub(crate) fn finish(&mut self) -> std::io::Result<String> {
        if let Some(tx) = self.tx.take() {
            let last = std::mem::take(&mut self.chunk);
            if !last.is_empty() {
                // A refusal means the writer already stopped; joining it says why.
                let _ = tx.send(last);
            }
        }
        match self.writer.take() {
            Some(writer) => writer
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the decision log writer panicked"))),
            None => Err(std::io::Error::other(
                "the decision log was already finished",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_reach_the_sink_whole_in_order_and_hashed_as_one_stream() {
        let mut out = Vec::new();
        let (lines, hash) = std::thread::scope(|scope| {
            let mut log = DecisionLog::start(scope, &mut out);
            // Enough lines for several chunks.
            for i in 0..200_000u32 {
                log.write(&serde_json::json!({"i": i, "pad": "x".repeat(i as usize % 17)}))
                    .expect("a Vec takes every byte");
            }
            let hash = log.finish().expect("a Vec takes every byte");
            (log.lines, hash)
        });
        assert_eq!(lines, 200_000);
        let text = String::from_utf8(out.clone()).expect("JSON is UTF-8");
        assert_eq!(text.lines().count(), 200_000);
        for (i, line) in text.lines().enumerate().step_by(9973) {
            let v: serde_json::Value = serde_json::from_str(line).expect("each line whole");
            assert_eq!(v["i"], i as u64);
        }
        let whole: String = Sha256::digest(&out)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hash, whole);
    }

    /// A sink that takes `left` bytes and then fails.
    struct Full {
        left: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.left == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device",
                ));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_sink_is_reported_with_its_own_error() {
        let mut out = Full { left: 3 * CHUNK };
        let err = std::thread::scope(|scope| {
            let mut log = DecisionLog::start(scope, &mut out);
            let line = serde_json::json!({"pad": "y".repeat(200)});
            for _ in 0..1_000_000 {
                if let Err(e) = log.write(&line) {
                    return e;
                }
            }
            log.finish().expect_err("the sink is full")
        });
        assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
    }
}
