//! What a run's trace says of one HTTP request (the `http` span's attributes): the
//! endpoint's shape, never its URL, and the kind of a failed exchange.

use url::Url;

use crate::contract::wit;

/// A request's endpoint as traces show it: the origin and the path's shape, each
/// segment kept only when it is a short lowercase word (`availabilities`,
/// `booking.json`), any other (ids, dates, names, tokens) as `*`; never the query.
pub fn endpoint_shape(url: &Url) -> String {
    let word = |s: &str| {
        !s.is_empty()
            && s.len() <= 24
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || matches!(b, b'-' | b'_' | b'.'))
    };
    let path: Vec<&str> = url
        .path_segments()
        .map(|segments| segments.map(|s| if word(s) { s } else { "*" }).collect())
        .unwrap_or_default();
    format!("{}/{}", url.origin().ascii_serialization(), path.join("/"))
}

/// The kind of a failed exchange, for traces.
pub fn error_kind(e: &wit::HttpError) -> &'static str {
    match e {
        wit::HttpError::Timeout => "timeout",
        wit::HttpError::Denied(_) => "denied",
        wit::HttpError::Connection(_) => "connection",
        wit::HttpError::InvalidRequest(_) => "invalid-request",
        wit::HttpError::TooLarge(_) => "too-large",
    }
}

#[cfg(test)]
mod tests {
    use crate::capabilities::http_trace::endpoint_shape;
    use url::Url;

    #[test]
    fn an_endpoint_shape_keeps_words_and_hides_the_rest() {
        let shape = |u: &str| endpoint_shape(&Url::parse(u).unwrap());
        assert_eq!(
            shape(
                "https://www.doctolib.fr/availabilities.json?agenda_ids=12&start_date=2026-01-01"
            ),
            "https://www.doctolib.fr/availabilities.json"
        );
        assert_eq!(
            shape("https://api.example.org/v2/patients/Marie%20Dupont/appointments/123"),
            "https://api.example.org/*/patients/*/appointments/*"
        );
        assert_eq!(
            shape("https://x.example/booking/aVeryLongTokenLikeValue"),
            "https://x.example/booking/*"
        );
    }
}
