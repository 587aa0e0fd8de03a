//! Manila's `limit`/`offset` query parameters (`manila/api/common.py`
//! `_validate_pagination_query` and `limited`): integers (Python `int()` accepts `_`
//! separators and surrounding spaces), never negative; `limit=0` or above `max_limit` means
//! `max_limit`.

use crate::error::{ApiError, ApiResult};

/// Python `int()` of a query value.
pub fn py_int(value: &str) -> Option<i64> {
    value.trim().replace('_', "").parse().ok()
}

/// Validated `limit` (None when absent) and `offset` (0 when absent).
pub fn limit_offset(limit: Option<&str>, offset: Option<&str>) -> ApiResult<(Option<i64>, i64)> {
    let offset = match offset {
        None => 0,
        Some(v) => {
            py_int(v).ok_or_else(|| ApiError::bad_request("offset param must be an integer"))?
        }
    };
    let limit = match limit {
        None => None,
        Some(v) => {
            Some(py_int(v).ok_or_else(|| ApiError::bad_request("limit param must be an integer"))?)
        }
    };
    if limit.is_some_and(|l| l < 0) {
        return Err(ApiError::bad_request("limit param must be positive"));
    }
    if offset < 0 {
        return Err(ApiError::bad_request("offset param must be positive"));
    }
    Ok((limit, offset))
}

/// `common.limited`: slices `items` after fetching, with `limit` capped at `max_limit`.
pub fn limited<T>(items: Vec<T>, limit: Option<i64>, offset: i64, max_limit: usize) -> Vec<T> {
    let cap = match limit {
        Some(l) if l > 0 => usize::try_from(l).unwrap_or(usize::MAX).min(max_limit),
        _ => max_limit,
    };
    items
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(cap)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manila_pagination_rules() {
        assert_eq!(
            limit_offset(Some("2"), Some(" 1_0 ")).unwrap(),
            (Some(2), 10)
        );
        assert!(limit_offset(Some("x"), None).is_err());
        assert!(limit_offset(Some("-1"), None).is_err());
        assert!(limit_offset(None, Some("-1")).is_err());
        assert_eq!(limited(vec![1, 2, 3, 4], Some(2), 1, 1000), [2, 3]);
        assert_eq!(limited(vec![1, 2, 3], Some(0), 0, 2), [1, 2]);
        assert_eq!(limited(vec![1, 2, 3], None, 5, 1000), Vec::<i32>::new());
    }
}
