//! A fixed-capacity FIFO for small `Copy` items (events, pending control PDUs), so
//! cores queue without allocating after construction.

/// A ring buffer of at most `N` items.
#[derive(Debug, Clone)]
pub(crate) struct Ring<T: Copy, const N: usize> {
    items: [Option<T>; N],
    head: usize,
    len: usize,
}

impl<T: Copy, const N: usize> Ring<T, N> {
    pub(crate) fn new() -> Self {
        Ring {
            items: [None; N],
            head: 0,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == N
    }

    /// Appends `item`; gives it back if the ring is full.
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        if self.is_full() {
            return Err(item);
        }
        self.items[(self.head + self.len) % N] = Some(item);
        self.len += 1;
        Ok(())
    }

    pub(crate) fn front(&self) -> Option<T> {
        if self.len == 0 {
            None
        } else {
            self.items[self.head]
        }
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        let item = self.front()?;
        self.items[self.head] = None;
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(item)
    }

    pub(crate) fn clear(&mut self) {
        while self.pop().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn fifo_with_wraparound() {
        let mut r: Ring<u8, 3> = Ring::new();
        assert!(r.is_empty());
        for round in 0..5u8 {
            r.push(round).unwrap();
            r.push(round + 100).unwrap();
            assert_eq!(r.pop(), Some(round));
            assert_eq!(r.pop(), Some(round + 100));
        }
        r.push(1).unwrap();
        r.push(2).unwrap();
        r.push(3).unwrap();
        assert_eq!(r.push(4), Err(4));
        assert_eq!(r.len(), 3);
        r.clear();
        assert!(r.is_empty());
    }
}
