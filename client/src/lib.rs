//! The avp client library (filled by the CLI issue).
#![forbid(unsafe_code)]
