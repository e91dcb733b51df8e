//! Keys and the encryption framing.
//!
//! One random 256-bit master key per vault. Everything else is derived from
//! it with BLAKE3's key derivation (domain-separated contexts), so the
//! encryption key and the chunk-id key are independent:
//!
//! * encryption key = `blake3::derive_key("westtek-vault v1 encryption", master)`
//! * chunk-id key   = `blake3::derive_key("westtek-vault v1 chunk id", master)`
//! * chunker seed   = first 8 bytes (LE) of `derive_key("westtek-vault v1 chunker seed", master)`
//!
//! An encrypted frame is `nonce (24) ‖ ciphertext ‖ tag (16)` with
//! XChaCha20-Poly1305, a random nonce per frame and a per-kind
//! associated-data string, so a frame of one kind never opens as another.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

/// Nonce length of a frame.
pub(crate) const NONCE_LEN: usize = 24;
/// Tag length of a frame.
pub(crate) const TAG_LEN: usize = 16;
/// Bytes a frame adds to its plaintext.
pub(crate) const FRAME_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Associated data of each kind of encrypted frame.
pub(crate) mod aad {
    pub(crate) const BLOB: &[u8] = b"westtek-vault v1 blob";
    pub(crate) const PACK_INDEX: &[u8] = b"westtek-vault v1 pack index";
    pub(crate) const INDEX: &[u8] = b"westtek-vault v1 index";
    pub(crate) const SNAPSHOT: &[u8] = b"westtek-vault v1 snapshot";
}

/// The vault's master key (zeroed on drop). Key wrappers produce and consume it.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut k[..]);
        MasterKey(k)
    }

    /// Wraps raw key bytes (from a key wrapper).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(Zeroizing::new(bytes))
    }

    /// The raw key bytes (for key wrappers only).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// The keys derived from the master key.
pub(crate) struct Keys {
    cipher: XChaCha20Poly1305,
    id_key: Zeroizing<[u8; 32]>,
    pub(crate) chunker_seed: u64,
}

/// A chunk (blob) id: keyed BLAKE3 of the plaintext content.
pub(crate) type BlobId = [u8; 32];

impl Keys {
    pub(crate) fn derive(master: &MasterKey) -> Self {
        let enc = Zeroizing::new(blake3::derive_key(
            "westtek-vault v1 encryption",
            master.as_bytes(),
        ));
        let id_key = Zeroizing::new(blake3::derive_key(
            "westtek-vault v1 chunk id",
            master.as_bytes(),
        ));
        let seed = blake3::derive_key("westtek-vault v1 chunker seed", master.as_bytes());
        let mut s8 = [0u8; 8];
        s8.copy_from_slice(&seed[..8]);
        Keys {
            cipher: XChaCha20Poly1305::new((&*enc).into()),
            id_key,
            chunker_seed: u64::from_le_bytes(s8),
        }
    }

    /// The id of a chunk of content.
    pub(crate) fn blob_id(&self, data: &[u8]) -> BlobId {
        *blake3::keyed_hash(&self.id_key, data).as_bytes()
    }

    /// Encrypts `parts` (concatenated) into a new frame.
    pub(crate) fn seal(&self, aad: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut out = Vec::with_capacity(len + FRAME_OVERHEAD);
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        for p in parts {
            out.extend_from_slice(p);
        }
        // Encryption of a buffer under 2^38 bytes cannot fail.
        let tag = self
            .cipher
            .encrypt_in_place_detached(&XNonce::from(nonce), aad, &mut out[NONCE_LEN..])
            .unwrap_or_default();
        out.extend_from_slice(&tag);
        out
    }

    /// Decrypts and authenticates a frame; `None` when it was tampered with,
    /// truncated, or made with another key.
    pub(crate) fn open(&self, aad: &[u8], frame: &[u8]) -> Option<Vec<u8>> {
        if frame.len() < FRAME_OVERHEAD {
            return None;
        }
        let (nonce, rest) = frame.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let tag: [u8; TAG_LEN] = tag.try_into().ok()?;
        let mut buf = ct.to_vec();
        self.cipher
            .decrypt_in_place_detached(&XNonce::from(nonce), aad, &mut buf, &Tag::from(tag))
            .ok()?;
        Some(buf)
    }
}

impl Keys {
    /// Decrypts a frame in place; returns the plaintext, a sub-slice of
    /// `frame`. `None` as for [`Keys::open`].
    pub(crate) fn open_in_place<'a>(
        &self,
        aad: &[u8],
        frame: &'a mut [u8],
    ) -> Option<&'a mut [u8]> {
        if frame.len() < FRAME_OVERHEAD {
            return None;
        }
        let (nonce, rest) = frame.split_at_mut(NONCE_LEN);
        let split = rest.len() - TAG_LEN;
        let (ct, tag) = rest.split_at_mut(split);
        let nonce: [u8; NONCE_LEN] = (&*nonce).try_into().ok()?;
        let tag: [u8; TAG_LEN] = (&*tag).try_into().ok()?;
        self.cipher
            .decrypt_in_place_detached(&XNonce::from(nonce), aad, ct, &Tag::from(tag))
            .ok()?;
        Some(ct)
    }
}

/// Seals with a one-off key (the key wrappers use this for the key object).
pub(crate) fn seal_with(key: &[u8; 32], nonce: &[u8; NONCE_LEN], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut buf = pt.to_vec();
    let tag = cipher
        .encrypt_in_place_detached(&XNonce::from(*nonce), aad, &mut buf)
        .unwrap_or_default();
    buf.extend_from_slice(&tag);
    buf
}

/// Opens what [`seal_with`] made (`ciphertext ‖ tag`).
pub(crate) fn open_with(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ct_tag: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if ct_tag.len() < TAG_LEN {
        return None;
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    let (ct, tag) = ct_tag.split_at(ct_tag.len() - TAG_LEN);
    let tag: [u8; TAG_LEN] = tag.try_into().ok()?;
    let mut buf = Zeroizing::new(ct.to_vec());
    cipher
        .decrypt_in_place_detached(&XNonce::from(*nonce), aad, &mut buf, &Tag::from(tag))
        .ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_opens_only_with_its_key_and_kind() {
        let k = Keys::derive(&MasterKey::generate());
        let other = Keys::derive(&MasterKey::generate());
        let f = k.seal(aad::BLOB, &[b"hello ", b"world"]);
        assert_eq!(f.len(), 11 + FRAME_OVERHEAD);
        assert_eq!(k.open(aad::BLOB, &f).unwrap(), b"hello world");
        assert!(k.open(aad::INDEX, &f).is_none());
        assert!(other.open(aad::BLOB, &f).is_none());
        let mut flipped = f.clone();
        flipped[30] ^= 1;
        assert!(k.open(aad::BLOB, &flipped).is_none());
        assert!(k.open(aad::BLOB, &f[..f.len() - 1]).is_none());
    }

    #[test]
    fn chunk_ids_depend_on_the_vault_key() {
        let a = Keys::derive(&MasterKey::generate());
        let b = Keys::derive(&MasterKey::generate());
        assert_eq!(a.blob_id(b"x"), a.blob_id(b"x"));
        assert_ne!(a.blob_id(b"x"), b.blob_id(b"x"));
    }
}
