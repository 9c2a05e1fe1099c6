//! Hostile input: length prefixes over the limit, bodies that claim huge strings, byte
//! strings and vectors, truncated frames, mutated frames and arbitrary bytes. Each is
//! answered with an error — never a panic — by the buffer decoder and by the blocking and
//! async stream readers, and none of them allocates beyond the frame limit.
//!
//! "Beyond the limit" is measured, not assumed: this test binary installs a counting global
//! allocator that records, per thread, the largest single allocation and the peak of live
//! bytes while a reader runs.

mod common;
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use avp_protocol::frame::{self, HEADER_LEN, MAX_FRAME_LEN};
use avp_protocol::{BackendInfo, BackendStatus, Capabilities, ErrorCode, FrameError};
use avp_protocol::{Request, Response};
use common::{Trickle, framed, payload, session_text, varint};
use counting_alloc::measure;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use serde::de::DeserializeOwned;

// ---------------------------------------------------------------------------------------
// The memory budget
// ---------------------------------------------------------------------------------------

/// A reader may hold one frame-sized payload buffer and decode into at most one more
/// frame-sized allocation; nothing a peer sends may make it need more than this.
const BUDGET: usize = 2 * MAX_FRAME_LEN;

/// Runs `f`, asserting it stayed within the budget.
fn bounded<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let (result, usage) = measure(f);
    assert!(
        usage.peak_single <= MAX_FRAME_LEN && usage.peak_live <= BUDGET,
        "{what}: {usage:?} exceeds one frame per allocation / {BUDGET} bytes in all"
    );
    result
}

#[test]
fn the_allocator_sees_a_large_allocation() {
    let (buffer, usage) = measure(|| vec![1u8; 3 * MAX_FRAME_LEN]);
    assert_eq!(buffer.len(), 3 * MAX_FRAME_LEN);
    assert!(usage.peak_single >= 3 * MAX_FRAME_LEN, "{usage:?}");
    assert!(usage.peak_live >= 3 * MAX_FRAME_LEN, "{usage:?}");
    drop(buffer);
    let (_, usage) = measure(|| vec![0u8; 1000]);
    assert!(usage.peak_single >= 1000 && usage.peak_single < MAX_FRAME_LEN);
}

// ---------------------------------------------------------------------------------------
// Running every reader over a byte stream
// ---------------------------------------------------------------------------------------

/// How a reader finished a stream.
#[derive(Debug)]
enum Outcome {
    /// Read this many messages, then a clean end between frames.
    Clean(usize),
    /// Buffer decoding only: this many messages, then an incomplete frame (read more).
    Incomplete(usize),
    /// This many messages, then an error.
    Failed(usize, FrameError),
}

impl Outcome {
    fn failed_at_once(&self, expected: impl Fn(&FrameError) -> bool) -> bool {
        matches!(self, Outcome::Failed(0, err) if expected(err))
    }
}

/// The buffer decoder's outcome and each stream reader's, by name.
struct Outcomes {
    buffered: Outcome,
    streams: Vec<(&'static str, Outcome)>,
}

impl Outcomes {
    /// Every reader failed on the first frame with an error `expected` accepts.
    #[track_caller]
    fn all_fail(&self, expected: impl Fn(&FrameError) -> bool + Copy) {
        assert!(
            self.buffered.failed_at_once(expected),
            "decode_frame: {:?}",
            self.buffered
        );
        self.streams_fail(expected);
    }

    /// Every stream reader failed on the first frame with an error `expected` accepts.
    #[track_caller]
    fn streams_fail(&self, expected: impl Fn(&FrameError) -> bool + Copy) {
        for (name, outcome) in &self.streams {
            assert!(outcome.failed_at_once(expected), "{name}: {outcome:?}");
        }
    }

