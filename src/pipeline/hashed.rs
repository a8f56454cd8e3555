//! A stored file read on a thread of its own that hashes it as it goes.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use super::BUF_SIZE;

/// Reads a file on a thread of its own that hashes each chunk before handing it over, so that
/// the SHA-256 of the stored bytes costs no time on the thread that decodes them (with SHA-NI it
/// runs at over 1 GB/s, beside a decoder that is slower). Memory stays bounded: a few chunks of
/// [`BUF_SIZE`] are in flight, then reused.
pub struct HashedFile {
    chunks: Receiver<io::Result<Vec<u8>>>,
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    failed: bool,
    worker: Option<JoinHandle<io::Result<(String, u64)>>>,
    /// Set when the reader is dropped on purpose: the worker then hashes the rest by itself.
    drain: Arc<AtomicBool>,
}

/// The hash of a [`HashedFile`] wrapped in a reader that cannot give it back (a decryptor):
/// the reader is dropped, and the file's worker hashes what is left by itself.
pub struct Drain {
    worker: JoinHandle<io::Result<(String, u64)>>,
    drain: Arc<AtomicBool>,
}

impl Drain {
    /// Drops `reader` (which holds the [`HashedFile`]), then waits for the whole file's hash.
    pub(super) fn finish<R>(self, reader: R) -> io::Result<(String, u64)> {
        self.drain.store(true, Ordering::SeqCst);
        drop(reader);
        self.worker
            .join()
            .map_err(|_| io::Error::other("the hashing thread failed"))?
    }
}

/// Chunks read ahead of the consumer.
const READ_AHEAD: usize = 4;

impl HashedFile {
    pub fn new(mut file: File) -> HashedFile {
        let (chunk_tx, chunks) = sync_channel::<io::Result<Vec<u8>>>(READ_AHEAD);
        let (spare, spare_rx) = sync_channel::<Vec<u8>>(READ_AHEAD + 2);
        let drain = Arc::new(AtomicBool::new(false));
        let draining = drain.clone();
        let worker = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            let mut bytes = 0u64;
            let mut sending = true;
            let mut kept = Vec::new();
            loop {
                let mut buf = if sending {
                    spare_rx.try_recv().unwrap_or_default()
                } else {
                    std::mem::take(&mut kept)
                };
                buf.resize(BUF_SIZE, 0);
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let failed = io::Error::new(e.kind(), e.to_string());
                        let _ = chunk_tx.send(Err(e));
                        return Err(failed);
                    }
                };
                buf.truncate(n);
                hasher.update(&buf);
                bytes += n as u64;
                if !sending {
                    kept = buf;
                } else if chunk_tx.send(Ok(buf)).is_err() {
                    // The reader is gone: the rest is hashed only if someone waits for it.
                    if !draining.load(Ordering::SeqCst) {
                        return Err(io::Error::other("the reader stopped"));
                    }
                    sending = false;
                }
            }
            Ok((hex::encode(hasher.finalize()), bytes))
        });
        HashedFile {
            chunks,
            spare,
            current: Vec::new(),
            pos: 0,
            failed: false,
            worker: Some(worker),
            drain,
        }
    }

    /// The handle that gets this file's hash once the reader wrapping it is dropped.
    pub(super) fn drain(&mut self) -> Drain {
        Drain {
            worker: self.worker.take().expect("taken once"),
            drain: self.drain.clone(),
        }
    }

    /// Reads what is left and returns the SHA-256 and size of the whole file.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        while let Ok(chunk) = self.chunks.recv() {
            let _ = self.spare.try_send(chunk?);
        }
        if self.failed {
            return Err(io::Error::other("the file could not be read to its end"));
        }
        self.worker
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| io::Error::other("the hashing thread failed"))?
    }
}

impl Read for HashedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            let done = std::mem::take(&mut self.current);
            let _ = self.spare.try_send(done);
            self.pos = 0;
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => {
                    self.failed = true;
                    return Err(e);
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// SHA-256 and size of a whole file, streamed.
pub fn hash_file(file: File) -> io::Result<(String, u64)> {
    HashedFile::new(file).finish()
}
