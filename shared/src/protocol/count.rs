//! Counting what an encoded request holds before decoding it, so a server can refuse
//! one over its limits without allocating for it.

/// Counts the records (pushed and wanted) and the changes of an encoded
/// [`SyncRequest`] without allocating — so a server can refuse one over its limits
/// before decoding it (an empty change is one byte on the wire but 24 in memory) — by
/// walking its postcard layout: varints for `version`, `cursor`, `page_bytes` and every
/// length, 16 raw bytes per record id. `None` when the body is not shaped like one
/// (decoding then says why). Every step consumes at least one byte, so the walk is
/// linear in the (size-limited) body.
pub fn count_request_entries(mut bytes: &[u8]) -> Option<(usize, usize)> {
    fn varint(bytes: &mut &[u8]) -> Option<usize> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let (b, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(b & 0x7f).checked_shl(7 * i)?;
            if b & 0x80 == 0 {
                return usize::try_from(value).ok();
            }
        }
        None
    }
    fn skip(bytes: &mut &[u8], n: usize) -> Option<()> {
        *bytes = bytes.get(n..)?;
        Some(())
    }
    fn skip_bytes(bytes: &mut &[u8]) -> Option<()> {
        let n = varint(bytes)?;
        skip(bytes, n)
    }
    let b = &mut bytes;
    let version = varint(b)?;
    for _cursor_page_bytes in 0..2 {
        varint(b)?;
    }
    let records = varint(b)?;
    let mut changes = 0usize;
    if version == 1 {
        for _ in 0..records {
            skip(b, 16)?;
            let n = varint(b)?;
            changes = changes.saturating_add(n);
            for _ in 0..n {
                skip_bytes(b)?;
            }
        }
    } else {
        // `Packed`: records (reference, count), kinds (one byte a change), headers,
        // columns, extras, verbatim chunks. A reference is a 16-byte id (variant 0) or
        // an offset (variant 1).
        for _ in 0..records {
            match varint(b)? {
                0 => skip(b, 16)?,
                1 => {
                    varint(b)?;
                }
                _ => return None,
            }
            varint(b)?;
        }
        changes = varint(b)?;
        skip(b, changes)?;
        skip_bytes(b)?;
        for _ in 0..varint(b)? {
            varint(b)?;
            skip_bytes(b)?;
        }
        skip_bytes(b)?;
        for _ in 0..varint(b)? {
            skip_bytes(b)?;
        }
    }
    let wanted = varint(b)?;
    skip(b, wanted.checked_mul(16)?)?;
    Some((records.saturating_add(wanted), changes))
}