    /// The stream readers agree with the buffer decoder: the same number of messages, then
    /// the same error — where the buffer decoder says "incomplete", a stream that ends
    /// there says "truncated".
    #[track_caller]
    fn agree(&self) {
        for (name, outcome) in &self.streams {
            let consistent = match (&self.buffered, outcome) {
                (Outcome::Clean(a), Outcome::Clean(b)) => a == b,
                (Outcome::Incomplete(a), Outcome::Failed(b, FrameError::Truncated)) => a == b,
                (Outcome::Failed(a, x), Outcome::Failed(b, y)) => {
                    a == b && x.to_string() == y.to_string()
                }
                _ => false,
            };
            assert!(
                consistent,
                "decode_frame: {:?}, {name}: {outcome:?}",
                self.buffered
            );
        }
    }
}

fn drain_buffer<T: DeserializeOwned>(mut rest: &[u8]) -> Outcome {
    let mut messages = 0;
    loop {
        match frame::decode_frame::<T>(rest) {
            Ok(Some((_, used))) => {
                messages += 1;
                rest = &rest[used..];
            }
            Ok(None) if rest.is_empty() => return Outcome::Clean(messages),
            Ok(None) => return Outcome::Incomplete(messages),
            Err(err) => return Outcome::Failed(messages, err),
        }
    }
}

fn drain_blocking<T: DeserializeOwned>(mut reader: impl std::io::Read) -> Outcome {
    let mut messages = 0;
    loop {
        match frame::read_message::<T>(&mut reader) {
            Ok(Some(_)) => messages += 1,
            Ok(None) => return Outcome::Clean(messages),
            Err(err) => return Outcome::Failed(messages, err),
        }
    }
}

async fn drain_async<T: DeserializeOwned>(
    mut reader: impl tokio::io::AsyncRead + Unpin,
) -> Outcome {
    let mut messages = 0;
    loop {
        match frame::nonblocking::read_message::<T>(&mut reader).await {
            Ok(Some(_)) => messages += 1,
            Ok(None) => return Outcome::Clean(messages),
            Err(err) => return Outcome::Failed(messages, err),
        }
    }
}

/// Streams longer than this skip the byte-at-a-time readers, which would spend seconds on
/// a whole 1 MiB frame in a debug build without testing anything more.
const TRICKLE_MAX: usize = 256 * 1024;

/// Feeds `stream` to every reader as messages of type `T`, each within the budget.
fn read_every_way<T: DeserializeOwned>(stream: &[u8]) -> Outcomes {
    let rt = common::runtime();
    let buffered = bounded("decode_frame", || drain_buffer::<T>(stream));
    let mut streams = vec![
        (
            "read_message",
            bounded("read_message", || drain_blocking::<T>(stream)),
        ),
        (
            "nonblocking::read_message",
            bounded("nonblocking::read_message", || {
                rt.block_on(drain_async::<T>(stream))
            }),
        ),
    ];
    if stream.len() > TRICKLE_MAX {
        return Outcomes { buffered, streams };
    }
    streams.extend([
        (
            "read_message, byte by byte",
            bounded("read_message, byte by byte", || {
                drain_blocking::<T>(Trickle::new(stream))
            }),
        ),
        (
            "nonblocking::read_message, byte by byte",
            bounded("nonblocking::read_message, byte by byte", || {
                rt.block_on(drain_async::<T>(Trickle::new(stream)))
            }),
        ),
    ]);
    Outcomes { buffered, streams }
}

fn too_large(expected: u64) -> impl Fn(&FrameError) -> bool + Copy {
    move |err| matches!(err, FrameError::TooLarge(len) if *len == expected)
}

fn malformed(err: &FrameError) -> bool {
    matches!(err, FrameError::Malformed)
}

fn truncated(err: &FrameError) -> bool {
    matches!(err, FrameError::Truncated)
}

// ---------------------------------------------------------------------------------------
// Length prefixes
// ---------------------------------------------------------------------------------------

#[test]
fn a_4_gib_length_prefix_is_rejected_before_allocating() {
    for tail in [&b""[..], b"\x00\x01\x02", &[0x41; 64]] {
        let stream = [&[0xFF; 4][..], tail].concat();
        for outcomes in [
            read_every_way::<Request>(&stream),
            read_every_way::<Response>(&stream),
        ] {
            outcomes.all_fail(too_large(0xFFFF_FFFF));
        }
        // Nothing at all is allocated for the refused payload.
        let (_, usage) = measure(|| frame::read_payload(&mut &stream[..]));
        assert!(usage.peak_single < 1024, "{usage:?}");
    }
}

#[test]
fn a_length_prefix_of_1_mib_plus_1_is_rejected_before_allocating() {
    let over = u32::try_from(MAX_FRAME_LEN + 1).unwrap().to_be_bytes();
    // Header only, and header followed by a whole (over-long) body: either way the prefix
    // alone decides, and the body is never read.
    for body_len in [0, 16, MAX_FRAME_LEN + 1] {
        let stream = [&over[..], &vec![0u8; body_len]].concat();
        for outcomes in [
            read_every_way::<Request>(&stream),
            read_every_way::<Response>(&stream),
        ] {
            outcomes.all_fail(too_large(MAX_FRAME_LEN as u64 + 1));
        }
        let (_, usage) = measure(|| frame::read_payload(&mut &stream[..]));
        assert!(usage.peak_single < 1024, "{usage:?}");
    }
    assert!(matches!(
        frame::check(&over),
        Err(FrameError::TooLarge(len)) if len == MAX_FRAME_LEN as u64 + 1
    ));
}

#[test]
fn a_length_prefix_of_exactly_the_limit_is_read_not_refused() {
    // The limit itself is allowed: with no body behind it the frame is incomplete
    // (buffer) or truncated (stream), not too large.
    let at_limit = u32::try_from(MAX_FRAME_LEN).unwrap().to_be_bytes();
    let outcomes = read_every_way::<Request>(&at_limit);
    assert!(matches!(outcomes.buffered, Outcome::Incomplete(0)));
    outcomes.streams_fail(truncated);
    // A whole 1 MiB body of zeros is a Hello{0} followed by junk: malformed.
    let stream = [&at_limit[..], &vec![0u8; MAX_FRAME_LEN]].concat();
    read_every_way::<Request>(&stream).all_fail(malformed);
}

// ---------------------------------------------------------------------------------------
// Bodies that lie about their contents
// ---------------------------------------------------------------------------------------

/// Claims worth trying: far beyond memory, beyond the limit, and just inside the limit
/// (which bincode may allocate before finding the bytes are not there).
const CLAIMS: [u64; 5] = [
    u64::MAX,
    1 << 40,
    1 << 32,
    MAX_FRAME_LEN as u64 + 1,
    MAX_FRAME_LEN as u64 - 64,
];

fn claiming(prefix: Vec<u8>, claim: u64) -> Vec<u8> {
    framed(&[prefix, varint(claim), b"only a few bytes follow".to_vec()].concat())
}

#[test]
fn a_store_whose_value_claims_a_huge_length_is_rejected() {
    for claim in CLAIMS {
        let stream = claiming(payload(&(4u32, session_text(), "api_key")), claim);
        read_every_way::<Request>(&stream).all_fail(malformed);
    }
    // The same for ROTATE's value and every passphrase.
    for claim in CLAIMS {
        let rotate = claiming(payload(&(8u32, session_text(), "api_key")), claim);
        read_every_way::<Request>(&rotate).all_fail(malformed);
        let unlock = claiming(payload(&11u32), claim);
        read_every_way::<Request>(&unlock).all_fail(malformed);
        let change = claiming(payload(&(14u32, "old passphrase")), claim);
        read_every_way::<Request>(&change).all_fail(malformed);
    }
}

#[test]
fn strings_that_claim_a_huge_length_are_rejected() {
    for claim in CLAIMS {
        let requests = [
            // Authenticate{workspace}, Retrieve{name}, Terminate{session}, Authenticate{agent_id}.
            claiming(payload(&2u32), claim),
            claiming(payload(&(5u32, session_text())), claim),
            claiming(payload(&3u32), claim),
            claiming(payload(&(2u32, "default")), claim),
        ];
        for stream in requests {
            read_every_way::<Request>(&stream).all_fail(malformed);
        }
        // Response::Error{message}, Response::Retrieved{name}.
        let responses = [
            claiming(payload(&(15u32, ErrorCode::ProtocolError)), claim),
            claiming(payload(&5u32), claim),
        ];
        for stream in responses {
            read_every_way::<Response>(&stream).all_fail(malformed);
        }
    }
}

#[test]
fn vectors_and_maps_that_claim_a_huge_length_are_rejected() {
    let discover_head = payload(&(
        1u32,
        1u32,
        "0.1.0",
        "full",
        BackendInfo {
            name: "vault".into(),
            status: BackendStatus::Available,
            degraded_since: None::<avp_protocol::Timestamp>,
        },
        Capabilities {
            versioning: true,
            expiration: true,
            rotation: true,
            audit: true,
        },
    ));
    // Element counts rather than bytes: serde may reserve up to 1 MiB for them up front.
    let counts = [u64::MAX, 1 << 40, 1 << 20, 60_000];
    for claim in counts {
        // List{label_filter}, Store{labels: Some(_)}.
        for stream in [
            claiming(payload(&(7u32, session_text())), claim),
            claiming(
                payload(&(4u32, session_text(), "api_key", b"value".to_vec(), 1u8)),
                claim,
            ),
        ] {
            read_every_way::<Request>(&stream).all_fail(malformed);
        }
        // Listed{secrets}, History{versions}, Discover{auth_methods}, Retrieved{labels}.
        for stream in [
            claiming(payload(&7u32), claim),
            claiming(payload(&(9u32, "api_key")), claim),
            claiming(discover_head.clone(), claim),
            claiming(payload(&(5u32, "api_key", b"value".to_vec(), 3u32)), claim),
        ] {
            read_every_way::<Response>(&stream).all_fail(malformed);
        }
    }
}

#[test]
fn malformed_bodies_are_rejected() {
    let hello = payload(&Request::Hello { version: 1 });
    let bodies: Vec<Vec<u8>> = vec![
        // Empty payload.
        vec![],
        // An unknown variant index.
        vec![200],
        varint(u64::MAX),
        // A valid message followed by a stray byte inside the same frame.
        [hello.clone(), vec![0]].concat(),
        // Retrieve{version} with an Option tag that is neither 0 nor 1.
        [payload(&(5u32, session_text(), "api_key")), vec![2]].concat(),
        // A name that is not UTF-8.
        [
            payload(&(6u32, session_text())),
            varint(3),
            vec![b'a', 0xFF, b'b'],
        ]
        .concat(),
        // A value cut short inside the frame: claims 10 bytes, has 3.
        [
            payload(&(8u32, session_text(), "api_key")),
            varint(10),
            b"abc".to_vec(),
        ]
        .concat(),
    ];
    for body in &bodies {
        read_every_way::<Request>(&framed(body)).all_fail(malformed);
    }
    // Deleted{deleted} with a bool that is neither 0 nor 1.
    read_every_way::<Response>(&framed(&[6, 2])).all_fail(malformed);
    read_every_way::<Response>(&framed(&[])).all_fail(malformed);
}

// ---------------------------------------------------------------------------------------
// Truncated frames
// ---------------------------------------------------------------------------------------

#[test]
fn truncated_frames_are_incomplete_in_a_buffer_and_an_error_on_a_stream() {
    for request in common::every_request() {
        let frame = frame::encode(&request).unwrap();
        for cut in [1, 2, HEADER_LEN - 1] {
            // Inside the header: a stream that ends here was cut mid-frame.
            let outcomes = read_every_way::<Request>(&frame[..cut]);
            assert!(matches!(outcomes.buffered, Outcome::Incomplete(0)));
            outcomes.streams_fail(truncated);
        }
        for cut in [
            HEADER_LEN,
            HEADER_LEN + (frame.len() - HEADER_LEN) / 2,
            frame.len() - 1,
        ] {
            // Header only, half a body, all but the last byte.
            let outcomes = read_every_way::<Request>(&frame[..cut]);
            assert!(matches!(outcomes.buffered, Outcome::Incomplete(0)));
            outcomes.streams_fail(truncated);
        }
        // A whole frame followed by a cut one: one message, then truncated.
        let stream = [&frame[..], &frame[..frame.len() - 1]].concat();
        let outcomes = read_every_way::<Request>(&stream);
        assert!(matches!(outcomes.buffered, Outcome::Incomplete(1)));
        outcomes.agree();
    }
}

#[test]
fn a_frame_whose_prefix_undercounts_its_body_is_rejected() {
    for request in common::every_request() {
        let body = payload(&request);
        if body.len() < 2 {
            continue;
        }
        // The prefix is honest about a body that stops one byte early.
        let stream = framed(&body[..body.len() - 1]);
        read_every_way::<Request>(&stream).all_fail(malformed);
    }
}

#[test]
fn an_empty_stream_is_a_clean_end() {
    let outcomes = read_every_way::<Request>(&[]);
    assert!(matches!(outcomes.buffered, Outcome::Clean(0)));
    outcomes.agree();
}

// ---------------------------------------------------------------------------------------
// Arbitrary and mutated bytes
// ---------------------------------------------------------------------------------------

/// Streams of frames with plausible (small) length prefixes, some honest and some a few
/// bytes off, around arbitrary bodies — random bytes alone nearly always fail on the first
/// prefix and never reach the decoder.
fn plausible_stream() -> impl Strategy<Value = Vec<u8>> {
    vec((vec(any::<u8>(), 0..256), -3i64..=3), 0..4).prop_map(|frames| {
        let mut stream = Vec::new();
        for (body, skew) in frames {
            let len = (body.len() as i64 + skew).max(0) as u32;
            stream.extend_from_slice(&len.to_be_bytes());
            stream.extend_from_slice(&body);
        }
        stream
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR a byte with a non-zero mask.
    Flip(Index, u8),
    /// Overwrite a byte, biased to bincode's varint markers 251-255 (long integers).
    Set(Index, u8),
    /// Insert a byte.
    Insert(Index, u8),
    /// Remove a byte.
    Remove(Index),
    /// Cut the bytes off here.
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), prop_oneof![251..=255u8, any::<u8>()])
            .prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Remove),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        if bytes.is_empty() {
            break;
        }
        match mutation {
            Mutation::Flip(i, mask) => {
                let at = i.index(bytes.len());
                bytes[at] ^= mask;
            }
            Mutation::Set(i, byte) => {
                let at = i.index(bytes.len());
                bytes[at] = *byte;
            }
            Mutation::Insert(i, byte) => bytes.insert(i.index(bytes.len() + 1), *byte),
            Mutation::Remove(i) => {
                bytes.remove(i.index(bytes.len()));
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        }
    }
    bytes
}

