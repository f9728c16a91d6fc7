//! Maiia's paging: `…&limit=100&page=N&size=100` answers `{"items": […], "total": T}`;
//! pages are asked from 0 until `total` items came or a page is empty.

use passerelle_sdk::http::Request;
use passerelle_sdk::serde::de::DeserializeOwned;
use passerelle_sdk::serde::Deserialize;
use passerelle_sdk::SyncError;

/// Items per page.
pub const SIZE: usize = 100;
/// A guard against a `total` that never comes.
const MAX_PAGES: usize = 200;

/// One page.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde", bound = "T: DeserializeOwned")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
}

/// Asks every page of `request` (built per page number) and hands each page's items
/// to `each`; returns the number of requests.
pub fn all<T: DeserializeOwned>(
    request: impl Fn(usize) -> Request,
    mut each: impl FnMut(Vec<T>) -> Result<(), SyncError>,
) -> Result<usize, SyncError> {
    let mut seen = 0;
    for page in 0..MAX_PAGES {
        let answer: Page<T> = request(page)
            .query("limit", &SIZE.to_string())
            .query("page", &page.to_string())
            .query("size", &SIZE.to_string())
            .json()?;
        let n = answer.items.len();
        seen += n;
        each(answer.items)?;
        if n == 0 || seen >= answer.total {
            return Ok(page + 1);
        }
    }
    Ok(MAX_PAGES)
}
