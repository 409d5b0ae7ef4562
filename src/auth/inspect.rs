//! Decoding and wording helpers for `token inspect`.
