//! Byte encoding helpers of the binary formats (manifest, index): LEB128
//! varints, zigzag for signed numbers, and a bounds-checked reader whose
//! every failure is a decoding error rather than a panic.

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint.
pub(crate) fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a length-prefixed byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A cursor over an encoded buffer.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Why decoding failed (turned into `VaultError::Corrupt` with the object name).
#[derive(Debug)]
pub(crate) struct DecodeError(pub String);

pub(crate) type DResult<T> = std::result::Result<T, DecodeError>;

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn take(&mut self, n: usize) -> DResult<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError(format!(
                "unexpected end of data at byte {} (wanted {n} more)",
                self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> DResult<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn array32(&mut self) -> DResult<[u8; 32]> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }

    pub(crate) fn uvarint(&mut self) -> DResult<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                break;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError(format!("varint overflow at byte {}", self.pos)))
    }

    pub(crate) fn u32v(&mut self) -> DResult<u32> {
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| DecodeError(format!("value {v} out of range")))
    }

    pub(crate) fn ivarint(&mut self) -> DResult<i64> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub(crate) fn bytes(&mut self, max: usize) -> DResult<&'a [u8]> {
        let n = self.uvarint()?;
        if n > max as u64 {
            return Err(DecodeError(format!("length {n} exceeds limit {max}")));
        }
        self.take(n as usize)
    }

    /// A count of items each at least `min_item` bytes long, checked
    /// against what is left so corrupt counts cannot cause huge allocations.
    pub(crate) fn count(&mut self, min_item: usize) -> DResult<usize> {
        let n = self.uvarint()?;
        if n.saturating_mul(min_item.max(1) as u64) > self.remaining() as u64 {
            return Err(DecodeError(format!("count {n} exceeds the data left")));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_including_extremes() {
        let mut out = Vec::new();
        let us = [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX];
        let is = [0i64, -1, 1, i64::MIN, i64::MAX, -1_000_000_000_000];
        for u in us {
            put_uvarint(&mut out, u);
        }
        for i in is {
            put_ivarint(&mut out, i);
        }
        let mut r = Reader::new(&out);
        for u in us {
            assert_eq!(r.uvarint().unwrap(), u);
        }
        for i in is {
            assert_eq!(r.ivarint().unwrap(), i);
        }
        assert!(r.is_empty());
    }

    #[test]
    fn a_truncated_or_overlong_varint_is_an_error_not_a_panic() {
        assert!(Reader::new(&[0x80]).uvarint().is_err());
        assert!(Reader::new(&[0xff; 11]).uvarint().is_err());
        assert!(Reader::new(&[5, 1, 2]).bytes(10).is_err());
        assert!(Reader::new(&[200, 1]).count(1).is_err());
    }
}
