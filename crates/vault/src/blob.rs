//! Turning chunks into encrypted blob frames and back.
//!
//! A blob's plaintext is a codec byte (0 = stored, 1 = zstd) followed by the
//! payload. Compression is skipped when a 64 KiB sample from the middle of a
//! large chunk does not shrink by 5 % at zstd level 1 (media, random data,
//! already-compressed archives), and the compressed form is kept only when
//! it saves at least 1/32 of the size.

use crate::crypto::{aad, BlobId, Keys};
use crate::pack::{CODEC_RAW, CODEC_ZSTD};
use std::cell::RefCell;

const SAMPLE: usize = 64 * 1024;
const SAMPLE_FROM: usize = 256 * 1024;

struct Zstd {
    level: i32,
    comp: Option<zstd::bulk::Compressor<'static>>,
    probe: Option<zstd::bulk::Compressor<'static>>,
    dec: Option<zstd::bulk::Decompressor<'static>>,
    buf: Vec<u8>,
}

thread_local! {
    static ZSTD: RefCell<Zstd> = const { RefCell::new(Zstd { level: 0, comp: None, probe: None, dec: None, buf: Vec::new() }) };
}

fn compress_into(z: &mut Zstd, level: i32, data: &[u8]) -> Option<usize> {
    if z.comp.is_none() || z.level != level {
        z.comp = zstd::bulk::Compressor::new(level).ok();
        z.level = level;
    }
    if data.len() >= SAMPLE_FROM {
        if z.probe.is_none() {
            z.probe = zstd::bulk::Compressor::new(1).ok();
        }
        let mid = data.len() / 2 - SAMPLE / 2;
        let sample = &data[mid..mid + SAMPLE];
        z.buf.clear();
        z.buf.reserve(zstd::zstd_safe::compress_bound(SAMPLE));
        let probe = z.probe.as_mut()?;
        let n = probe.compress_to_buffer(sample, &mut z.buf).ok()?;
        if n > SAMPLE - SAMPLE / 20 {
            return None;
        }
    }
    z.buf.clear();
    z.buf.reserve(zstd::zstd_safe::compress_bound(data.len()));
    let comp = z.comp.as_mut()?;
    let n = comp.compress_to_buffer(data, &mut z.buf).ok()?;
    (n + n / 32 < data.len()).then_some(n)
}

/// Encrypts a chunk into a blob frame (compressing it when worthwhile).
/// Returns the frame and whether it was compressed.
pub(crate) fn seal_blob(keys: &Keys, data: &[u8], level: i32) -> (Vec<u8>, bool) {
    if data.len() >= 64 {
        let sealed = ZSTD.with(|z| {
            let mut z = z.borrow_mut();
            let n = compress_into(&mut z, level, data)?;
            Some(keys.seal(aad::BLOB, &[&[CODEC_ZSTD], &z.buf[..n]]))
        });
        if let Some(f) = sealed {
            return (f, true);
        }
    }
    (keys.seal(aad::BLOB, &[&[CODEC_RAW], data]), false)
}

/// Decrypts, decompresses and checks a blob frame against its id.
pub(crate) fn open_blob(
    keys: &Keys,
    id: &BlobId,
    frame: &[u8],
    raw_len: u32,
) -> Result<Vec<u8>, String> {
    let mut pt = keys
        .open(aad::BLOB, frame)
        .ok_or("blob does not authenticate (damaged or tampered)")?;
    let codec = *pt.first().ok_or("empty blob")?;
    let data = match codec {
        CODEC_RAW => {
            pt.drain(..1);
            pt
        }
        CODEC_ZSTD => ZSTD.with(|z| {
            let mut z = z.borrow_mut();
            if z.dec.is_none() {
                z.dec = zstd::bulk::Decompressor::new().ok();
            }
            let dec = z.dec.as_mut().ok_or("zstd unavailable")?;
            let mut out = Vec::with_capacity(raw_len as usize);
            dec.decompress_to_buffer(&pt[1..], &mut out)
                .map_err(|e| format!("zstd: {e}"))?;
            Ok::<_, String>(out)
        })?,
        c => return Err(format!("unknown codec {c}")),
    };
    if data.len() != raw_len as usize {
        return Err(format!(
            "blob is {} bytes, index says {raw_len}",
            data.len()
        ));
    }
    if keys.blob_id(&data) != *id {
        return Err("content does not match its id".into());
    }
    Ok(data)
}

/// [`open_blob`] without copies: decrypts `frame` in place and returns the
/// content, either inside `frame` (stored blobs) or in `scratch` (zstd).
pub(crate) fn open_blob_in_place<'a>(
    keys: &Keys,
    id: &BlobId,
    frame: &'a mut [u8],
    raw_len: u32,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], String> {
    let pt = keys
        .open_in_place(aad::BLOB, frame)
        .ok_or("blob does not authenticate (damaged or tampered)")?;
    let (codec, payload) = pt.split_first().ok_or("empty blob")?;
    let data: &[u8] = match *codec {
        CODEC_RAW => payload,
        CODEC_ZSTD => {
            scratch.clear();
            scratch.reserve(raw_len as usize);
            ZSTD.with(|z| {
                let mut z = z.borrow_mut();
                if z.dec.is_none() {
                    z.dec = zstd::bulk::Decompressor::new().ok();
                }
                let dec = z.dec.as_mut().ok_or("zstd unavailable")?;
                dec.decompress_to_buffer(&*payload, scratch)
                    .map_err(|e| format!("zstd: {e}"))?;
                Ok::<_, String>(())
            })?;
            scratch
        }
        c => return Err(format!("unknown codec {c}")),
    };
    if data.len() != raw_len as usize {
        return Err(format!(
            "blob is {} bytes, index says {raw_len}",
            data.len()
        ));
    }
    if keys.blob_id(data) != *id {
        return Err("content does not match its id".into());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn compressible_chunks_shrink_and_random_ones_are_stored() {
        let keys = Keys::derive(&MasterKey::generate());
        let text = b"import numpy as np\n".repeat(20_000);
        let (f, compressed) = seal_blob(&keys, &text, 3);
        assert!(compressed && f.len() < text.len() / 10);
        let id = keys.blob_id(&text);
        assert_eq!(open_blob(&keys, &id, &f, text.len() as u32).unwrap(), text);
        let (mut f2, mut scratch) = (f.clone(), Vec::new());
        let got = open_blob_in_place(&keys, &id, &mut f2, text.len() as u32, &mut scratch).unwrap();
        assert_eq!(got, &text[..]);

        let mut random = vec![0u8; 300 * 1024];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut random);
        let (f, compressed) = seal_blob(&keys, &random, 3);
        assert!(!compressed);
        let id = keys.blob_id(&random);
        assert_eq!(
            open_blob(&keys, &id, &f, random.len() as u32).unwrap(),
            random
        );
    }

    #[test]
    fn a_blob_under_the_wrong_id_is_rejected() {
        let keys = Keys::derive(&MasterKey::generate());
        let (f, _) = seal_blob(
            &keys,
            b"hello hello hello hello hello hello hello hello hello hello hello",
            3,
        );
        let err = open_blob(&keys, &[0; 32], &f, 65).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
    }
}
