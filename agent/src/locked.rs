//! Locked memory for plaintext: an arena of [`LockedRegion`] chunks carved into slots by
//! size class, and a single locked scratch buffer type.
//!
//! Why an arena: `mlock` works on whole pages and is not reference-counted, so locking many
//! small heap allocations would either lock their neighbours or unlock them again on free.
//! The arena owns its pages outright; a value is a [`Slot`] (chunk, offset, length) into
//! them. Freed slots are wiped at once and reused by their size class; the pages go back to
//! the kernel — wiped — only when the arena is dropped, i.e. when the vault locks.

use crate::harden::LockedRegion;
use std::io;

/// Slot sizes: powers of two and the midpoints between them, so at most a third of a slot
/// is wasted. The largest class holds a maximum-size value (64 KiB).
const CLASSES: [usize; 24] = [
    16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192,
    12288, 16384, 24576, 32768, 49152, 65536,
];

/// The first chunk is small so a small vault locks little memory; later chunks double up to
/// this size.
const MAX_CHUNK: usize = 1 << 20;
const FIRST_CHUNK: usize = 64 << 10;

/// Where a value lives in the arena. Not `Clone`: a slot is freed exactly once, by
/// [`LockedArena::free`].
#[derive(Debug, PartialEq, Eq)]
pub struct Slot {
    chunk: u32,
    offset: u32,
    len: u32,
    /// Index into [`CLASSES`], or `None` for a value with its own chunk or no bytes.
    class: Option<u8>,
}

// Read by the Redis backend's metadata cache; a build without it leaves them unused.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Slot {
    /// The value's length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True for the empty value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Debug)]
struct Chunk {
    region: LockedRegion,
    /// Bytes handed out from the start by bump allocation.
    used: usize,
}

/// An arena of locked, zeroize-on-free memory for secret values.
#[derive(Debug, Default)]
pub struct LockedArena {
    /// `None` marks a dedicated chunk that was freed (its index is kept stable).
    chunks: Vec<Option<Chunk>>,
    /// Per size class, slots ready for reuse: (chunk, offset).
    free: [Vec<(u32, u32)>; CLASSES.len()],
    /// Bytes of values currently stored (not counting slot rounding).
    live_bytes: usize,
}

fn class_for(len: usize) -> Option<usize> {
    CLASSES.iter().position(|&size| size >= len)
}

fn too_big() -> io::Error {
    io::Error::other("locked arena index overflow")
}

impl LockedArena {
    /// An empty arena: no memory mapped yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies `bytes` into a new slot.
    pub fn insert(&mut self, bytes: &[u8]) -> io::Result<Slot> {
        let len = u32::try_from(bytes.len()).map_err(|_| too_big())?;
        if bytes.is_empty() {
            return Ok(Slot {
                chunk: 0,
                offset: 0,
                len: 0,
                class: None,
            });
        }
        let (chunk, offset, class) = match class_for(bytes.len()) {
            Some(class) => {
                let (chunk, offset) = self.take_class_slot(class)?;
                (chunk, offset, Some(class as u8))
            }
            None => (self.dedicated_chunk(bytes.len())?, 0, None),
        };
        let slot = Slot {
            chunk,
            offset,
            len,
            class,
        };
        self.bytes_mut(&slot).copy_from_slice(bytes);
        self.live_bytes += bytes.len();
        Ok(slot)
    }

    fn take_class_slot(&mut self, class: usize) -> io::Result<(u32, u32)> {
        if let Some(spot) = self.free[class].pop() {
            return Ok(spot);
        }
        let size = CLASSES[class];
        let fits = |c: &Chunk| c.region.len() - c.used >= size;
        let index = match self.chunks.last() {
            Some(Some(chunk)) if fits(chunk) => self.chunks.len() - 1,
            _ => {
                let grown = FIRST_CHUNK << self.chunks.len().min(8);
                self.push_chunk(grown.clamp(size, MAX_CHUNK))?
            }
        };
        let chunk = self.chunks[index].as_mut().ok_or_else(too_big)?;
        let offset = chunk.used;
        chunk.used += size;
        Ok((
            u32::try_from(index).map_err(|_| too_big())?,
            u32::try_from(offset).map_err(|_| too_big())?,
        ))
    }

    fn dedicated_chunk(&mut self, len: usize) -> io::Result<u32> {
        let index = self.push_chunk(len)?;
        if let Some(chunk) = self.chunks[index].as_mut() {
            chunk.used = len;
        }
        u32::try_from(index).map_err(|_| too_big())
    }

    fn push_chunk(&mut self, len: usize) -> io::Result<usize> {
        let region = LockedRegion::new(len)?;
        self.chunks.push(Some(Chunk { region, used: 0 }));
        Ok(self.chunks.len() - 1)
    }

    fn region(&self, slot: &Slot) -> &[u8] {
        match self.chunks.get(slot.chunk as usize) {
            Some(Some(chunk)) => chunk.region.as_slice(),
            _ => &[],
        }
    }

    /// The value in `slot`.
    pub fn get(&self, slot: &Slot) -> &[u8] {
        if slot.len == 0 {
            return &[];
        }
        let start = slot.offset as usize;
        &self.region(slot)[start..start + slot.len as usize]
    }

