//! Rewriting an ELF file's `DT_RUNPATH` / `DT_RPATH` in place.
//!
//! A pyenv-built `python3.11` (and `libpython3.11.so`, and every module in
//! `lib-dynload`) carries `RUNPATH=/root/.pyenv/versions/3.11.7/lib`: copied
//! elsewhere, it still loads `libpython` from the old prefix while that
//! exists, and fails to start once it is gone. The fix is the one a linker
//! would have made with `-rpath '$ORIGIN/../lib'`: the new value is written
//! over the old string in `.dynstr` and padded with NULs, which is possible
//! whenever it is not longer — `$ORIGIN`-relative values almost always are.
//! Nothing else in the file moves. A string that another dynamic entry
//! shares (suffix merging) is not touched.

/// Outcome for one file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Edit {
    /// Not an ELF file, or one without a run path that `map` changes.
    Unchanged,
    /// Bytes to write at these offsets (the file keeps its length).
    Patched(Vec<(usize, Vec<u8>)>),
    /// A run path needs changing but cannot be changed in place.
    Refused(String),
}

impl Edit {
    /// Apply a [`Edit::Patched`] to the whole file's bytes.
    pub(crate) fn apply(patches: &[(usize, Vec<u8>)], data: &mut [u8]) -> bool {
        for (offset, bytes) in patches {
            match data.get_mut(*offset..offset + bytes.len()) {
                Some(slot) => slot.copy_from_slice(bytes),
                None => return false,
            }
        }
        true
    }
}

