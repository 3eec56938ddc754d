//! Heap bytes held by the permessage-deflate codec's zlib streams (flate2 with the
//! zlib-rs backend), measured with a counting allocator: a compressor at 15 and 9 window
//! bits, a decompressor, fresh and after 200 KB of text through them. What a reactor pays
//! once for `--deflate` (docs/operations.md). Run: `cargo bench --bench deflate_state`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to the system allocator with the same arguments; the
// counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let text: Vec<u8> = (0..200_000usize)
        .map(|i| b"lorem ipsum dolor sit amet, consectetur "[(i * 7 + i / 13) % 40])
        .collect();
    let mut out = vec![0u8; 400_000];
    let mut back = vec![0u8; 400_000];
    for bits in [15u8, 9] {
        let start = LIVE.load(Relaxed);
        let mut z = Compress::new_with_window_bits(Compression::default(), false, bits);
        let fresh = LIVE.load(Relaxed) - start;
        z.compress(&text, &mut out, FlushCompress::Sync).unwrap();
        let used = LIVE.load(Relaxed) - start;
        println!("compressor, {bits}-bit window: {fresh} B fresh, {used} B after 200 KB");
        drop(z);
    }
    let start = LIVE.load(Relaxed);
    let mut z = Decompress::new_with_window_bits(false, 15);
    let fresh = LIVE.load(Relaxed) - start;
    let mut c = Compress::new_with_window_bits(Compression::default(), false, 15);
    c.compress(&text, &mut out, FlushCompress::Sync).unwrap();
    let n = c.total_out() as usize;
    drop(c);
    z.decompress(&out[..n], &mut back, FlushDecompress::Sync)
        .unwrap();
    let used = LIVE.load(Relaxed) - start;
    println!("decompressor, 15-bit window: {fresh} B fresh, {used} B after 200 KB");
}