    fn bytes_mut(&mut self, slot: &Slot) -> &mut [u8] {
        let start = slot.offset as usize;
        match self.chunks.get_mut(slot.chunk as usize) {
            Some(Some(chunk)) => &mut chunk.region.as_mut_slice()[start..start + slot.len as usize],
            _ => &mut [],
        }
    }

    /// Wipes `slot` and makes its space reusable.
    pub fn free(&mut self, slot: Slot) {
        if slot.len == 0 {
            return;
        }
        self.bytes_mut(&slot).fill(0);
        self.live_bytes -= slot.len as usize;
        match slot.class {
            Some(class) => self.free[class as usize].push((slot.chunk, slot.offset)),
            // A dedicated chunk goes back to the kernel (wiped by `LockedRegion::drop`).
            None => {
                if let Some(entry) = self.chunks.get_mut(slot.chunk as usize) {
                    *entry = None;
                }
            }
        }
    }

    /// Bytes of values stored.
    pub fn live_bytes(&self) -> usize {
        self.live_bytes
    }

    /// Bytes mapped for values (whole chunks).
    #[cfg(test)]
    pub fn mapped_bytes(&self) -> usize {
        self.chunks.iter().flatten().map(|c| c.region.len()).sum()
    }
}

/// A fixed-size locked buffer for plaintext in transit (an encoded record on its way to
/// encryption, a decrypted one on its way into the arena). Wiped on drop.
#[derive(Debug)]
pub struct LockedBuf {
    region: LockedRegion,
    len: usize,
}

impl LockedBuf {
    /// A zeroed buffer of exactly `len` usable bytes.
    pub fn new(len: usize) -> io::Result<Self> {
        Ok(Self {
            region: LockedRegion::new(len)?,
            len,
        })
    }

    /// Changes the usable length. Shrinking wipes the bytes cut off; growing past the mapping
    /// replaces it with a larger, zeroed one (the old one is wiped), so contents are only
    /// kept when the buffer shrinks or grows within its mapping.
    pub fn resize(&mut self, len: usize) -> io::Result<()> {
        if len > self.region.len() {
            self.region = LockedRegion::new(len.max(self.region.len() * 2))?;
        } else if len < self.len {
            self.region.as_mut_slice()[len..self.len].fill(0);
        }
        self.len = len;
        Ok(())
    }

    /// The usable bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.region.as_slice()[..self.len]
    }

    /// The usable bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.region.as_mut_slice()[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_slots_are_reused() {
        let mut arena = LockedArena::new();
        let a = arena.insert(b"alpha").unwrap();
        let b = arena.insert(&[7u8; 1000]).unwrap();
        let empty = arena.insert(b"").unwrap();
        assert_eq!(arena.get(&a), b"alpha");
        assert_eq!(arena.get(&b), &[7u8; 1000][..]);
        assert_eq!(arena.get(&empty), b"");
        assert_eq!(arena.live_bytes(), 1005);
        let (chunk, offset) = (a.chunk, a.offset);
        arena.free(a);
        let c = arena.insert(b"beta").unwrap();
        assert_eq!((c.chunk, c.offset), (chunk, offset), "freed slot reused");
        assert_eq!(arena.get(&c), b"beta");
        assert_eq!(arena.get(&b), &[7u8; 1000][..], "neighbour untouched");
    }

    #[test]
    fn freed_slots_are_wiped() {
        let mut arena = LockedArena::new();
        let a = arena.insert(b"MARKER-secret").unwrap();
        let (chunk, offset) = (a.chunk as usize, a.offset as usize);
        arena.free(a);
        let region = arena.chunks[chunk].as_ref().unwrap().region.as_slice();
        assert!(region[offset..offset + 13].iter().all(|&b| b == 0));
    }

    #[test]
    fn large_and_max_size_values_fit() {
        let mut arena = LockedArena::new();
        let max = vec![1u8; 65_536];
        let huge = vec![2u8; 200_000];
        let a = arena.insert(&max).unwrap();
        let b = arena.insert(&huge).unwrap();
        assert_eq!(arena.get(&a), &max[..]);
        assert_eq!(arena.get(&b), &huge[..]);
        arena.free(b);
        assert_eq!(arena.get(&a), &max[..]);
    }

    #[test]
    fn many_values_spread_over_chunks() {
        let mut arena = LockedArena::new();
        let slots: Vec<_> = (0..3000u32)
            .map(|i| arena.insert(&i.to_be_bytes().repeat(256)).unwrap())
            .collect();
        for (i, slot) in slots.iter().enumerate() {
            assert_eq!(arena.get(slot), &(i as u32).to_be_bytes().repeat(256)[..]);
        }
        assert!(arena.mapped_bytes() >= 3000 * 1024);
        assert!(arena.mapped_bytes() < 3000 * 1024 * 12 / 10 + MAX_CHUNK);
    }

    #[test]
    fn locked_buf_resizes_and_wipes() {
        let mut buf = LockedBuf::new(8).unwrap();
        buf.as_mut_slice().copy_from_slice(b"12345678");
        buf.resize(4).unwrap();
        assert_eq!(buf.as_slice(), b"1234");
        buf.resize(8).unwrap();
        assert_eq!(buf.as_slice(), b"1234\0\0\0\0");
        buf.resize(10_000).unwrap();
        assert_eq!(buf.as_slice().len(), 10_000);
    }
}
