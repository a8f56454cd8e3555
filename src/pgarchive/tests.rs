//! Archives built here byte by byte as pg_dump lays them out, mended, and read back by a reader
//! of the tests' own. Real pg_dump archives are mended in tests/it/pgarchive.rs.

// Lengths and IDs here are small numbers of the tests' own.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]
use std::collections::BTreeMap;
use std::io::Read;

use proptest::prelude::*;

use super::*;

/// An archive under construction, remembering where each entry's offset field is.
struct Built {
    bytes: Vec<u8>,
    offset_fields: Vec<(i64, usize)>,
}

fn int(out: &mut Vec<u8>, value: i64) {
    out.push(u8::from(value < 0));
    out.extend_from_slice(&(value.unsigned_abs() as u32).to_le_bytes());
}

fn string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            int(out, s.len() as i64);
            out.extend_from_slice(s.as_bytes());
        }
        None => int(out, -1),
    }
}

/// Header and table of contents: entries (dump ID, offset state), of archive version 1.`minor`.
fn archive(minor: u8, compression: i64, entries: &[(i64, u8)]) -> Built {
    let mut b = b"PGDMP".to_vec();
    b.extend_from_slice(&[1, minor, 0, 4, 8, FORMAT_CUSTOM]);
    if minor >= 15 {
        b.push(compression as u8);
    } else {
        int(&mut b, compression);
    }
    for t in [1, 2, 3, 4, 5, 126, 0] {
        int(&mut b, t);
    }
    for s in ["shop", "15.20", "15.20"] {
        string(&mut b, Some(s));
    }
    int(&mut b, entries.len() as i64);
    let mut offset_fields = Vec::new();
    for &(dump_id, state) in entries {
        int(&mut b, dump_id);
        int(&mut b, 1);
        for s in ["1259", "16388", "events", "TABLE DATA"] {
            string(&mut b, Some(s));
        }
        int(&mut b, 2); // section
        for s in [
            Some(""),
            Some(""),
            Some("COPY events FROM stdin;\n"),
            Some("public"),
            None,
        ] {
            string(&mut b, s);
        }
        if minor >= 14 {
            string(&mut b, Some("heap"));
        }
        if minor >= 16 {
            int(&mut b, i64::from(b'r'));
        }
        string(&mut b, Some("postgres"));
        string(&mut b, Some("false"));
        string(&mut b, Some("214"));
        string(&mut b, None);
        offset_fields.push((dump_id, b.len()));
        b.push(state);
        b.extend_from_slice(&[0; 8]);
    }
    Built {
        bytes: b,
        offset_fields,
    }
}

impl Built {
    fn data(mut self, dump_id: i64, chunks: &[&[u8]]) -> Built {
        self.bytes.push(BLOCK_DATA);
        int(&mut self.bytes, dump_id);
        for chunk in chunks {
            int(&mut self.bytes, chunk.len() as i64);
            self.bytes.extend_from_slice(chunk);
        }
        int(&mut self.bytes, 0);
        self
    }

    fn raw(mut self, bytes: &[u8]) -> Built {
        self.bytes.extend_from_slice(bytes);
        self
    }
}

fn mend(input: &[u8]) -> (io::Result<Copied>, Vec<u8>) {
    let out = tempfile::tempfile().unwrap();
    let copied = copy_for_restore(&mut &input[..], &out);
    let mut bytes = Vec::new();
    (&out).seek(SeekFrom::Start(0)).unwrap();
    (&out).read_to_end(&mut bytes).unwrap();
    (copied, bytes)
}

fn read_int(bytes: &[u8], at: &mut usize) -> i64 {
    let magnitude = i64::from(u32::from_le_bytes(
        bytes[*at + 1..*at + 5].try_into().unwrap(),
    ));
    let value = if bytes[*at] == 1 {
        -magnitude
    } else {
        magnitude
    };
    *at += 5;
    value
}