proptest! {
    #[test]
    fn arbitrary_payloads_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        bounded("decode::<Request>", || frame::decode::<Request>(&bytes).err());
        bounded("decode::<Response>", || frame::decode::<Response>(&bytes).err());
    }

    #[test]
    fn arbitrary_streams_never_panic(stream in vec(any::<u8>(), 0..512)) {
        read_every_way::<Request>(&stream).agree();
        read_every_way::<Response>(&stream).agree();
    }

    #[test]
    fn plausible_streams_never_panic(stream in plausible_stream()) {
        read_every_way::<Request>(&stream).agree();
        read_every_way::<Response>(&stream).agree();
    }

    #[test]
    fn mutated_requests_never_panic(
        request in common::request(),
        mutations in vec(mutation(), 1..4),
        reframe in any::<bool>(),
    ) {
        let stream = if reframe {
            // Mutate the body and give it an honest prefix: exercises the decoder.
            framed(&mutate(payload(&request), &mutations))
        } else {
            // Mutate the whole frame: exercises the framing.
            mutate(frame::encode(&request).unwrap().to_vec(), &mutations)
        };
        read_every_way::<Request>(&stream).agree();
    }

    #[test]
    fn mutated_responses_never_panic(
        response in common::response(),
        mutations in vec(mutation(), 1..4),
        reframe in any::<bool>(),
    ) {
        let stream = if reframe {
            framed(&mutate(payload(&response), &mutations))
        } else {
            mutate(frame::encode(&response).unwrap().to_vec(), &mutations)
        };
        read_every_way::<Response>(&stream).agree();
    }
}
