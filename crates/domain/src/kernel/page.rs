//! Keyset pagination shared by every list: a limit and the key of the last item seen.

/// The most items one page may hold.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The page size when a client names none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// Which page to read: at most `limit` items whose key sorts after `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<K> {
    limit: u32,
    after: Option<K>,
}

/// A page size outside `1..=MAX_PAGE_SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit must be between 1 and {MAX_PAGE_SIZE}")]
pub struct InvalidPageSize;

impl<K> PageRequest<K> {
    /// # Errors
    /// [`InvalidPageSize`] when `limit` is 0 or above [`MAX_PAGE_SIZE`].
    pub fn new(limit: Option<u32>, after: Option<K>) -> Result<Self, InvalidPageSize> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(InvalidPageSize);
        }
        Ok(Self { limit, after })
    }

    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, MAX_PAGE_SIZE),
            after: None,
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn after(&self) -> Option<&K> {
        self.after.as_ref()
    }
}

/// One page of items and, when more may follow, the key to continue after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

impl<T, K> Page<T, K> {
    /// Builds a page from up to `limit + 1` rows read in key order: the extra row, when
    /// present, only tells that another page exists.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let limit = limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&key)
        } else {
            None
        };
        Self { items: rows, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U, K> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_must_be_between_one_and_the_maximum() {
        assert!(PageRequest::<u32>::new(Some(0), None).is_err());
        assert!(PageRequest::<u32>::new(Some(MAX_PAGE_SIZE + 1), None).is_err());
        assert_eq!(
            PageRequest::<u32>::new(None, None).map(|p| p.limit()),
            Ok(DEFAULT_PAGE_SIZE)
        );
    }

    #[test]
    fn an_extra_row_means_another_page_follows_the_last_kept_item() {
        let page = Page::from_overfetch(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next, Some(2));
        let last = Page::from_overfetch(vec![1, 2], 2, |n| *n);
        assert_eq!(last.next, None);
    }
}