/// The data blocks from `start` on: each dump ID's data, its chunk sizes, and where it starts.
fn blocks(bytes: &[u8], start: usize) -> BTreeMap<i64, (Vec<u8>, Vec<usize>, usize)> {
    let mut at = start;
    let mut found = BTreeMap::new();
    while at < bytes.len() {
        let block_at = at;
        assert_eq!(bytes[at], BLOCK_DATA);
        at += 1;
        let id = read_int(bytes, &mut at);
        let (mut data, mut sizes) = (Vec::new(), Vec::new());
        loop {
            let len = read_int(bytes, &mut at) as usize;
            if len == 0 {
                break;
            }
            data.extend_from_slice(&bytes[at..at + len]);
            sizes.push(len);
            at += len;
        }
        found.insert(id, (data, sizes, block_at));
    }
    found
}

/// The offset field at `at`: its state and offset.
fn offset_field(bytes: &[u8], at: usize) -> (u8, u64) {
    (
        bytes[at],
        u64::from_le_bytes(bytes[at + 1..at + 9].try_into().unwrap()),
    )
}

#[test]
fn chunks_are_merged_and_offsets_written() {
    let rows: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("{i}\tuser {i}\t{}\n", "x".repeat(i % 40)).into_bytes())
        .collect();
    let row_refs: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
    let built = archive(
        14,
        0,
        &[
            (7, OFFSET_NOT_SET),
            (8, OFFSET_NO_DATA),
            (9, OFFSET_NOT_SET),
        ],
    )
    .data(7, &row_refs)
    .data(9, &[b"1\tone\n", b"2\ttwo\n"]);
    let data_start = built.offset_fields.last().unwrap().1 + 9;
    let (copied, out) = mend(&built.bytes);
    assert_eq!(copied.unwrap(), Copied::Mended);
    assert!(out.len() < built.bytes.len() - 5 * 19_000, "{}", out.len());
    // The header and the table of contents are as they were, but for the offsets.
    let mut expected_head = built.bytes[..data_start].to_vec();
    let got = blocks(&out, data_start);
    for (id, at) in &built.offset_fields {
        let (state, offset) = offset_field(&out, *at);
        match id {
            8 => assert_eq!((state, offset), (OFFSET_NO_DATA, 0)),
            _ => assert_eq!(
                (state, offset as usize),
                (OFFSET_SET, got[id].2),
                "entry {id}"
            ),
        }
        expected_head[*at..*at + 9].copy_from_slice(&out[*at..*at + 9]);
    }
    assert_eq!(out[..data_start], expected_head[..]);
    // The same data, in as few chunks as CHUNK allows.
    assert_eq!(got[&7].0, rows.concat());
    assert!(got[&7].1.iter().all(|&n| n <= CHUNK), "{:?}", got[&7].1);
    let (last, full) = got[&7].1.split_last().unwrap();
    assert!(
        full.iter().all(|&n| n > CHUNK - 64) && *last > 0,
        "{:?}",
        got[&7].1
    );
    assert_eq!(got[&9], (b"1\tone\n2\ttwo\n".to_vec(), vec![12], got[&9].2));
}

#[test]
fn a_chunk_larger_than_a_merged_one_goes_on_alone() {
    let big = vec![b'y'; CHUNK + 10];
    let built = archive(15, 0, &[(3, OFFSET_NOT_SET)]).data(3, &[b"a\n", &big, b"b\n", b"c\n"]);
    let data_start = built.offset_fields[0].1 + 9;
    let (copied, out) = mend(&built.bytes);
    assert_eq!(copied.unwrap(), Copied::Mended);
    let got = blocks(&out, data_start);
    assert_eq!(got[&3].1, vec![2, CHUNK + 10, 4]);
    assert_eq!(got[&3].0, [&b"a\n"[..], &big, b"b\nc\n"].concat());
}

#[test]
fn versions_12_and_16_are_read_with_their_own_fields() {
    for minor in [12, 13, 16] {
        let built = archive(minor, 0, &[(5, OFFSET_NOT_SET)]).data(5, &[b"1\n", b"2\n"]);
        let data_start = built.offset_fields[0].1 + 9;
        let (copied, out) = mend(&built.bytes);
        assert_eq!(copied.unwrap(), Copied::Mended, "1.{minor}");
        assert_eq!(blocks(&out, data_start)[&5].1, vec![4], "1.{minor}");
        assert_eq!(offset_field(&out, built.offset_fields[0].1).0, OFFSET_SET);
    }
}

