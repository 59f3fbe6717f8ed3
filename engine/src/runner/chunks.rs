//! How the runner cuts a route's work into the chunks it hands to [`Source::sync`].
//!
//! All calendars of one mailbox go into the same chunk: a source sees a move between two
//! calendars of a mailbox as a removal in one and an addition in the other, and can only tell
//! the two apart (and keep the event) when it syncs both calendars in the same call. Split over
//! two chunks, the removal could be applied and the addition missed until the next full read.
//!
//! [`Source::sync`]: crate::source::Source::sync

use std::collections::HashMap;

/// Cuts `items` into chunks of at most `size` items (at least one), keeping the items of each
/// mailbox together and in order; mailboxes appear in the order of their first item. A mailbox
/// with more calendars than `size` gets a chunk of its own, larger than `size`.
pub(crate) fn by_mailbox<T>(
    items: Vec<T>,
    size: usize,
    mailbox: impl Fn(&T) -> &str,
) -> Vec<Vec<T>> {
    let size = size.max(1);
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<T>> = Vec::new();
    for item in items {
        let m = mailbox(&item).to_string();
        match index.get(&m) {
            Some(&i) => groups[i].push(item),
            None => {
                index.insert(m, groups.len());
                groups.push(vec![item]);
            }
        }
    }
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut current: Vec<T> = Vec::new();
    for group in groups {
        if !current.is_empty() && current.len() + group.len() > size {
            chunks.push(std::mem::take(&mut current));
        }
        current.extend(group);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::by_mailbox;

    fn cut(items: &[(&'static str, &'static str)], size: usize) -> Vec<Vec<String>> {
        by_mailbox(items.to_vec(), size, |(m, _)| m)
            .into_iter()
            .map(|c| c.into_iter().map(|(m, cal)| format!("{m}/{cal}")).collect())
            .collect()
    }

    #[test]
    fn a_mailboxs_calendars_are_never_split_across_chunks() {
        // Chunks of 3: a plain cut would put b/default and b/Maintenance apart.
        let items = [
            ("a", "default"),
            ("a", "Team"),
            ("b", "default"),
            ("b", "Maintenance"),
            ("c", "default"),
            ("d", "default"),
            ("d", "x"),
            ("d", "y"),
            ("d", "z"),
            ("e", "default"),
        ];
        assert_eq!(
            cut(&items, 3),
            vec![
                vec!["a/default", "a/Team"],
                vec!["b/default", "b/Maintenance", "c/default"],
                vec!["d/default", "d/x", "d/y", "d/z"],
                vec!["e/default"],
            ]
        );
        // Chunks of one: one mailbox per chunk, all of its calendars.
        assert_eq!(cut(&items[..4], 1).len(), 2);
        assert_eq!(cut(&items[..4], 0).len(), 2, "size 0 counts as 1");
        // Large chunks: everything in one, order kept.
        let all = cut(&items, 20);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].len(), items.len());
        // Calendars of a mailbox listed apart still end up together.
        assert_eq!(
            cut(&[("a", "1"), ("b", "1"), ("a", "2")], 2),
            vec![vec!["a/1", "a/2"], vec!["b/1"]]
        );
        assert!(cut(&[], 5).is_empty());
    }
}
