//! The built-in identity's series: logins and refusals, by method and result. Never labelled
//! with user or project names.

use metrics::{counter, describe_counter};

use crate::{IdentityError, IdentityResult, IssuedToken};

/// Help texts of this crate's series.
pub fn describe() {
    describe_counter!(
        "shoal_identity_logins_total",
        "Token requests to the built-in identity, by method (password, token) and result (issued, refused, throttled, invalid, error)"
    );
}

pub(crate) fn login(method: &'static str, outcome: &IdentityResult<IssuedToken>) {
    let result = match outcome {
        Ok(_) => "issued",
        Err(IdentityError::Unauthorized(_) | IdentityError::InvalidToken) => "refused",
        Err(IdentityError::TooManyFailures { .. }) => "throttled",
        Err(IdentityError::BadRequest(_) | IdentityError::NotFound(_)) => "invalid",
        Err(_) => "error",
    };
    counter!("shoal_identity_logins_total", "method" => method, "result" => result).increment(1);
}
