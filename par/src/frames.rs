//! zstd in independent frames, compressed side by side (issue 16). zstd's top levels
//! run at some 5 MB/s on one core: a 1 MiB pull page or a week's push kept one core
//! busy for 200 ms while the other waited. Split into frames of about half a MiB,
//! compressed on every core, it takes half that on two, for some 3 % more bytes (each
//! frame cannot refer back into the one before it). Concatenated frames are one valid
//! zstd stream: every decoder the apps and the server use reads them as one.

use std::io;

/// About how much of the input one frame takes: less, and the frames lose more of
/// what they could share than the cores gain.
pub const FRAME_BYTES: usize = 512 << 10;

/// `plain` compressed at `level`: one frame, or for a large input up to one frame per
/// core, each of about [`FRAME_BYTES`], compressed at once and concatenated in order.
pub fn compress(plain: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    compress_in(plain, level, frames_for(plain.len(), cores))
}

/// How many frames an input of `len` bytes goes in on `cores` cores: its length in
/// frames, rounded, at least one and at most one a core.
fn frames_for(len: usize, cores: usize) -> usize {
    ((len + FRAME_BYTES / 2) / FRAME_BYTES).clamp(1, cores.max(1))
}

fn compress_in(plain: &[u8], level: i32, frames: usize) -> io::Result<Vec<u8>> {
    if frames <= 1 {
        return zstd::bulk::compress(plain, level);
    }
    let size = plain.len().div_ceil(frames);
    let parts: Vec<&[u8]> = plain.chunks(size).collect();
    let compressed = crate::par_map(&parts, 1, |part| zstd::bulk::compress(part, level));
    let mut out = Vec::with_capacity(compressed.iter().flatten().map(Vec::len).sum());
    for frame in compressed {
        out.extend_from_slice(&frame?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        (0..n as u64)
            .map(|i| b"intake record narrative "[(i.wrapping_mul(2654435761) >> 11) as usize % 24])
            .collect()
    }

    #[test]
    fn frames_follow_the_length_and_the_cores() {
        assert_eq!(frames_for(0, 8), 1);
        assert_eq!(frames_for(FRAME_BYTES, 8), 1);
        // A 1 MiB page is two frames; a bit less is still two (rounded).
        assert_eq!(frames_for(2 * FRAME_BYTES - 20_000, 8), 2);
        assert_eq!(frames_for(5 * FRAME_BYTES, 2), 2);
        assert_eq!(frames_for(5 * FRAME_BYTES, 8), 5);
        assert_eq!(frames_for(5 * FRAME_BYTES, 0), 1);
    }

    #[test]
    fn several_frames_read_back_as_one_stream_with_either_decoder() {
        let plain = sample(3 * FRAME_BYTES + 12_345);
        let one = compress_in(&plain, 3, 1).unwrap();
        let three = compress_in(&plain, 3, 3).unwrap();
        assert_ne!(one, three);
        // Three frames: the magic number at the start of each.
        let magic = [0x28, 0xb5, 0x2f, 0xfd];
        assert_eq!(three.windows(4).filter(|w| *w == magic).count(), 3);
        let mut streamed = Vec::new();
        zstd::stream::read::Decoder::new(&three[..])
            .unwrap()
            .read_to_end(&mut streamed)
            .unwrap();
        assert_eq!(streamed, plain);
        assert_eq!(zstd::bulk::decompress(&three, plain.len()).unwrap(), plain);
    }
}