#[test]
fn large_objects_are_copied_byte_for_byte() {
    let mut blobs = vec![BLOCK_BLOBS];
    int(&mut blobs, 4);
    for (oid, chunks) in [(16401, vec![&b"abc"[..], b"def"]), (16402, vec![b"g"])] {
        int(&mut blobs, oid);
        for chunk in chunks {
            int(&mut blobs, chunk.len() as i64);
            blobs.extend_from_slice(chunk);
        }
        int(&mut blobs, 0);
    }
    int(&mut blobs, 0);
    let built = archive(14, 0, &[(3, OFFSET_NOT_SET), (4, OFFSET_NOT_SET)])
        .data(3, &[b"1\n", b"2\n"])
        .raw(&blobs);
    let data_start = built.offset_fields[1].1 + 9;
    let (copied, out) = mend(&built.bytes);
    assert_eq!(copied.unwrap(), Copied::Mended);
    assert!(out.ends_with(&blobs));
    let blobs_at = out.len() - blobs.len();
    assert_eq!(
        offset_field(&out, built.offset_fields[1].1),
        (OFFSET_SET, blobs_at as u64)
    );
    assert_eq!(
        offset_field(&out, built.offset_fields[0].1),
        (OFFSET_SET, data_start as u64)
    );
}

#[test]
fn blocks_the_contents_do_not_list_go_on_and_only_the_first_block_is_pointed_at() {
    let built = archive(14, 0, &[(3, OFFSET_NOT_SET)])
        .data(99, &[b"stray\n"])
        .data(3, &[b"1\n", b"2\n"])
        .data(3, &[b"again\n"]);
    let data_start = built.offset_fields[0].1 + 9;
    let (copied, out) = mend(&built.bytes);
    assert_eq!(copied.unwrap(), Copied::Mended);
    // Block 99 (type, ID, one chunk's length and 6 bytes, the end: 22 bytes), then entry 3's.
    let first_3 = data_start + 22;
    assert_eq!(out[first_3], BLOCK_DATA);
    assert_eq!(
        offset_field(&out, built.offset_fields[0].1),
        (OFFSET_SET, first_3 as u64)
    );
    assert!(out.ends_with(b"again\n\0\0\0\0\0"));
}

#[test]
fn an_entry_whose_block_is_missing_keeps_its_unset_offset() {
    let built = archive(14, 0, &[(3, OFFSET_NOT_SET), (4, OFFSET_NOT_SET)]).data(3, &[b"1\n"]);
    let (copied, out) = mend(&built.bytes);
    assert_eq!(copied.unwrap(), Copied::Mended);
    assert_eq!(
        offset_field(&out, built.offset_fields[1].1),
        (OFFSET_NOT_SET, 0)
    );
}

#[test]
fn archives_it_does_not_know_are_copied_as_they_are() {
    let rows: &[&[u8]] = &[b"1\n", b"2\n", b"3\n"];
    let cases = [
        (
            "version 1.17",
            archive(17, 0, &[(3, OFFSET_NOT_SET)]).data(3, rows),
        ),
        (
            "version 1.11",
            archive(11, 0, &[(3, OFFSET_NOT_SET)]).data(3, rows),
        ),
        (
            "zlib level 6",
            archive(14, 6, &[(3, OFFSET_NOT_SET)]).data(3, rows),
        ),
        (
            "default zlib",
            archive(14, -1, &[(3, OFFSET_NOT_SET)]).data(3, rows),
        ),
        (
            "lz4 (1.15)",
            archive(15, 2, &[(3, OFFSET_NOT_SET)]).data(3, rows),
        ),
        (
            "written to a file",
            archive(14, 0, &[(3, OFFSET_SET)]).data(3, rows),
        ),
        (
            "unknown offset state",
            archive(14, 0, &[(3, 9)]).data(3, rows),
        ),
    ];
    for (what, built) in cases {
        let (copied, out) = mend(&built.bytes);
        assert_eq!(copied.unwrap(), Copied::AsIs, "{what}");
        assert_eq!(out, built.bytes, "{what}");
    }
    for other in [
        &b""[..],
        b"abc",
        b"PGDM",
        b"PGDMQ and more",
        b"-- PostgreSQL database dump\n",
    ] {
        let (copied, out) = mend(other);
        assert_eq!(copied.unwrap(), Copied::AsIs);
        assert_eq!(out, other);
    }
    let mut wide = archive(14, 0, &[(3, OFFSET_NOT_SET)]).data(3, rows).bytes;
    wide[8] = 2; // two-byte integers
    assert_eq!(mend(&wide).0.unwrap(), Copied::AsIs);
}

