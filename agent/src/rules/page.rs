//! The LIST page rule every backend calls: a page holds at most `limit` items *and* at most
//! what fits in one frame, so a workspace within every limit can always be listed.
//!
//! 64 labels of a 128-byte key and a 1,024-byte value make one secret's metadata about
//! 75 KB; fifteen of them already fill the 1 MiB frame, far below the 1,000-item page limit.
//! The page is therefore cut by the exact encoded cost of each item too (the codec's
//! [`frame_cost`]: the encoded size or the decoder's fixed-width charge, whichever is larger),
//! always keeping at least one item — one always fits (see the tests), so every page makes
//! progress.

use avp_protocol::codec::frame_cost;
use avp_protocol::types::Cursor;
use avp_protocol::{ListPage, MAX_FRAME_LEN, SecretMeta};

/// What the rest of a `Listed` response may cost besides its items: the response tag, the
/// item count, and the optional cursor (a tag, a length and at most 3 + 2 × 255 bytes) —
/// under 600 bytes; 4 KiB leaves ample margin.
const PAGE_OVERHEAD: usize = 4096;

/// The most the items of one page may cost together.
pub const PAGE_BUDGET: usize = MAX_FRAME_LEN - PAGE_OVERHEAD;

/// Takes one page from `matching` (the live, filtered secrets after the cursor, in name
/// order): at most `limit` items whose costs add up to at most [`PAGE_BUDGET`], and at least
/// one. The cursor is set when anything remains.
pub fn cut(matching: impl Iterator<Item = SecretMeta>, limit: usize) -> ListPage {
    let mut matching = matching.peekable();
    let mut secrets = Vec::new();
    let mut used = 0usize;
    while secrets.len() < limit {
        let Some(next) = matching.peek() else {
            break;
        };
        // An item that cannot be measured is never encodable; it counts as filling the page
        // so the response error is reported for it alone.
        let cost = frame_cost(next).unwrap_or(MAX_FRAME_LEN);
        if !secrets.is_empty() && used.saturating_add(cost) > PAGE_BUDGET {
            break;
        }
        used = used.saturating_add(cost);
        secrets.extend(matching.next());
    }
    let next_cursor = match secrets.last() {
        Some(last) if matching.peek().is_some() => Some(Cursor::after(&last.name)),
        _ => None,
    };
    ListPage {
        secrets,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avp_protocol::{Labels, Limits, Response, SecretName, Timestamp, frame};
    use std::collections::BTreeMap;

    /// The largest metadata the limits allow: a 255-byte name, 64 labels of a 128-byte key
    /// and a 1,024-byte value, every integer at its widest.
    fn largest(i: usize) -> SecretMeta {
        let limits = Limits::AVP;
        let labels: BTreeMap<String, String> = (0..limits.max_labels_per_secret as usize)
            .map(|l| {
                let key = format!("{i:04}{l:04}").repeat(16);
                (key, "v".repeat(limits.max_label_value_length as usize))
            })
            .collect();
        let name = format!("n{i:04}").repeat(51);
        SecretMeta {
            name: SecretName::new(name).unwrap(),
            version: u32::MAX,
            labels: Labels::new(labels).unwrap(),
            created_at: Timestamp::from_unix(i64::MIN),
            updated_at: Timestamp::from_unix(i64::MAX),
            expires_at: Some(Timestamp::from_unix(i64::MIN)),
        }
    }

    #[test]
    fn the_largest_item_fits_a_page_many_times_over() {
        let item = largest(0);
        assert_eq!(item.name.as_str().len(), 255);
        let cost = frame_cost(&item).unwrap();
        assert!(cost * 10 < PAGE_BUDGET, "one item costs {cost}");
        let cursor = Response::Listed(ListPage {
            secrets: Vec::new(),
            next_cursor: Some(Cursor::after(&item.name)),
        });
        assert!(frame_cost(&cursor).unwrap() < PAGE_OVERHEAD);
    }

    #[test]
    fn pages_of_the_largest_items_are_cut_to_fit_a_frame_and_lose_nothing() {
        let all: Vec<SecretMeta> = (0..40).map(largest).collect();
        let mut start = 0;
        while start < all.len() {
            let page = cut(all[start..].iter().cloned(), 1000);
            assert!(!page.secrets.is_empty(), "every page makes progress");
            let taken = page.secrets.len();
            assert_eq!(page.secrets[..], all[start..start + taken]);
            assert_eq!(page.next_cursor.is_some(), start + taken < all.len());
            frame::encode(&Response::Listed(page)).expect("every page fits a frame");
            start += taken;
        }
        assert!(cut(all.iter().cloned(), 1000).secrets.len() < all.len());
    }

    #[test]
    fn the_count_limit_still_applies() {
        let page = cut((0..5).map(largest), 2);
        assert_eq!(page.secrets.len(), 2);
        assert!(page.next_cursor.is_some());
        let page = cut((0..2).map(largest), 2);
        assert_eq!((page.secrets.len(), page.next_cursor), (2, None));
    }
}
