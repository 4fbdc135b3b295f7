//! The session's input buffer: bytes read from the transport and not yet consumed by
//! the core.
//!
//! It is allocated on the first read (1 KiB: an idle session holds little), doubles
//! while reads fill it, and halves again after a run of small reads. Up to
//! [`FREE`] bytes are free; growth beyond, up to [`MAX`], is charged to a budget shared
//! by all sessions of an agent, so a few bulk sessions read in big chunks while hundreds
//! of busy ones stay small.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// First size.
const FIRST: usize = 1 << 10;
/// Sizes up to this are not charged to the budget.
pub(crate) const FREE: usize = 64 << 10;
/// Largest size.
const MAX: usize = 256 << 10;
/// An agent's budget for input-buffer bytes beyond [`FREE`], all sessions together.
pub(crate) const BUDGET: usize = 4 << 20;
/// Consecutive small reads (under a quarter of the free space) before halving.
const SHRINK_AFTER: u32 = 16;

/// Input-buffer bytes beyond [`FREE`] that an agent's sessions may hold at once.
#[derive(Debug)]
pub(crate) struct ReadBudget {
    used: AtomicUsize,
    limit: usize,
}

impl ReadBudget {
    pub(crate) fn new(limit: usize) -> Arc<ReadBudget> {
        Arc::new(ReadBudget {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Charges up to `n` bytes; returns how many were granted.
    fn take(&self, n: usize) -> usize {
        let r = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                let grant = n.min(self.limit.saturating_sub(u));
                (grant > 0).then_some(u + grant)
            });
        match r {
            Ok(before) => n.min(self.limit.saturating_sub(before)),
            Err(_) => 0,
        }
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Bytes `[start, end)` of `buf` wait for the core.
pub(crate) struct RxBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    charged: usize,
    small_reads: u32,
    budget: Arc<ReadBudget>,
}

impl RxBuf {
    pub(crate) fn new(budget: Arc<ReadBudget>) -> RxBuf {
        RxBuf {
            buf: Vec::new(),
            start: 0,
            end: 0,
            charged: 0,
            small_reads: 0,
            budget,
        }
    }

    /// The bytes waiting for the core.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The core consumed `n` bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Everything pending, handed elsewhere (to TLS at the contact-header boundary).
    pub(crate) fn take_pending(&mut self) -> Vec<u8> {
        let v = self.pending().to_vec();
        self.start = 0;
        self.end = 0;
        v
    }

    /// Free space to read into, after moving pending bytes to the front; empty when
    /// the buffer is full of unconsumed input.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf.resize(FIRST, 0);
        }
        if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`RxBuf::spare`] (`room` long): adapts the size.
    pub(crate) fn filled(&mut self, n: usize, room: usize) {
        self.end += n;
        let len = self.buf.len();
        if n == room && len < MAX && self.start == 0 {
            self.small_reads = 0;
            self.resize(len * 2);
        } else if n < room / 4 && len > FIRST && self.is_empty() {
            self.small_reads += 1;
            if self.small_reads >= SHRINK_AFTER {
                self.small_reads = 0;
                self.resize(len / 2);
            }
        }
    }

    fn resize(&mut self, want: usize) {
        let want = want.clamp(FIRST, MAX).max(self.end);
        let need = want.saturating_sub(FREE);
        let mut len = want;
        if need > self.charged {
            self.charged += self.budget.take(need - self.charged);
            len = len.min(FREE + self.charged).max(self.end);
        } else if need < self.charged {
            self.budget.give(self.charged - need);
            self.charged = need;
        }
        if len < self.buf.len() {
            self.buf.truncate(len);
            self.buf.shrink_to_fit();
        } else {
            self.buf.resize(len, 0);
        }
    }
}

impl Drop for RxBuf {
    fn drop(&mut self) {
        self.budget.give(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_the_budget_and_gives_it_back() {
        let budget = ReadBudget::new(100 << 10);
        let mut a = RxBuf::new(budget.clone());
        for _ in 0..12 {
            let room = a.spare().len();
            a.filled(room, room);
            a.consume(room);
        }
        // 64 KiB free + 100 KiB of budget.
        assert_eq!(a.buf.len(), FREE + (100 << 10));
        let mut b = RxBuf::new(budget.clone());
        for _ in 0..12 {
            let room = b.spare().len();
            b.filled(room, room);
            b.consume(room);
        }
        assert_eq!(b.buf.len(), FREE, "no budget left for the second");
        drop(a);
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
    }

    #[test]
    fn pending_bytes_survive_compaction() {
        let mut r = RxBuf::new(ReadBudget::new(0));
        let room = r.spare().len();
        r.spare()[..3].copy_from_slice(b"abc");
        r.filled(3, room);
        r.consume(1);
        assert_eq!(r.pending(), b"bc");
        assert_eq!(r.take_pending(), b"bc");
        assert!(r.is_empty());
    }
}
