//! The tests that install the process's global log capture at TRACE and check that no
//! patient value or secret reaches a log line: a binary of their own, so the capture
//! holds only what they run.

mod doctolib_privacy;
mod privacy;