#[derive(Clone, Copy)]
struct Reader<'a> {
    data: &'a [u8],
    is64: bool,
    le: bool,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&self, off: u64) -> Option<[u8; N]> {
        let off = usize::try_from(off).ok()?;
        self.data.get(off..off.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, off: u64) -> Option<u64> {
        let b = self.bytes::<2>(off)?;
        Some(u64::from(if self.le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }))
    }
    fn u32(&self, off: u64) -> Option<u64> {
        let b = self.bytes::<4>(off)?;
        Some(u64::from(if self.le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }))
    }
    fn u64(&self, off: u64) -> Option<u64> {
        let b = self.bytes::<8>(off)?;
        Some(if self.le {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }
    /// A word: 8 bytes in ELF64, 4 in ELF32.
    fn word(&self, off: u64) -> Option<u64> {
        if self.is64 {
            self.u64(off)
        } else {
            self.u32(off)
        }
    }
}

const PT_LOAD: u64 = 1;
const PT_DYNAMIC: u64 = 2;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

struct Segment {
    kind: u64,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Rewrite the run paths of `data` (the file, or a prefix of it): each
/// `:`-separated entry is passed to `map`, which returns its replacement (or
/// `None` to keep it). `None` when `data` cannot be parsed as ELF — a
/// malformed file, or a prefix too short to hold what the headers point to.
pub(crate) fn patch_run_paths(data: &[u8], map: impl Fn(&str) -> Option<String>) -> Option<Edit> {
    try_patch(data, &map).ok()
}

fn try_patch(data: &[u8], map: &dyn Fn(&str) -> Option<String>) -> Result<Edit, ()> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return Ok(Edit::Unchanged);
    }
    let r = Reader {
        data,
        is64: data[4] == 2,
        le: data[5] == 1,
    };
    if !matches!(data[4], 1 | 2) || !matches!(data[5], 1 | 2) {
        return Ok(Edit::Unchanged);
    }
    let (phoff, phentsize, phnum) = if r.is64 {
        (
            r.u64(0x20).ok_or(())?,
            r.u16(0x36).ok_or(())?,
            r.u16(0x38).ok_or(())?,
        )
    } else {
        (
            r.u32(0x1c).ok_or(())?,
            r.u16(0x2a).ok_or(())?,
            r.u16(0x2c).ok_or(())?,
        )
    };
    let mut segments = Vec::new();
    for i in 0..phnum {
        let base = phoff
            .checked_add(i.checked_mul(phentsize).ok_or(())?)
            .ok_or(())?;
        let seg = if r.is64 {
            Segment {
                kind: r.u32(base).ok_or(())?,
                offset: r.u64(base + 8).ok_or(())?,
                vaddr: r.u64(base + 16).ok_or(())?,
                filesz: r.u64(base + 32).ok_or(())?,
            }
        } else {
            Segment {
                kind: r.u32(base).ok_or(())?,
                offset: r.u32(base + 4).ok_or(())?,
                vaddr: r.u32(base + 8).ok_or(())?,
                filesz: r.u32(base + 16).ok_or(())?,
            }
        };
        segments.push(seg);
    }
    let Some(dynamic) = segments.iter().find(|s| s.kind == PT_DYNAMIC) else {
        return Ok(Edit::Unchanged);
    };
    let entry_size = if r.is64 { 16 } else { 8 };
    let word = if r.is64 { 8 } else { 4 };
    let (mut strtab, mut strsz) = (None, None);
    let mut run_paths = Vec::new();
    let mut other_strings = Vec::new();
    let mut off = dynamic.offset;
    let end = dynamic.offset.checked_add(dynamic.filesz).ok_or(())?;
    while off + entry_size <= end {
        let tag = r.word(off).ok_or(())?;
        let val = r.word(off + word).ok_or(())?;
        match tag {
            DT_NULL => break,
            DT_STRTAB => strtab = Some(val),
            DT_STRSZ => strsz = Some(val),
            DT_RPATH | DT_RUNPATH => run_paths.push(val),
            DT_NEEDED | DT_SONAME => other_strings.push(val),
            _ => {}
        }
        off += entry_size;
    }
    if run_paths.is_empty() {
        return Ok(Edit::Unchanged);
    }
    let (strtab, strsz) = (strtab.ok_or(())?, strsz.ok_or(())?);
    let strtab_off = segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| strtab >= s.vaddr && strtab < s.vaddr + s.filesz)
        .map(|s| s.offset + (strtab - s.vaddr))
        .ok_or(())?;
    let mut patches: Vec<(usize, Vec<u8>)> = Vec::new();
    for val in run_paths {
        if val >= strsz {
            return Err(());
        }
        let start = usize::try_from(strtab_off + val).map_err(|_| ())?;
        let limit = usize::try_from(strtab_off + strsz)
            .map_err(|_| ())?
            .min(data.len());
        let len = data
            .get(start..limit)
            .ok_or(())?
            .iter()
            .position(|&b| b == 0)
            .ok_or(())?;
        let old = std::str::from_utf8(&data[start..start + len]).map_err(|_| ())?;
        let mut changed = false;
        let new: Vec<String> = old
            .split(':')
            .map(|entry| match map(entry) {
                Some(n) if n != entry => {
                    changed = true;
                    n
                }
                _ => entry.to_string(),
            })
            .collect();
        if !changed {
            continue;
        }
        let new = new.join(":");
        if new.len() > len {
            return Ok(Edit::Refused(format!(
                "run path {old:?} would become {new:?}, longer than the space it has"
            )));
        }
        if other_strings
            .iter()
            .any(|&o| o > val && o <= val + len as u64)
        {
            return Ok(Edit::Refused(format!(
                "run path {old:?} shares its bytes with another name"
            )));
        }
        let mut bytes = vec![0u8; len];
        bytes[..new.len()].copy_from_slice(new.as_bytes());
        patches.push((start, bytes));
    }
    Ok(if patches.is_empty() {
        Edit::Unchanged
    } else {
        Edit::Patched(patches)
    })
}