#[test]
fn damage_is_reported_with_where_it_is() {
    let good = archive(14, 0, &[(3, OFFSET_NOT_SET)]).data(3, &[b"1\n"]);
    let data_start = good.offset_fields[0].1 + 9;
    let mut unknown_block = good.bytes.clone();
    unknown_block[data_start] = 7;
    let mut negative = good.bytes.clone();
    negative[data_start + 6] = 1; // the first chunk's sign, after the type and ID
    let truncated = good.bytes[..good.bytes.len() - 3].to_vec();
    let in_toc = good.bytes[..data_start - 4].to_vec();
    for (what, bytes, expected) in [
        (
            "an unknown block",
            unknown_block,
            "a data block of unknown type",
        ),
        ("a negative length", negative, "a chunk of negative length"),
        ("an end mid-block", truncated, "it ends in the middle"),
        ("an end in the contents", in_toc, "it ends in the middle"),
    ] {
        let (copied, _) = mend(&bytes);
        let e = copied.expect_err(what);
        let damage = damaged(&e).unwrap_or_else(|| panic!("{what}: {e}"));
        assert_eq!(damage.what, expected, "{what}");
        if what == "an unknown block" {
            assert_eq!(damage.at as usize, data_start, "the type byte's position");
        }
        assert!(damage.at as usize <= bytes.len(), "{what}: {damage}");
    }
}

#[test]
fn a_read_error_is_passed_on_as_it_is() {
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "checksum"));
            }
            let n = self.0.read(buf)?;
            Ok(n)
        }
    }
    let built = archive(14, 0, &[(3, OFFSET_NOT_SET)]).data(3, &[b"1\n"]);
    let out = tempfile::tempfile().unwrap();
    let e = copy_for_restore(&mut Failing(&built.bytes), &out).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(damaged(&e).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any rows in any chunking come out as the same data per block, in chunks no larger than
    /// CHUNK unless the row itself was, with every offset pointing at its block.
    #[test]
    fn any_chunking_keeps_the_data(
        tables in prop::collection::vec(
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 0..200),
            1..5,
        ),
        minor in 12u8..=16,
    ) {
        let entries: Vec<(i64, u8)> =
            (0..tables.len()).map(|i| (10 + i as i64, OFFSET_NOT_SET)).collect();
        let mut built = archive(minor, 0, &entries);
        let data_start = built.bytes.len();
        for (i, rows) in tables.iter().enumerate() {
            let rows: Vec<&[u8]> =
                rows.iter().map(Vec::as_slice).filter(|r| !r.is_empty()).collect();
            built = built.data(10 + i as i64, &rows);
        }
        let (copied, out) = mend(&built.bytes);
        prop_assert_eq!(copied.unwrap(), Copied::Mended);
        let got = blocks(&out, data_start);
        for (i, rows) in tables.iter().enumerate() {
            let (data, sizes, at) = &got[&(10 + i as i64)];
            prop_assert_eq!(data, &rows.concat());
            prop_assert!(sizes.iter().all(|&n| n <= CHUNK));
            prop_assert_eq!(offset_field(&out, built.offset_fields[i].1), (OFFSET_SET, *at as u64));
        }
    }

    /// Bytes after a good table of contents never panic: they are mended or reported damaged.
    #[test]
    fn any_bytes_after_the_contents_are_mended_or_damage(
        tail in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let built = archive(14, 0, &[(3, OFFSET_NOT_SET)]).raw(&tail);
        let (copied, _) = mend(&built.bytes);
        if let Err(e) = copied {
            prop_assert!(damaged(&e).is_some(), "{}", e);
        }
    }
}