/// `to` relative to the folder `from_dir`, both absolute and normalised
/// (`/a/b/bin`, `/a/b/lib` → `../lib`; equal → empty).
pub(crate) fn relative(from_dir: &std::path::Path, to: &std::path::Path) -> Option<String> {
    use std::path::Component;
    let a: Vec<Component> = from_dir.components().collect();
    let b: Vec<Component> = to.components().collect();
    if a.iter()
        .chain(&b)
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return None;
    }
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), a.len() - common).collect();
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A minimal ELF64 little-endian file: one PT_LOAD covering everything,
    /// a PT_DYNAMIC with STRTAB, STRSZ, NEEDED and RUNPATH.
    fn tiny_elf(runpath: &str) -> Vec<u8> {
        let mut f = vec![0u8; 0x200];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        f[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
        let ph = |f: &mut Vec<u8>, at: usize, kind: u32, off: u64, vaddr: u64, sz: u64| {
            f[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            f[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            f[at + 32..at + 40].copy_from_slice(&sz.to_le_bytes());
        };
        ph(&mut f, 64, 1, 0, 0x1000, 0x200); // PT_LOAD at vaddr 0x1000
        ph(&mut f, 120, 2, 0x100, 0x1100, 0x50); // PT_DYNAMIC
        let strtab = 0x180usize;
        let needed = b"libpython3.11.so.1.0\0";
        f[strtab + 1..strtab + 1 + needed.len()].copy_from_slice(needed);
        let rp_off = 1 + needed.len();
        f[strtab + rp_off..strtab + rp_off + runpath.len()].copy_from_slice(runpath.as_bytes());
        let dyn_entries: [(u64, u64); 5] = [
            (DT_NEEDED, 1),
            (DT_STRTAB, 0x1000 + strtab as u64),
            (DT_STRSZ, 0x80),
            (DT_RUNPATH, rp_off as u64),
            (DT_NULL, 0),
        ];
        for (i, (t, v)) in dyn_entries.iter().enumerate() {
            let at = 0x100 + i * 16;
            f[at..at + 8].copy_from_slice(&t.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&v.to_le_bytes());
        }
        f
    }

    fn runpath_of(f: &[u8]) -> String {
        let start = 0x180 + 1 + "libpython3.11.so.1.0\0".len();
        let len = f[start..].iter().position(|&b| b == 0).unwrap();
        String::from_utf8(f[start..start + len].to_vec()).unwrap()
    }

    #[test]
    fn a_run_path_under_the_old_prefix_becomes_origin_relative_in_place() {
        let elf = tiny_elf("/root/.pyenv/versions/3.11.7/lib:/usr/lib");
        let map = |e: &str| {
            (e == "/root/.pyenv/versions/3.11.7/lib").then(|| "$ORIGIN/../lib".to_string())
        };
        let Some(Edit::Patched(patches)) = patch_run_paths(&elf, map) else {
            panic!("not patched");
        };
        let mut out = elf.clone();
        assert!(Edit::apply(&patches, &mut out));
        assert_eq!(runpath_of(&out), "$ORIGIN/../lib:/usr/lib");
        let diff: Vec<usize> = (0..elf.len()).filter(|&i| elf[i] != out[i]).collect();
        assert!(
            diff.iter().all(|&i| (0x180..0x200).contains(&i)),
            "only .dynstr bytes change"
        );
    }

    #[test]
    fn a_longer_run_path_is_refused() {
        let elf = tiny_elf("/a/lib");
        let map = |_: &str| Some("/a/much/longer/lib".to_string());
        assert!(matches!(patch_run_paths(&elf, map), Some(Edit::Refused(_))));
    }

    #[test]
    fn files_that_are_not_elf_or_need_nothing_are_unchanged() {
        assert_eq!(
            patch_run_paths(b"#!/bin/sh\n", |_| Some("x".into())),
            Some(Edit::Unchanged)
        );
        let elf = tiny_elf("/usr/lib");
        assert_eq!(patch_run_paths(&elf, |_| None), Some(Edit::Unchanged));
        let mut truncated = tiny_elf("/x");
        truncated.truncate(100);
        assert_eq!(
            patch_run_paths(&truncated, |_| Some("y".into())),
            None,
            "too short to tell"
        );
    }

    #[test]
    fn relative_paths_between_folders() {
        assert_eq!(
            relative(Path::new("/b/bin"), Path::new("/b/lib")).unwrap(),
            "../lib"
        );
        assert_eq!(
            relative(
                Path::new("/b/lib/python3.11/lib-dynload"),
                Path::new("/b/lib")
            )
            .unwrap(),
            "../.."
        );
        assert_eq!(
            relative(Path::new("/b/lib"), Path::new("/b/lib")).unwrap(),
            ""
        );
    }
}
